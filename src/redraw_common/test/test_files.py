"""JSON files: atomic writes that keep the old file when a write fails, strict reads that say what is wrong, and the
checkpoint folder found and its manifest checked without torch."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from redraw_common import files
from redraw_common.checkpointfile import FORMAT, FORMAT_VERSION, CheckpointError, has_checkpoint, read_manifest, resolve
from redraw_common.errors import ManifestError
from redraw_common.files import read_json, read_json_object, write_json


def test_write_json_writes_numbers_and_lists_and_leaves_no_temporary_file(tmp_path):
    path = write_json(tmp_path / "sub" / "a.json", {"x": np.float32(1.5), "v": np.arange(3), "n": 2})
    assert json.loads(path.read_text()) == {"x": 1.5, "v": [0, 1, 2], "n": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]
    assert read_json(path) == {"x": 1.5, "v": [0, 1, 2], "n": 2}
    assert read_json(tmp_path / "missing.json") is None


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_json(tmp_path / "a.json", {"old": 1})
    with pytest.raises(TypeError):
        write_json(path, {"new": object()})        # not JSON: fails while serialising
    assert json.loads(path.read_text()) == {"old": 1}

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_json(path, {"new": 2})               # fails after the temporary file was written
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("content, message", [
    (None, r"model manifest not found: expected a JSON file at \S+a\.json"),
    ('{"a": ', r"model manifest \S+a\.json is not valid JSON \(.*\); look again"),
    ("[1, 2]", r"model manifest \S+a\.json: expected a JSON object, found list; look again"),
])
def test_read_json_object_names_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "a.json"
    if content is not None:
        path.write_text(content)
    hint = "" if content is None else "; look again"
    with pytest.raises(ManifestError, match=message):
        read_json_object(path, "model manifest", ManifestError, hint)


def manifest(**changes):
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "pretrain", "config": {}, "model": {}, "counters": {},
            "files": {}, **changes}


def test_the_checkpoint_folder_is_found_in_a_run_folder_and_its_manifest_checked(tmp_path):
    run = tmp_path / "run"
    assert not has_checkpoint(run)
    with pytest.raises(CheckpointError, match=r"no checkpoint at \S+run: expected"):
        resolve(run)
    write_json(run / "checkpoint" / "checkpoint.json", manifest())
    assert resolve(run) == run / "checkpoint" and has_checkpoint(run)
    directory, found = read_manifest(run)
    assert directory == run / "checkpoint" and found["kind"] == "pretrain"
    write_json(run / "checkpoint" / "checkpoint.json", manifest(format_version=99))
    with pytest.raises(CheckpointError, match="expected format_version 1, found 99"):
        read_manifest(run)
    broken = manifest()
    del broken["files"]
    write_json(run / "checkpoint" / "checkpoint.json", broken)
    with pytest.raises(CheckpointError, match="field 'files' is missing; the checkpoint is corrupted"):
        read_manifest(run)
    (run / "checkpoint" / "checkpoint.json").write_text("[]")
    with pytest.raises(CheckpointError, match="expected a JSON object, found list; the checkpoint is corrupted"):
        read_manifest(run)
