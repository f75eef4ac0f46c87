import numpy as np
import pytest

from redraw_common.episodes import episode_paths, load_episode, make_flags, save_episode, validate_episode
from redraw_common.errors import EpisodeError


def episode(T=10, reward=True):
    ep = {
        "image": np.random.default_rng(0).integers(0, 255, (T, 16, 16, 2), dtype=np.uint8),
        "action": np.zeros((T, 2), np.float32),
        **make_flags(T),
        "stamp": np.arange(T, dtype=np.float64) * 0.1,
    }
    if reward:
        ep["reward"] = np.ones(T, np.float32)
    return ep


def test_save_load_round_trip(tmp_path):
    ep = episode()
    save_episode(tmp_path / "ep_000.npz", ep)
    save_episode(tmp_path / "ep_001.npz", episode(reward=False))
    paths = episode_paths(tmp_path)
    assert [p.name for p in paths] == ["ep_000.npz", "ep_001.npz"]
    back = load_episode(paths[0])
    assert set(back) == set(ep) and all(np.array_equal(back[k], ep[k]) for k in ep)
    assert "reward" not in load_episode(paths[1])
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e: e.pop("action"), r"missing keys \['action'\]"),
        (lambda e: e.update(extra=np.zeros(10)), r"unknown keys \['extra'\]"),
        (lambda e: e.update(action=e["action"].astype(np.float64)), "'action' must be a float32 array, found float64"),
        (lambda e: e.update(action=np.zeros((9, 2), np.float32)), "'action' has 9 steps, but 'image' has 10"),
        (lambda e: e["action"].__setitem__((3, 1), np.nan), r"'action' has non-finite values \(first at step 3\)"),
        (lambda e: e["is_first"].__setitem__(4, True), "'is_first' must be True at step 0 only"),
        (lambda e: e["is_last"].__setitem__(-1, False), "'is_last' must be True at the final step only"),
        (lambda e: e["stamp"].__setitem__(5, 0.0), "'stamp' must not decrease"),
        (lambda e: e.update(image=e["image"][..., 0]), r"'image' must be \(T, H, W, C\)"),
    ],
)
def test_invalid_episodes_are_rejected(edit, message):
    ep = episode()
    edit(ep)
    with pytest.raises(EpisodeError, match=message):
        validate_episode(ep)


def test_corrupt_and_missing_files(tmp_path):
    path = save_episode(tmp_path / "ep.npz", episode())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(EpisodeError, match="is unreadable"):
        load_episode(path)
    with pytest.raises(EpisodeError, match="episode file not found"):
        load_episode(tmp_path / "none.npz")
    with pytest.raises(EpisodeError, match="dataset folder not found"):
        episode_paths(tmp_path / "missing")
