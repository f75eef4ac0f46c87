"""Data-collection drivers and the `collect` dataset writer."""

import json
import math
from collections import deque

import gymnasium as gym
import numpy as np
import pytest

import redraw_sim  # noqa: F401
from redraw_common.episodes import iter_episodes, load_episode
from redraw_sim.collect import CollectError, collect, main, make_driver
from redraw_sim.drivers import ActuationSigns, DriverInputError, ExploreDriver, LaneFollowPController, RandomDriver


def test_p_controller_steers_back_to_the_lane():
    expert = LaneFollowPController(forward=0.6)
    assert expert.act({"lane_offset_m": 0.0, "lane_heading_rad": 0.0}).tolist() == [pytest.approx(0.6), 0.0]
    assert expert.act({"lane_offset_m": 0.03, "lane_heading_rad": 0.0})[1] < 0       # left of centre: turn right
    assert expert.act({"lane_offset_m": -0.03, "lane_heading_rad": 0.0})[1] > 0
    assert expert.act({"lane_offset_m": 0.0, "lane_heading_rad": 0.2})[1] < 0        # pointing left: turn right
    assert expert.act({"lane_offset_m": 1.0, "lane_heading_rad": 1.0})[1] == -1.0   # clipped
    with pytest.raises(DriverInputError, match="expected a lane state mapping with 'lane_offset_m'"):
        expert.act(np.zeros((64, 64, 2), np.uint8))
    with pytest.raises(DriverInputError, match="must be finite"):
        expert.act({"lane_offset_m": math.nan, "lane_heading_rad": 0.0})


def test_explorer_is_seeded_bounded_and_visits_every_mode():
    def run(seed):
        driver, rng = ExploreDriver(seed=seed), np.random.default_rng(0)
        state = {"lane_offset_m": 0.0, "lane_heading_rad": 0.0}
        actions = []
        for _ in range(3000):
            a = driver.act(state)
            actions.append(a)
            # a crude lane: turning moves the heading, heading moves the offset
            state = {"lane_offset_m": float(np.clip(state["lane_offset_m"] + 0.02 * state["lane_heading_rad"], -0.1, 0.1)),
                     "lane_heading_rad": float(np.clip(state["lane_heading_rad"] + 0.15 * a[1] + 0.01 * rng.standard_normal(), -1, 1))}
        return np.array(actions), driver.mode_counts

    actions, modes = run(0)
    assert np.array_equal(actions, run(0)[0]) and not np.array_equal(actions, run(1)[0])
    assert actions.dtype == np.float32 and np.abs(actions).max() <= 1.0
    assert all(modes[m] > 0 for m in ExploreDriver.MODES), modes
    assert (actions[:, 0] < 0).any() and np.percentile(actions[:, 0], 90) - np.percentile(actions[:, 0], 10) > 0.4   # varied speeds
    assert actions[:, 1].std() > 0.2


def test_explorer_in_the_simulator_drifts_and_recovers(nominal_env):
    env, driver = nominal_env, ExploreDriver(seed=2)
    env.reset(seed=2)
    driver.reset(seed=2)
    offsets, episodes = [], 0
    for _ in range(400):
        _, _, terminated, truncated, info = env.step(driver.act(env.lane_state()))
        offsets.append(info["lane_offset_m"])
        if terminated or truncated:
            episodes += 1
            env.reset()
            driver.reset()
    offsets = np.abs(offsets)
    assert driver.mode_counts["recover"] > 0 or episodes > 0
    assert (offsets > 0.04).mean() > 0.05           # it leaves the centre...
    assert (offsets < 0.02).mean() > 0.3            # ...and spends time near it
    assert episodes <= 4


@pytest.mark.parametrize("gains", [(1.0, 1.0), (-1.0, -1.0), (0.5, -2.0)])
def test_actuation_signs_identify_a_lagged_robot(gains):
    """A robot whose (speed, yaw rate) follow the commands of 3 ticks before times `gains`, with noise."""
    signs, rng = ActuationSigns(), np.random.default_rng(0)
    sent = []
    for t in range(60):
        if len(sent) > 2:
            signs.observe(*(np.array(gains) * sent[-3] + 0.05 * rng.standard_normal(2)))
        sent.append(signs.command(np.array([0.6, 0.5 * math.sin(t / 3)])))
    assert np.array_equal(signs.signs, np.sign(gains)) and signs.decided.all(), signs.signs
    # the turn command varies, so its lag is found; a constant forward command fits every lag alike
    assert signs.decided_lag[1] == 2 and np.all(signs.decided_after <= 15), (signs.decided_lag, signs.decided_after)
    assert "response 3 ticks after the command" in signs.describe(1)
    # the commands now act as intended: forward drives ahead, turn > 0 turns left
    assert np.all(np.sign(np.array(gains) * signs.command(np.array([0.6, 0.5]))) == [1, 1])
    signs.new_episode()                      # a reset forgets the commands in flight, not the estimate
    assert np.array_equal(signs.signs, np.sign(gains)) and len(signs.sent) == 0
    with pytest.raises(ValueError, match="expected max_lag >= 0"):
        ActuationSigns(max_lag=-1)


