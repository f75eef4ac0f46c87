"""Output folders that can be made: checked before any work is done, so that a bad --out is refused up front
instead of failing with an OS traceback after the work (stdlib only: used by the robot nodes and the CLIs)."""

from __future__ import annotations

import os
from pathlib import Path


def out_dir_problem(path: str | Path, option: str = "--out") -> str | None:
    """Why no folder can be made at `path` (a file at it or above it, or a nearest existing folder that is not
    writable), as a sentence naming `option`; None when it can be made (or is a folder already)."""
    target = Path(path).expanduser().absolute()
    if target.exists():
        return None if target.is_dir() else f"{option} {path} is a file; expected a folder (or a path where one can be made)"
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{option} {path}: {parent} is a file, so no folder can be made under it"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"{option} {path}: no permission to make a folder in {parent}"
            return None
    return None
