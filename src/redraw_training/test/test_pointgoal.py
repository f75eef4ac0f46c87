"""The synthetic PointGoal env: gymnasium conventions of the project, seeding, reward, dynamics shifts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from redraw_common.perturb import PerturbError, parse_perturb
from redraw_training.envs import EnvSpecError, env_spec, make_env, preprocess_config_of
from redraw_training.envs.pointgoal import PERTURBATIONS, PointGoalEnv


def _move(env, action, steps=3, seed=0):
    env.reset(seed=seed)
    start = env.unwrapped._pos.copy()
    env.unwrapped._pos = np.zeros(2)  # away from the walls
    for _ in range(steps):
        env.step(np.asarray(action, np.float32))
    return env.unwrapped._pos - np.zeros(2), start


def test_registered_and_follows_the_env_convention():
    env = make_env("redraw/PointGoal-v0")
    spec = env_spec(env)
    assert spec == {"image_shape": (32, 32, 3), "vector_dim": 0, "action_dim": 2}
    assert "redraw/PointGoal-v0" in gym.registry
    obs, info = env.reset(seed=3)
    assert obs["image"].dtype == np.uint8 and obs["image"].shape == (32, 32, 3)
    cfg = preprocess_config_of(env)
    assert (cfg.mode, cfg.height, cfg.width) == ("rgb", 32, 32)
    big = make_env("redraw/PointGoal-v0", size=64, vector=True)
    assert env_spec(big) == {"image_shape": (64, 64, 3), "vector_dim": 2, "action_dim": 2}
    with pytest.raises(EnvSpecError, match="unknown environment id"):
        make_env("redraw/Nope-v0")


def test_seeding_reward_and_episode_end():
    a, b = make_env("redraw/PointGoal-v0"), make_env("redraw/PointGoal-v0")
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset(seed=11)
    assert np.array_equal(oa["image"], ob["image"])
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, info = a.step(np.array([0.3, -0.2], np.float32))
        assert 0.0 <= reward <= 1.0 and not terminated
        total += reward
        steps += 1
        if truncated:
            break
    assert steps == 50 and info["episode_return"] == pytest.approx(total) and "final_distance" in info


def test_dynamics_shifts():
    moved, _ = _move(make_env("redraw/PointGoal-v0"), [1.0, 0.5])
    assert np.allclose(moved, [0.45, 0.225])
    rev, _ = _move(make_env("redraw/PointGoal-v0", perturb="reversed"), [1.0, 0.5])
    assert np.allclose(rev, -moved)
    gain, _ = _move(make_env("redraw/PointGoal-v0", perturb="gain:0.5"), [1.0, 0.5])
    assert np.allclose(gain, 0.5 * moved)
    drift, _ = _move(make_env("redraw/PointGoal-v0", perturb="drift:0.4,reversed"), [0.0, 0.0])
    assert np.allclose(drift, [0.18, 0.0])


def test_images_show_the_motion():
    env = make_env("redraw/PointGoal-v0")
    first, _ = env.reset(seed=0)
    obs = first
    for _ in range(3):
        obs, *_ = env.step(np.array([1.0, 0.0], np.float32))
    assert np.abs(obs["image"].astype(int) - first["image"].astype(int)).mean() > 2.0
    fixed = PointGoalEnv(camera="fixed")
    assert fixed.reset(seed=0)[0]["image"].shape == (32, 32, 3)


@pytest.mark.parametrize("text, message", [
    ("warp", "unknown perturbation 'warp'"),
    ("gain", "needs a value"),
    ("gain:x", "needs a number"),
    ("gain:nan", r"must be in \(0, 100\]"),
    ("gain:0", r"must be in \(0, 100\]"),
    ("reversed:2", "must be 0 or 1"),
    ("reversed,reversed", "given twice"),
])
def test_perturb_errors(text, message):
    """The synthetic env speaks the one perturbation vocabulary (redraw_common.perturb), as the simulators do."""
    with pytest.raises(PerturbError, match=message):
        parse_perturb(text, PERTURBATIONS)
    with pytest.raises(PerturbError, match=message):
        PointGoalEnv(perturb=text)


def test_a_flag_perturbation_takes_its_value_as_in_every_env():
    assert PointGoalEnv(perturb="reversed:1").sign == PointGoalEnv(perturb="reversed").sign == -1.0
    assert PointGoalEnv(perturb="reversed:0").sign == PointGoalEnv().sign == 1.0
    env = PointGoalEnv(perturb="gain:0.5,drift:0.2")
    assert (env.gain, env.drift) == (0.5, 0.2)