def test_actuation_signs_stay_undecided_on_noise():
    """Odometry that does not depend on the commands never decides a sign."""
    signs, rng = ActuationSigns(), np.random.default_rng(1)
    for _ in range(3000):
        signs.observe(*(0.3 * rng.standard_normal(2)))
        signs.command(np.array([0.2 + 0.6 * rng.uniform(), rng.uniform(-1, 1)]))
    assert not signs.decided.any() and signs.signs.tolist() == [1.0, 1.0], signs.t_statistics()


@pytest.mark.parametrize("signs_of_robot", [(1, 1), (-1, -1), (1, -1), (-1, 1)])
@pytest.mark.parametrize("delay", [1, 4])
def test_explorer_identifies_each_channel_once_on_a_delayed_noisy_robot(signs_of_robot, delay):
    """The explorer in closed loop with a kinematic lane robot whose motors have gain 0.7 and the given signs,
    act `delay` ticks late and whose odometry is noisy: each channel is decided exactly once, correctly, within
    a few seconds, and the sign never moves afterwards (through lane departures and resets)."""
    rng, dt, gain = np.random.default_rng(7), 0.1, 0.7
    driver = ExploreDriver(seed=3)
    history, departures = [], 0
    pending = deque([np.zeros(2)] * delay)
    offset, heading = 0.0, 0.0
    speed, yaw_rate = 0.0, 0.0
    for _ in range(1500):
        state = {"lane_offset_m": offset, "lane_heading_rad": heading,
                 "speed_mps": speed + 0.05 * rng.standard_normal(), "yaw_rate_rps": yaw_rate + 0.3 * rng.standard_normal()}
        pending.append(driver.act(state))
        forward, turn = gain * np.array(signs_of_robot) * pending.popleft()
        speed, yaw_rate = 0.4 * forward, 4.0 * turn
        heading += yaw_rate * dt
        offset += speed * math.sin(heading) * dt
        history.append(driver.actuation.signs.copy())
        if abs(offset) > 0.15 or abs(heading) > math.radians(80):
            departures += 1
            offset, heading, speed, yaw_rate = 0.0, 0.0, 0.0, 0.0
            pending = deque([np.zeros(2)] * delay)
            driver.reset()
    history = np.array(history)
    actuation = driver.actuation
    assert actuation.decided.all() and actuation.signs.tolist() == list(signs_of_robot), (actuation.signs, actuation.decided_t)
    changes = (np.diff(history, axis=0) != 0).sum(axis=0)
    assert changes.tolist() == [int(s < 0) for s in signs_of_robot], changes      # a reversed channel flips once, never back
    assert np.all(actuation.decided_after <= 100), actuation.decided_after           # within 10 s at 10 Hz
    # the observation `delay` + 1 ticks after a command is the first it moves (lag index `delay`); forward
    # is held for seconds at a time, so its lag is not identifiable and not asserted
    assert actuation.decided_lag[1] == delay, actuation.decided_lag


def test_explorer_drives_ahead_on_a_reversed_robot(headless):
    """With odometry in its input the explorer keeps lane-following data coming from a robot with reversed
    controls; from the lane pose alone it steers the wrong way and leaves the lane again and again."""
    env = gym.make("redraw/DuckietownLoop-v0", perturb="reversed").unwrapped

    def drive(with_odometry: bool):
        driver, distance, departures = ExploreDriver(seed=5), 0.0, 0
        env.reset(seed=5)
        for _ in range(300):
            state = env.lane_state()
            if not with_odometry:
                state = {k: state[k] for k in ("lane_offset_m", "lane_heading_rad")}
            _, _, terminated, truncated, info = env.step(driver.act(state))
            if terminated or truncated:
                distance, departures = distance + info["distance_m"], departures + int(terminated)
                env.reset()
                driver.reset()
        return distance + info["distance_m"], departures, driver.actuation

    ahead, departures, actuation = drive(True)
    assert actuation.signs.tolist() == [-1.0, -1.0] and np.all(actuation.decided_after <= 20), actuation.decided_after
    assert ahead > 1.5 and departures <= 2, (ahead, departures)
    blind, blind_departures, blind_actuation = drive(False)
    assert blind_actuation.signs.tolist() == [1.0, 1.0] and blind < ahead / 2 and blind_departures >= 5, (blind, blind_departures)


