"""The paper's DMC pairs (METHOD.md 8.1): spaces, episode length, reward range, and each target's modification."""

import gymnasium as gym
import numpy as np
import pytest

import redraw_sim
from redraw_common.perturb import PerturbError
from redraw_sim.dmc_env import PAIRS, DMCEnv

NV = {"cup_catch": 4, "finger_turn_hard": 3, "pendulum_swingup": 1, "reacher_easy": 2}
ACTIONS = {"cup_catch": 2, "finger_turn_hard": 2, "pendulum_swingup": 1, "reacher_easy": 2}


@pytest.mark.parametrize("name", redraw_sim.DMC_SOURCES + redraw_sim.DMC_TARGETS)
def test_episode_length_spaces_and_reward_range(name):
    env = gym.make(f"redraw/dmc_{name}-v0")
    source = PAIRS[name][0] if name in PAIRS else name
    assert env.observation_space["image"].shape == (64, 64, 3) and env.observation_space["image"].dtype == np.uint8
    assert env.observation_space["vector"].shape == (NV[source],)
    assert env.action_space.shape == (ACTIONS[source],) and env.action_space.low.min() == -1 and env.action_space.high.max() == 1
    obs, info = env.reset(seed=0)
    assert obs["image"].dtype == np.uint8 and obs["image"].std() > 5          # a rendered scene, not a blank
    assert info["is_real"] == (name in PAIRS) and info["gt_state"].shape == (2 * NV[source],)
    rng = np.random.default_rng(0)
    rewards, steps = [], 0
    while True:
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        steps += 1
        rewards.append(reward)
        assert not terminated
        if truncated:
            break
        assert steps < 500
    assert steps == 500 and info["episode"]["length"] == 500
    assert 0.0 <= min(rewards) and max(rewards) <= 1.0
    assert info["episode"]["return"] == pytest.approx(sum(rewards)) and 0 <= sum(rewards) <= 500
    assert np.allclose(obs["vector"], info["gt_state"][NV[source]:])   # the vector is the joint velocities


def _zero_action_rollout(name, steps=25, seed=3):
    env = DMCEnv(name)
    env.reset(seed=seed)
    start = env.gt_state()
    for _ in range(steps):
        env.step(np.zeros(env.action_space.shape))
    return start, env.gt_state()


def test_cup_catch_windy_pushes_the_ball_along_minus_x():
    start, calm = _zero_action_rollout("cup_catch")
    start_w, windy = _zero_action_rollout("cup_catch_windy")
    assert np.array_equal(start, start_w)                        # same seed, same start
    ball_x = 2                                                   # qpos: cup_x, cup_z, ball_x, ball_z
    assert windy[ball_x] < calm[ball_x] - 0.2                    # 2 N along -x for 1 s
    assert windy[4 + ball_x] < calm[4 + ball_x] or windy[ball_x] < -0.2


def test_finger_torque_spins_the_spinner():
    start, free = _zero_action_rollout("finger_turn_hard")
    start_t, torqued = _zero_action_rollout("finger_turn_hard_torque_applied")
    assert np.array_equal(start, start_t)
    hinge, hinge_vel = 2, 5                                      # qpos: proximal, distal, hinge; then qvel
    assert abs(free[hinge] - start[hinge]) < 1e-3 and abs(free[hinge_vel]) < 1e-3   # left alone it stays
    # +4 N m about world y; the hinge axis is -y: the spinner turns the negative way, fast
    assert torqued[hinge] - start[hinge] < -1.0 and torqued[hinge_vel] < -1.0


@pytest.mark.parametrize("source, target", [("pendulum_swingup", "pendulum_swingup_reversed_actions"),
                                            ("reacher_easy", "reacher_easy_reversed_actions")])
def test_reversed_actions_equal_the_source_with_negated_actions(source, target):
    rng = np.random.default_rng(1)
    envs = {n: DMCEnv(n) for n in (source, target)}
    actions = rng.uniform(-1, 1, (40,) + envs[source].action_space.shape)
    traj = {}
    for label, name, sign in (("src+", source, 1), ("src-", source, -1), ("tgt+", target, 1)):
        env = envs[name]
        env.reset(seed=5)
        traj[label] = np.array([env.step(sign * a)[4]["gt_state"] for a in actions])
    assert np.allclose(traj["tgt+"], traj["src-"], atol=1e-9)          # set_control(-action), nothing else
    assert np.abs(traj["tgt+"] - traj["src+"]).max() > 0.1             # and that is a real change of the motion


def test_seeded_reset_and_clear_errors():
    env = DMCEnv("reacher_easy")
    a, b = env.reset(seed=11)[1]["gt_state"], env.reset(seed=11)[1]["gt_state"]
    assert np.array_equal(a, b) and not np.array_equal(a, env.reset(seed=12)[1]["gt_state"])
    with pytest.raises(ValueError, match="unknown DMC task 'cheetah_run'"):
        DMCEnv("cheetah_run")
    with pytest.raises(ValueError, match="'wind' applies to ball_in_cup tasks only"):
        DMCEnv("reacher_easy", perturb="wind:2")
    with pytest.raises(PerturbError, match="unknown perturbation 'trim'"):
        DMCEnv("pendulum_swingup", perturb="trim:0.1")
