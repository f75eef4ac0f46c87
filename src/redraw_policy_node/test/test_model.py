"""PolicyModel: verified loading (hash, manifest, shapes) with clear errors, and inference parity."""

import ast
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_policy import build_policy, build_vector_policy, reference_action, tamper_hash, with_manifest

from redraw_common.errors import ManifestError
from redraw_common.manifest import ActionSpec, TensorSpec, manifest_path_for
from redraw_common.preprocessing import PreprocessConfig, encode_jpeg, preprocess
from redraw_policy_node import watchdog as wd
from redraw_policy_node.model import PolicyModel

CFG = PreprocessConfig(height=16, width=16)
PKG = Path(__file__).resolve().parents[1]


def test_runs_the_manifests_preprocessing_and_matches_the_reference(tmp_path, rng_frame):
    model = PolicyModel(build_policy(tmp_path, CFG))
    jpeg = encode_jpeg(rng_frame)
    obs = model.observe(jpeg)
    np.testing.assert_array_equal(obs, preprocess(jpeg, CFG))
    raw = model.infer(obs)
    np.testing.assert_allclose(raw, reference_action(obs), atol=1e-6)
    forward, turn = model.to_drive(raw)
    assert (forward, turn) == pytest.approx(tuple(raw.tolist()))
    white = model.infer(model.observe(np.full((48, 64, 3), 255, np.uint8)))
    assert np.isnan(white).all()
    with pytest.raises(ValueError, match="non-finite action"):
        model.to_drive(white)
    with pytest.raises(Exception, match="(?i)reshape"):  # the test model's error on demand: an all-black frame
        model.infer(model.observe(np.zeros((48, 64, 3), np.uint8)))


@pytest.mark.parametrize(
    "case, match",
    [
        ("hash", r"sha256 mismatch for .*policy.onnx: manifest says [0-9a-f]{64}, file has [0-9a-f]{64}"),
        ("no_manifest", r"model manifest not found: expected a JSON file at .*policy.manifest.json"),
        ("no_model", r"model file not found"),
        ("onnx_input_size", r"input 'obs': the manifest says shape \[1, 16, 16, 2\], the ONNX model has \[1, 32, 32, 2\]"),
        ("manifest_input_size", r"input 'obs' must be uint8 \[1, 16, 16, 2\] \(batch 1 \+ the preprocessing output lane_mask 16x16x2\), the manifest says uint8 \[1, 32, 32, 2\]"),
        ("extra_input", r"model inputs \['depth'\] are not supported by the policy node: it feeds the camera observation 'obs' "
                        r"and optionally the measured velocity 'vector'"),
        ("vector_shape", r"input 'vector' must be float32 \[1, 2\] \(the measured velocity \[forward m/s, yaw rate rad/s\] from "
                         r"deadreckoning_node/velocity\) or \[1, 2 \+ 2k\] \(the velocity, then the last k actions sent "
                         r"\(forward, turn\), newest first\), the manifest says float32 \[1, 5\]"),
        ("vector_rank", r"input 'vector' must be float32 \[1, 2\] .* or \[1, 2 \+ 2k\] .*the manifest says float32 \[2, 2\]"),
        ("vector_dtype", r"input 'vector' must be float32 \[1, 2\] .*the manifest says float16 \[1, 2\]"),
        ("onnx_vector_shape", r"input 'vector': the manifest says shape \[1, 2\], the ONNX model has \[1, 3\]"),
        ("action_names", r"action names \['forward', 'steer'\] lack \['turn'\]"),
        ("extra_output", r"the manifest lists outputs \['action'\], the ONNX model has \['action', 'channel_means'\]"),
    ],
)
def test_refuses_mismatched_models_with_clear_errors(tmp_path, case, match):
    if case == "onnx_input_size":
        path = build_policy(tmp_path, CFG, input_shape=(1, 32, 32, 2), manifest_input_shape=(1, 16, 16, 2))
    elif case == "manifest_input_size":
        path = build_policy(tmp_path, CFG, input_shape=(1, 32, 32, 2))
    elif case == "extra_output":
        path = build_policy(tmp_path, CFG, extra_output=True)
    else:
        path = build_policy(tmp_path, CFG)
    if case == "hash":
        tamper_hash(path)
    elif case == "no_manifest":
        manifest_path_for(path).unlink()
    elif case == "no_model":
        path = tmp_path / "other.onnx"
    elif case == "extra_input":
        with_manifest(path, inputs=(TensorSpec("obs", (1, 16, 16, 2), "uint8"), TensorSpec("depth", (1, 4), "float32")))
    elif case == "vector_shape":
        with_manifest(path, inputs=(TensorSpec("obs", (1, 16, 16, 2), "uint8"), TensorSpec("vector", (1, 5), "float32")))
    elif case == "vector_rank":
        with_manifest(path, inputs=(TensorSpec("obs", (1, 16, 16, 2), "uint8"), TensorSpec("vector", (2, 2), "float32")))
    elif case == "vector_dtype":
        with_manifest(path, inputs=(TensorSpec("obs", (1, 16, 16, 2), "uint8"), TensorSpec("vector", (1, 2), "float16")))
    elif case == "onnx_vector_shape":
        path = velocity_policy(tmp_path / "v", CFG, vector_dim=3)
        with_manifest(path, inputs=(TensorSpec("obs", (1, 16, 16, 2), "uint8"), TensorSpec("vector", (1, 2), "float32")))
    elif case == "action_names":
        with_manifest(path, action=ActionSpec(names=("forward", "steer")))
    with pytest.raises(ManifestError, match=match):
        PolicyModel(path)


