import json

import pytest

from redraw_common.errors import ManifestError
from redraw_common.manifest import (
    ModelManifest,
    TensorSpec,
    load_manifest,
    load_verified,
    manifest_path_for,
    sha256_file,
)
from redraw_common.preprocessing import PreprocessConfig


def make(tmp_path, content=b"onnx-bytes"):
    model = tmp_path / "policy.onnx"
    model.write_bytes(content)
    m = ModelManifest(
        model_id="test-model",
        model_file="policy.onnx",
        sha256=sha256_file(model),
        preprocessing=PreprocessConfig(),
        inputs=(TensorSpec("obs", (1, 64, 64, 2), "uint8"),),
        outputs=(TensorSpec("action", (1, 2), "float32"),),
        provenance={"method": "redraw"},
    )
    m.save(manifest_path_for(model))
    return model, m


def test_round_trip_and_verification(tmp_path):
    model, m = make(tmp_path)
    assert manifest_path_for(model).name == "policy.manifest.json"
    assert load_manifest(manifest_path_for(model)) == m
    assert load_verified(model) == m


def test_hash_mismatch_and_missing_manifest(tmp_path):
    model, _ = make(tmp_path)
    model.write_bytes(b"tampered")
    with pytest.raises(ManifestError, match="sha256 mismatch for .*policy.onnx: manifest says [0-9a-f]{64}, file has"):
        load_verified(model)
    other = tmp_path / "other.onnx"
    other.write_bytes(b"x")
    with pytest.raises(ManifestError, match="model manifest not found: expected a JSON file at .*other.manifest.json"):
        load_verified(other)
    with pytest.raises(ManifestError, match="model file not found"):
        load_verified(tmp_path / "nope.onnx")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("sha256"), "'sha256' is missing"),
        (lambda d: d.update(sha256="abc"), "'sha256' must be 64 lowercase hex digits"),
        (lambda d: d.update(format_version=2), "'format_version' must be 1, found 2"),
        (lambda d: d.update(model_id=""), "'model_id' must be a non-empty string"),
        (lambda d: d.update(model_file="../x.onnx"), "'model_file' must be a plain file name"),
        (lambda d: d["preprocessing"].update(mode="depth"), "'preprocessing' is invalid: .*mode must be one of"),
        (lambda d: d["inputs"][0].update(shape=[1, -64, 64, 2]), r"'inputs\[0\].shape' must be a list of positive ints"),
        (lambda d: d["outputs"][0].update(dtype="float64"), r"'outputs\[0\].dtype' must be one of"),
        (lambda d: d.update(inputs=[]), "'inputs' must list at least one tensor"),
        (lambda d: d["action"].update(low=1.0), "'action.low' < 'action.high'"),
        (lambda d: d.update(control_hz=0), "'control_hz' must be in"),
        (lambda d: d.update(control_hz="10"), "'control_hz' must be int or float, found str"),
    ],
)
def test_validation_names_the_bad_field(tmp_path, edit, message):
    model, m = make(tmp_path)
    d = json.loads(manifest_path_for(model).read_text())
    edit(d)
    manifest_path_for(model).write_text(json.dumps(d))
    with pytest.raises(ManifestError, match=message):
        load_manifest(manifest_path_for(model))


def test_not_json(tmp_path):
    p = tmp_path / "m.manifest.json"
    p.write_text("{not json")
    with pytest.raises(ManifestError, match="is not valid JSON"):
        load_manifest(p)
