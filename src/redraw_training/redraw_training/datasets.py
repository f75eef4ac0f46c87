"""Offline target datasets for ReDRAW calibration.

`load_target_dataset(path)` reads a dataset folder into a training replay and a held-out replay (whole
episodes, chosen reproducibly by `seed`; optionally a validation replay of the last training episodes), checks that
it fits the model, and fingerprints it (sha256 over file names and contents) so checkpoints can record exactly which
data they were calibrated on.

A dataset folder holds .npz episodes (redraw_common.episodes). rosbag2 recordings become one first: calibrate and
finetune convert them with the checkpoint's settings (redraw_training.targetdata), which a folder alone cannot say.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redraw_common.episodes import episode_paths, load_episode
from redraw_common.errors import RedrawInputError
from redraw_common.files import sha256_file

from .replay import Replay

Episodes = list[tuple[str, dict[str, np.ndarray]]]


class DatasetError(RedrawInputError):
    """A target dataset is missing, empty, or does not fit the model."""


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over (name, sha256(content)) of every file, in name order."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        h.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return h.hexdigest()


@dataclass
class TargetDataset:
    path: Path
    kind: str
    digest: str
    train: Replay
    holdout: Replay | None
    train_names: list[str] = field(default_factory=list)
    holdout_names: list[str] = field(default_factory=list)
    validation: Replay | None = None          # episodes taken from the training ones to select a model by (early stopping)
    validation_names: list[str] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return sum(len(r) for r in (self.train, self.holdout, self.validation) if r is not None)

    def describe(self) -> dict[str, Any]:
        out = {"path": str(self.path), "kind": self.kind, "sha256": self.digest, "train_episodes": len(self.train_names),
               "holdout_episodes": len(self.holdout_names), "train_steps": len(self.train),
               "holdout_steps": len(self.holdout) if self.holdout is not None else 0}
        if self.validation is not None:
            out.update(validation_episodes=len(self.validation_names), validation_steps=len(self.validation))
        return out


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
                        action_dim: int | None = None, vector_dim: int | None = None, validation: float = 0.0) -> TargetDataset:
    """Read a target dataset folder; hold out `holdout` of its episodes (at least one if > 0 and there are >= 2); with
    `validation` > 0, the last ceil(validation x n) of the n other episodes (at least one, never all) validate instead
    of training."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"target dataset not found: {path}")
    if not (path.is_dir() and any(path.glob("*.npz"))):
        raise DatasetError(f"{path}: not a dataset folder: expected .npz episodes (rosbag2 recordings: give them to calibrate or "
                           "finetune, which convert them with the checkpoint's settings)")
    paths = episode_paths(path)
    episodes = [(p.name, load_episode(p)) for p in paths]
    if not episodes:
        raise DatasetError(f"{path}: the dataset has no episodes")
    if not 0.0 <= holdout < 1.0:
        raise DatasetError(f"holdout must be in [0, 1), found {holdout}")
    if not 0.0 <= validation < 1.0:
        raise DatasetError(f"validation must be in [0, 1), found {validation}")
    for name, ep in episodes:
        _check(name, ep, image_shape, action_dim, vector_dim)
    n = len(episodes)
    hold_idx = holdout_indices(n, holdout, seed)
    train_eps = [episodes[i] for i in range(n) if i not in hold_idx]
    hold_eps = [episodes[i] for i in range(n) if i in hold_idx]
    val_eps: Episodes = []
    if validation > 0:
        if len(train_eps) < 2:
            raise DatasetError(f"{path}: {len(train_eps)} training episode(s) after the held-out ones; a validation split needs "
                               f"at least 2 (one to train on, one to validate): record more episodes or set validation to 0")
        n_val = min(len(train_eps) - 1, math.ceil(validation * len(train_eps)))
        train_eps, val_eps = train_eps[:-n_val], train_eps[-n_val:]
    return TargetDataset(path, "episodes", files_digest(paths), replay_from(train_eps, seed),
                         replay_from(hold_eps, seed) if hold_eps else None, [nm for nm, _ in train_eps], [nm for nm, _ in hold_eps],
                         replay_from(val_eps, seed) if val_eps else None, [nm for nm, _ in val_eps])


def holdout_indices(n: int, holdout: float, seed: int) -> set[int]:
    """Which of n episodes (in episode_paths order) load_target_dataset holds out: `holdout` of them, drawn with the
    seed (at least one if holdout > 0 and n >= 2, never all)."""
    n_hold = 0 if holdout == 0 or n < 2 else min(n - 1, max(1, math.ceil(holdout * n)))
    return set(np.random.default_rng(seed).permutation(n)[:n_hold].tolist())


def replay_from(episodes: Episodes, seed: int) -> Replay:
    """A Replay holding exactly these (name, episode) pairs, in order."""
    replay = Replay(sum(len(ep["image"]) for _, ep in episodes), seed=seed)
    for name, ep in episodes:
        replay.add_episode(ep, save=False, name=name)
    return replay