def velocity_policy(folder: Path, cfg: PreprocessConfig, vector_dim: int = 2) -> Path:
    """A policy that reads the camera and the measured velocity: action = tanh(vector * (1, 0.5) + mean(obs) / 255)
    (vector_dim 3: a graph whose vector input has an extra, unused entry)."""
    return build_vector_policy(folder, cfg, np.eye(vector_dim, 2) * np.array([1.0, 0.5]))


def test_feeds_the_measured_velocity_to_a_model_with_a_vector_input(tmp_path, rng_frame):
    model = PolicyModel(velocity_policy(tmp_path, CFG))
    assert model.uses_vector
    obs = model.observe(encode_jpeg(rng_frame))
    m = obs.astype(np.float64).mean() / 255.0
    for velocity in ([0.0, 0.0], [0.25, 1.5], [-0.2, -3.0]):
        raw = model.infer(obs, velocity)
        np.testing.assert_allclose(raw, np.tanh(np.array(velocity) * (1.0, 0.5) + m), atol=1e-6)
    assert not np.allclose(model.infer(obs, [0.0, 0.0]), model.infer(obs, [0.25, 1.5]), atol=0.1)
    with pytest.raises(ValueError, match=r"this model reads 'vector' \[1, 2\] \(measured velocity\), none was given"):
        model.infer(obs)
    plain = PolicyModel(build_policy(tmp_path / "plain", CFG))
    assert not plain.uses_vector
    with pytest.raises(ValueError, match="this model has no 'vector' input"):
        plain.infer(obs, [0.0, 0.0])


def test_watchdog_odometry_for_models_with_a_vector_input():
    w = wd.Watchdog(frame_timeout=0.1, odom_timeout=0.2)
    w.frame(1.0)
    assert w.state(1.0) == wd.STALE_ODOMETRY          # never received
    w.odom(1.0)
    assert w.state(1.05) == wd.OK
    w.frame(1.25)
    assert w.state(1.3) == wd.STALE_ODOMETRY           # 0.3 s since the last odometry
    w.odom(1.3)
    assert w.state(1.3) == wd.OK                       # resumes
    assert w.state(1.45) == wd.STALE_CAMERA            # the camera outranks odometry
    w.set_estop(True)
    assert w.state(1.45) == wd.ESTOP
    plain = wd.Watchdog(frame_timeout=0.1)             # a model without a vector input ignores odometry
    plain.frame(1.0)
    assert plain.state(1.0) == wd.OK
    with pytest.raises(ValueError, match="odom_timeout must be > 0 s"):
        wd.Watchdog(0.1, odom_timeout=0.0)


def test_watchdog_states_are_the_status_message_constants():
    from redraw_msgs.msg import PolicyStatus

    for value, name in wd.NAMES.items():
        assert getattr(PolicyStatus, f"WATCHDOG_{name.upper()}") == value


def test_watchdog_priorities_and_recovery():
    w = wd.Watchdog(frame_timeout=0.15)
    assert w.state(0.0) == wd.WAITING
    w.frame(1.0)
    assert w.state(1.1) == wd.OK and w.state(1.2) == wd.STALE_CAMERA
    w.frame(1.25)
    assert w.state(1.3) == wd.OK
    w.inference(wd.BAD_OUTPUT)
    assert w.state(1.3) == wd.BAD_OUTPUT
    w.set_estop(True)
    assert w.state(1.3) == wd.ESTOP
    w.set_estop(False)
    w.inference(wd.OK)
    assert w.state(1.3) == wd.OK
    with pytest.raises(ValueError, match="frame_timeout must be > 0"):
        wd.Watchdog(0)


def test_stall_guard_defers_a_stale_verdict_of_a_late_check_once():
    g = wd.StallGuard(period=0.02)  # a check every 20 ms; late = more than 60 ms after the previous one
    assert not g.defer(0.00, wd.STALE_CAMERA, stopped_for_it=False)      # first check: nothing to compare
    assert not g.defer(0.02, wd.STALE_CAMERA, stopped_for_it=False)      # on time: a real verdict
    assert g.defer(0.32, wd.STALE_CAMERA, stopped_for_it=False)          # woke from a 300 ms stall: wait one check
    assert not g.defer(0.62, wd.STALE_CAMERA, stopped_for_it=False)      # late again, but never twice in a row
    assert not g.defer(0.90, wd.STALE_CAMERA, stopped_for_it=True)       # already stopped for it: nothing to defer
    assert not g.defer(1.20, wd.OK, stopped_for_it=False)                # only stale-input verdicts wait
    assert not g.defer(1.50, wd.ESTOP, stopped_for_it=False)
    assert g.defer(1.80, wd.STALE_ODOMETRY, stopped_for_it=False)
    with pytest.raises(ValueError, match="stall_periods > 1"):
        wd.StallGuard(0.02, stall_periods=1.0)


def test_robot_package_never_imports_torch():
    for py in PKG.rglob("*.py"):
        if "test" in py.parts:
            continue
        tree = ast.parse(py.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] in ("torch", "redraw_training")], py


@pytest.fixture
def rng_frame():
    rng = np.random.default_rng(3)
    img = np.full((48, 64, 3), 70, np.uint8)
    img[30:, 10:20] = (240, 200, 20)   # yellow
    img[30:, 45:55] = (245, 245, 245)  # white
    return np.clip(img.astype(int) + rng.integers(-5, 6, img.shape), 0, 255).astype(np.uint8)
