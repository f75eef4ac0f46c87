"""Replay over on-disk episodes: uniform windows of consecutive steps, is_first at every start, ring capacity,
reload from disk, and target datasets (held-out split, fingerprint, shape checks)."""

from __future__ import annotations

import numpy as np
import pytest

from redraw_common.episodes import make_flags, save_episode
from redraw_training.datasets import DatasetError, load_target_dataset
from redraw_training.replay import Replay, ReplayError


def _episode(length, start, reward=True, shape=(8, 8, 3)):
    ep = {
        "image": np.full((length, *shape), start % 256, np.uint8) + np.arange(length, dtype=np.uint8)[:, None, None, None],
        "action": np.stack([np.arange(start, start + length, dtype=np.float32)] * 2, 1),
        **make_flags(length),
    }
    if reward:
        ep["reward"] = np.arange(length, dtype=np.float32)
    return ep


def test_windows_are_consecutive_steps_with_is_first_at_start(tmp_path):
    replay = Replay(1000, tmp_path / "replay", seed=0)
    for i in range(5):
        replay.add_episode(_episode(20, 100 * i))
    assert len(replay) == 100 and len(list((tmp_path / "replay").glob("*.npz"))) == 5
    batch = replay.sample(64, 12)
    assert batch["image"].shape == (64, 12, 8, 8, 3) and batch["action"].shape == (64, 12, 2)
    assert batch["is_first"][:, 0].all()
    # within a window, steps are consecutive in time: the action counter grows by 1 except at episode starts
    step = np.diff(batch["action"][..., 0], axis=1)
    inside = ~batch["is_first"][:, 1:]
    assert np.all(step[inside] == 1)
    # every start position is reachable (uniform over the 89 possible windows)
    starts = np.concatenate([replay.sample_indices(256, 12)[:, 0] for _ in range(20)])
    assert len(np.unique(starts)) == 89


def test_ring_capacity_drops_the_oldest_steps():
    replay = Replay(50, seed=0)
    for i in range(4):
        replay.add_episode(_episode(20, 100 * i), save=False)
    assert len(replay) == 50
    actions = replay.ordered("action")[:, 0]
    assert actions[-1] == 319 and actions[0] == 110  # the newest 50 steps (episodes of 100+i: last 10 of 1, all of 2, 3)
    for _ in range(20):
        b = replay.sample(8, 10)
        assert np.all(np.diff(b["action"][..., 0], axis=1)[~b["is_first"][:, 1:]] == 1)


def test_reload_from_disk_and_errors(tmp_path):
    replay = Replay(1000, tmp_path, seed=0)
    for i in range(3):
        replay.add_episode(_episode(15, 10 * i))
    again = Replay(1000, tmp_path, seed=0)
    assert again.load_directory() == 3 and len(again) == 45
    assert np.array_equal(again.ordered("image"), replay.ordered("image"))
    assert again.digest() == replay.digest() and len(replay.digest()) == 64   # fingerprint of the episode files
    again.add_episode(_episode(15, 99))
    assert again.digest() != replay.digest()
    with pytest.raises(ReplayError, match="does not match"):
        again.add_episode(_episode(15, 0, shape=(8, 8, 2)))
    with pytest.raises(ReplayError, match="fewer than one sequence"):
        Replay(100).add_episode(_episode(5, 0), save=False) or Replay(100).sample(1, 10)
    small = Replay(100)
    small.add_episode(_episode(5, 0), save=False)
    with pytest.raises(ReplayError, match="holds 5 steps"):
        small.sample(1, 10)


def test_target_dataset_split_digest_and_checks(tmp_path):
    for i in range(10):
        save_episode(tmp_path / f"ep_{i:03d}.npz", _episode(12, 10 * i, reward=False))
    ds = load_target_dataset(tmp_path, holdout=0.2, seed=0, image_shape=(8, 8, 3), action_dim=2, vector_dim=0)
    assert len(ds.holdout_names) == 2 and len(ds.train_names) == 8 and not set(ds.holdout_names) & set(ds.train_names)
    assert len(ds.train) == 96 and len(ds.holdout) == 24 and ds.kind == "episodes"
    same = load_target_dataset(tmp_path, holdout=0.2, seed=0)
    assert same.digest == ds.digest and same.holdout_names == ds.holdout_names
    save_episode(tmp_path / "ep_100.npz", _episode(12, 0, reward=False))
    assert load_target_dataset(tmp_path, holdout=0.2).digest != ds.digest
    with pytest.raises(DatasetError, match=r"images are \(8, 8, 3\), the model expects \(32, 32, 3\)"):
        load_target_dataset(tmp_path, image_shape=(32, 32, 3))
    with pytest.raises(DatasetError, match="actions have 2 dims, the model expects 3"):
        load_target_dataset(tmp_path, action_dim=3)
    with pytest.raises(DatasetError, match="not found"):
        load_target_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a dataset folder"):
        load_target_dataset(tmp_path / "empty")
