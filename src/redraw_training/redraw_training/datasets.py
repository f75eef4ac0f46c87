"""Offline target datasets for ReDRAW calibration.

`load_target_dataset(path)` reads a dataset folder into a training replay and a held-out replay (whole
episodes, chosen reproducibly by `seed`), checks that it fits the model, and fingerprints it (sha256 over
file names and contents) so checkpoints can record exactly which data they were calibrated on.

Folder kinds are recognised by registered loaders, tried in order:
    episodes   a folder of .npz episodes (redraw_common.episodes), the built-in loader
    (others)   e.g. rosbag2 folders, registered by redraw_training.bags via `register_dataset_loader`
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redraw_common.episodes import episode_paths, load_episode
from redraw_common.errors import RedrawInputError

from .replay import Replay

Episodes = list[tuple[str, dict[str, np.ndarray]]]


class DatasetError(RedrawInputError):
    """A target dataset is missing, empty, or does not fit the model."""


@dataclass
class DatasetLoader:
    name: str
    detect: Callable[[Path], bool]
    load: Callable[[Path], Episodes]        # -> [(episode name, episode dict)], in time order
    digest: Callable[[Path], str] | None = None


_LOADERS: list[DatasetLoader] = []


def register_dataset_loader(name: str, detect: Callable[[Path], bool], load: Callable[[Path], Episodes],
                            digest: Callable[[Path], str] | None = None, first: bool = False) -> None:
    """Add a loader for another dataset kind (replaces one of the same name)."""
    global _LOADERS
    _LOADERS = [ld for ld in _LOADERS if ld.name != name]
    loader = DatasetLoader(name, detect, load, digest)
    _LOADERS.insert(0, loader) if first else _LOADERS.append(loader)


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over (name, sha256(content)) of every file, in name order."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        fh = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                fh.update(chunk)
        h.update(path.name.encode() + b"\0" + fh.hexdigest().encode() + b"\n")
    return h.hexdigest()


def _episodes_detect(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.npz"))


def _episodes_load(path: Path) -> Episodes:
    return [(p.name, load_episode(p)) for p in episode_paths(path)]


def _episodes_digest(path: Path) -> str:
    return files_digest(episode_paths(path))


register_dataset_loader("episodes", _episodes_detect, _episodes_load, _episodes_digest)


def _import_optional_loaders() -> None:
    try:  # the bag converter registers its loader on import (if it is installed)
        importlib.import_module("redraw_training.bags")
    except ImportError:
        pass


@dataclass
class TargetDataset:
    path: Path
    kind: str
    digest: str
    train: Replay
    holdout: Replay | None
    train_names: list[str] = field(default_factory=list)
    holdout_names: list[str] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.train) + (len(self.holdout) if self.holdout is not None else 0)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "sha256": self.digest, "train_episodes": len(self.train_names),
                "holdout_episodes": len(self.holdout_names), "train_steps": len(self.train),
                "holdout_steps": len(self.holdout) if self.holdout is not None else 0}


def _check(name: str, ep: dict[str, np.ndarray], image_shape, action_dim, vector_dim) -> None:
    if image_shape is not None and tuple(ep["image"].shape[1:]) != tuple(image_shape):
        raise DatasetError(f"{name}: images are {tuple(ep['image'].shape[1:])}, the model expects {tuple(image_shape)} "
                           "(same preprocessing and size as in pretraining)")
    if action_dim is not None and ep["action"].shape[1] != action_dim:
        raise DatasetError(f"{name}: actions have {ep['action'].shape[1]} dims, the model expects {action_dim}")
    if vector_dim is not None:
        have = ep["vector"].shape[1] if "vector" in ep else 0
        if have != vector_dim:
            raise DatasetError(f"{name}: 'vector' has {have} dims, the model expects {vector_dim}")


def load_target_dataset(path: str | Path, holdout: float = 0.1, seed: int = 0, image_shape: tuple[int, ...] | None = None,
                        action_dim: int | None = None, vector_dim: int | None = None) -> TargetDataset:
    """Read a target dataset folder; hold out `holdout` of its episodes (at least one if > 0 and there are >= 2)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"target dataset not found: {path}")
    loader = next((ld for ld in _LOADERS if ld.detect(path)), None)
    if loader is None:
        _import_optional_loaders()
        loader = next((ld for ld in _LOADERS if ld.detect(path)), None)
    if loader is None:
        raise DatasetError(f"{path}: not a dataset folder; expected one of the kinds {[ld.name for ld in _LOADERS]} "
                           "(e.g. a folder of .npz episodes)")
    episodes = loader.load(path)
    if not episodes:
        raise DatasetError(f"{path}: the dataset has no episodes")
    if not 0.0 <= holdout < 1.0:
        raise DatasetError(f"holdout must be in [0, 1), found {holdout}")
    for name, ep in episodes:
        _check(name, ep, image_shape, action_dim, vector_dim)
    n = len(episodes)
    n_hold = 0 if holdout == 0 or n < 2 else min(n - 1, max(1, math.ceil(holdout * n)))
    order = np.random.default_rng(seed).permutation(n)
    hold_idx = set(order[:n_hold].tolist())
    train_eps = [episodes[i] for i in range(n) if i not in hold_idx]
    hold_eps = [episodes[i] for i in range(n) if i in hold_idx]

    def build(eps: Episodes) -> Replay:
        replay = Replay(sum(len(ep["image"]) for _, ep in eps), seed=seed)
        for name, ep in eps:
            replay.add_episode(ep, save=False, name=name)
        return replay

    digest = loader.digest(path) if loader.digest is not None else _content_digest(episodes)
    return TargetDataset(path, loader.name, digest, build(train_eps), build(hold_eps) if hold_eps else None,
                         [nm for nm, _ in train_eps], [nm for nm, _ in hold_eps])


def _content_digest(episodes: Episodes) -> str:
    h = hashlib.sha256()
    for name, ep in episodes:
        h.update(name.encode())
        for key in sorted(ep):
            h.update(key.encode() + np.ascontiguousarray(ep[key]).tobytes())
    return h.hexdigest()