def test_collect_writes_reward_free_episodes(nominal_env, tmp_path):
    out = tmp_path / "explore"
    summary = collect(nominal_env, ExploreDriver(seed=0), 120, out, seed=4, keep_reward=False, progress=False)
    episodes = list(iter_episodes(out))
    assert summary["transitions"] == 120 and summary["episodes"] == len(episodes)
    assert sum(len(ep["image"]) - 1 for _, ep in episodes) == 120          # one transition per env step
    for _, ep in episodes:
        assert "reward" not in ep and ep["image"].shape[1:] == (64, 64, 2) and ep["action"].shape[1] == 2
        assert np.all(np.diff(ep["stamp"]) > 0) and ep["stamp"][0] == 0.0
        assert not ep["action"][-1].any()                                   # no action after the last observation
    last = load_episode(sorted(out.glob("*.npz"))[-1])
    assert last["is_last"][-1] and not last["is_terminal"][-1] or summary["episode_ends"][-1] == "terminated"
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["reward_free"] and meta["driver"] == "ExploreDriver" and meta["env_settings"]["map"] == "loop_empty"
    with pytest.raises(CollectError, match="already holds episodes"):
        collect(nominal_env, ExploreDriver(seed=0), 10, out, progress=False)


def test_collect_expert_data_keeps_rewards_and_matches_a_replay(nominal_env, tmp_path):
    out = tmp_path / "expert"
    collect(nominal_env, LaneFollowPController(), 40, out, seed=9, progress=False)
    (_, ep), = list(iter_episodes(out))
    assert len(ep["image"]) == 41 and ep["reward"][0] == 0.0 and ep["reward"][1:].sum() > 5
    # the recorded observations and rewards are what the env gives for the recorded actions
    obs, _ = nominal_env.reset(seed=9)
    assert np.array_equal(obs["image"], ep["image"][0])
    for t in range(5):
        obs, reward, *_ = nominal_env.step(ep["action"][t])
        assert np.array_equal(obs["image"], ep["image"][t + 1]) and reward == pytest.approx(ep["reward"][t + 1])


def test_collect_cli_with_dmc_and_errors(tmp_path, capsys):
    out = tmp_path / "reacher"
    assert main(["--env", "redraw/dmc_reacher_easy_reversed_actions-v0", "--driver", "random", "--transitions", "30",
                 "--out", str(out), "--no-progress"]) == 0
    (_, ep), = list(iter_episodes(out))
    assert ep["vector"].shape == (31, 2) and ep["image"].shape == (31, 64, 64, 3) and "reward" in ep
    assert "wrote 30 transitions in 1 episodes" in capsys.readouterr().out
    assert main(["--env", "redraw/dmc_reacher_easy-v0", "--driver", "expert", "--transitions", "5", "--out", str(tmp_path / "x"),
                 "--no-progress"]) == 2
    assert "reads the lane state, which redraw/dmc_reacher_easy-v0 does not provide" in capsys.readouterr().err
    env = gym.make("redraw/dmc_pendulum_swingup-v0")
    with pytest.raises(CollectError, match="unknown driver 'joystick'"):
        make_driver("joystick", env)
    assert isinstance(make_driver("random", env), RandomDriver) and make_driver("random", env).act().shape == (1,)


def test_held_random_actions_reach_full_speed_both_ways():
    """Fresh uniform actions every step average out in the motors' lag; held ones reach full speed forwards and
    backwards (the coverage a world model needs to represent a robot whose actions are reversed)."""
    speeds = {}
    for hold in ((1, 1), (10, 30)):
        env = gym.make("redraw/DuckietownLoop-v0", start={"max_offset": 0.0, "max_heading_deg": 0.0})
        driver = RandomDriver(2, seed=3, hold=hold)
        env.reset(seed=3)
        v = []
        for _ in range(300):
            obs, _, term, trunc, _ = env.step(driver.act())
            v.append(obs["vector"][0])
            if term or trunc:
                env.reset()
        speeds[hold] = np.array(v)
    fast = {h: (np.mean(s > 0.15), np.mean(s < -0.15)) for h, s in speeds.items()}
    assert min(fast[(10, 30)]) > 0.06, fast         # held: >6 % of steps above 0.15 m/s forwards and backwards (10 %, 19 %)
    assert max(fast[(1, 1)]) < 0.04, fast           # fresh every step: rarely (1.3 %, 2.7 %)
    with pytest.raises(ValueError, match="hold must be"):
        RandomDriver(2, hold=(0, 3))
