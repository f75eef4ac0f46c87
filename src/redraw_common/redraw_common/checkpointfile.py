"""Where a training checkpoint is and what its JSON manifest says, without torch: redraw_training.checkpoint writes
and loads checkpoints (safetensors + this manifest); the main job's orchestrator (redraw_sim.sim2real) and the CLIs'
up-front checks only need to find one and read its manifest.

    directory, manifest = read_manifest("models/duckietown_draw")   # a run folder or its checkpoint/ folder
    manifest["kind"], manifest["config"], manifest["preprocessing"], manifest["files"]["weights.safetensors"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import RedrawInputError
from .files import read_json_object

FORMAT = "redraw-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "checkpoint.json"
#: fields every manifest has (redraw_training.checkpoint documents them)
REQUIRED = ("kind", "config", "model", "counters", "files")


class CheckpointError(RedrawInputError):
    """A checkpoint is missing, corrupted, or does not match the model or data it is loaded for."""


def resolve(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder that holds one in `checkpoint/`."""
    path = Path(path)
    for candidate in (path, path / "checkpoint"):
        if (candidate / MANIFEST).is_file():
            return candidate
    old = path / "checkpoint.old"
    if (old / MANIFEST).is_file():  # crash between the two renames of a save
        return old
    raise CheckpointError(f"no checkpoint at {path}: expected {path / MANIFEST} or {path / 'checkpoint' / MANIFEST}")


def has_checkpoint(folder: str | Path) -> bool:
    try:
        resolve(folder)
        return True
    except CheckpointError:
        return False


def read_manifest(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint folder at or under `path` and its manifest, checked for format, version and required fields."""
    directory = resolve(path)
    where = directory / MANIFEST
    manifest = read_json_object(where, "checkpoint manifest", CheckpointError, "; the checkpoint is corrupted")
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"{where}: expected format {FORMAT!r}, found {manifest.get('format')!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{where}: expected format_version {FORMAT_VERSION}, found {manifest.get('format_version')!r}")
    for key in REQUIRED:
        if key not in manifest:
            raise CheckpointError(f"{where}: field {key!r} is missing; the checkpoint is corrupted")
    return directory, manifest
