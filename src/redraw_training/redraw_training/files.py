"""JSON files of runs: written atomically (a reader never sees half a file), numpy/torch values as numbers and lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: the metadata file of a dataset folder, next to its episodes (env, env_settings, transitions, ...), whoever wrote it:
#: rollout.collect, redraw_sim's collect, compare's target data
DATASET_JSON = "dataset.json"


def _plain(value: Any) -> Any:
    """numpy / torch arrays and scalars as lists and numbers; anything else as a float (or TypeError)."""
    return value.tolist() if hasattr(value, "tolist") else float(value)


def write_json(path: str | Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    tmp.replace(path)
    return path


def read_json(path: str | Path) -> Any | None:
    """The file's JSON, or None when it is missing or unreadable (a stage that has not finished)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
