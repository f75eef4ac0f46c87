"""JSON files: written atomically (a reader never sees half a file; numpy / torch values as numbers and lists), read
either leniently (a stage's output that may not exist yet) or strictly (an input: an error that names the file, where it
was expected and what is wrong with it). And the sha256 of a file, which models, checkpoints and datasets are known by."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: the metadata file of a dataset folder, next to its episodes (env, env_settings, transitions, ...), whoever wrote it:
#: redraw_training's rollout.collect and compare's target data, redraw_sim's collect
DATASET_JSON = "dataset.json"


def _plain(value: Any) -> Any:
    """numpy / torch arrays and scalars as lists and numbers; anything else as a float (or TypeError)."""
    return value.tolist() if hasattr(value, "tolist") else float(value)


def write_json(path: str | Path, data: Any) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename: a failed write (a full disk)
    leaves the file that was there, and no temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, default=_plain) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: str | Path) -> Any | None:
    """The file's JSON, or None when it is missing or unreadable (a stage that has not finished)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def read_json_object(path: str | Path, what: str, error: type[Exception], hint: str = "") -> dict[str, Any]:
    """The JSON object in the file at `path`, which is the `what` (e.g. 'model manifest'); raises `error` saying so
    when the file is missing, is not JSON or holds something else (`hint` is appended, e.g. what to do about it)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: expected a JSON file at {path}{hint}")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{what} {path} is not valid JSON ({exc}){hint}") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path}: expected a JSON object, found {type(data).__name__}{hint}")
    return data


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
