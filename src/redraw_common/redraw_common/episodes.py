"""The episode format shared by the simulators' dataset writer, the bag -> dataset converter and the
replay of redraw_training. One episode = one `.npz` file (numpy, `allow_pickle=False`), keys:

    image        (T, H, W, C) uint8   model observation (already preprocessed)
    action       (T, A) float32       action chosen after observing image[t] (policy space, [-1, 1])
    is_first     (T,) bool            True at t = 0 only
    is_last      (T,) bool            True at the final step only
    is_terminal  (T,) bool            True at the final step if the episode ended in a terminal state
    reward       (T,) float32         optional: reward received on arriving at image[t] (0 at t = 0)
    vector       (T, D) float32       optional: non-image observation (e.g. joint velocities)
    stamp        (T,) float64         optional: time of image[t], seconds

This is the DreamerV3 convention: row t holds the observation, the reward that came with it, and the
action taken in response. Calibration data is reward-free: it simply has no `reward` key.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from .errors import EpisodeError

REQUIRED = {"image": np.uint8, "action": np.float32, "is_first": np.bool_, "is_last": np.bool_, "is_terminal": np.bool_}
OPTIONAL = {"reward": np.float32, "vector": np.float32, "stamp": np.float64}
SUFFIX = ".npz"


def validate_episode(ep: Mapping[str, np.ndarray], name: str = "episode") -> int:
    """Check keys, dtypes, shapes and flags; return the length T. Raises EpisodeError naming the problem."""
    missing = [k for k in REQUIRED if k not in ep]
    if missing:
        raise EpisodeError(f"{name}: missing keys {missing}; expected {sorted(REQUIRED)} (+ optional {sorted(OPTIONAL)})")
    unknown = sorted(set(ep) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise EpisodeError(f"{name}: unknown keys {unknown}; expected {sorted(REQUIRED)} (+ optional {sorted(OPTIONAL)})")
    length = len(ep["image"])
    if length < 2:
        raise EpisodeError(f"{name}: needs at least 2 steps, found {length}")
    for key, dtype in {**REQUIRED, **OPTIONAL}.items():
        if key not in ep:
            continue
        arr = ep[key]
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype:
            found = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
            raise EpisodeError(f"{name}: '{key}' must be a {np.dtype(dtype).name} array, found {found}")
        if len(arr) != length:
            raise EpisodeError(f"{name}: '{key}' has {len(arr)} steps, but 'image' has {length}")
    if ep["image"].ndim != 4:
        raise EpisodeError(f"{name}: 'image' must be (T, H, W, C), found shape {ep['image'].shape}")
    if ep["action"].ndim != 2:
        raise EpisodeError(f"{name}: 'action' must be (T, A), found shape {ep['action'].shape}")
    if "vector" in ep and ep["vector"].ndim != 2:
        raise EpisodeError(f"{name}: 'vector' must be (T, D), found shape {ep['vector'].shape}")
    for key in ("action", "reward", "vector"):
        if key in ep and not np.all(np.isfinite(ep[key])):
            bad = int(np.argmax(~np.isfinite(ep[key]).reshape(length, -1).all(axis=1)))
            raise EpisodeError(f"{name}: '{key}' has non-finite values (first at step {bad})")
    if not ep["is_first"][0] or ep["is_first"][1:].any():
        raise EpisodeError(f"{name}: 'is_first' must be True at step 0 only, found True at {np.flatnonzero(ep['is_first']).tolist()[:5]}")
    if not ep["is_last"][-1] or ep["is_last"][:-1].any():
        raise EpisodeError(f"{name}: 'is_last' must be True at the final step only, found True at {np.flatnonzero(ep['is_last']).tolist()[:5]}")
    if ep["is_terminal"][:-1].any():
        raise EpisodeError(f"{name}: 'is_terminal' may only be True at the final step")
    if "stamp" in ep and np.any(np.diff(ep["stamp"]) < 0):
        raise EpisodeError(f"{name}: 'stamp' must not decrease (first decrease at step {int(np.argmax(np.diff(ep['stamp']) < 0)) + 1})")
    return length


def make_flags(length: int, terminal: bool = False) -> dict[str, np.ndarray]:
    """is_first / is_last / is_terminal for an episode of `length` steps."""
    is_first = np.zeros(length, bool)
    is_first[0] = True
    is_last = np.zeros(length, bool)
    is_last[-1] = True
    is_terminal = np.zeros(length, bool)
    is_terminal[-1] = terminal
    return {"is_first": is_first, "is_last": is_last, "is_terminal": is_terminal}


def save_episode(path: str | Path, ep: Mapping[str, np.ndarray]) -> Path:
    """Validate and write atomically (temporary file + rename): a crash never leaves half an episode."""
    path = Path(path)
    if path.suffix != SUFFIX:
        raise EpisodeError(f"episode files end in {SUFFIX}, found {path.name!r}")
    validate_episode(ep, path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **{k: np.asarray(v) for k, v in ep.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_episode(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            ep = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise EpisodeError(f"episode file not found: {path}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise EpisodeError(f"episode file {path} is unreadable ({type(exc).__name__}: {exc}); expected a .npz written by save_episode") from None
    validate_episode(ep, path.name)
    return ep


def episode_paths(folder: str | Path) -> list[Path]:
    """Episode files of a dataset folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EpisodeError(f"dataset folder not found: {folder}")
    return sorted(p for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith("."))


def iter_episodes(folder: str | Path) -> Iterator[tuple[Path, dict[str, np.ndarray]]]:
    for path in episode_paths(folder):
        yield path, load_episode(path)
