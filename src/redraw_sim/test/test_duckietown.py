"""Duckietown lane following: laps, perturbations, reward signs, metrics vs the simulator pose, observations."""

import math

import gymnasium as gym
import numpy as np
import pytest

import redraw_sim  # noqa: F401  (registers the ids)
from redraw_common.kinematics import KinematicsConfig
from redraw_common.perturb import PerturbError
from redraw_common.preprocessing import JPEG_TOLERANCE, PreprocessConfig, encode_jpeg, preprocess
from redraw_sim.drivers import LaneFollowPController

SIM_DT = 1.0 / 30.0


# --- laps with the expert ---------------------------------------------------------------------------------

def test_expert_completes_a_lap_and_lap_metrics_match_the_pose(nominal_env, straight_start):
    env, expert = nominal_env, LaneFollowPController()
    _, info = env.reset(seed=1, options={"s": straight_start, "offset": 0.0, "heading": 0.0})
    start_xy = np.array(info["pose"][:2])
    track_length = env.lane.track.length
    offset_errors, lap_info, prev_distance = [], None, 0.0
    for _ in range(1000):
        _, reward, terminated, truncated, info = env.step(expert.act(env.lane_state()))
        assert not terminated, f"the expert left the lane: {info}"
        sim = env.lane.sim
        lp = sim.get_lane_pos2(sim.cur_pos, sim.cur_angle)   # the simulator's own lane pose (sign: dist < 0 = left)
        offset_errors.append(abs(info["offset_cm"] - 100 * abs(lp.dist)))
        assert info["lane_offset_m"] == pytest.approx(-lp.dist, abs=3e-3)
        if info["laps"] == 1:
            lap_info = info
            break
        prev_distance = info["distance_m"]
    assert lap_info is not None, f"no lap after 1000 steps (100 s): distance {info['distance_m']:.2f} of {track_length:.2f} m"
    # the lap is counted on the step where the robot is back at its start point, one loop length later
    assert prev_distance < track_length <= lap_info["distance_m"]
    step_len = lap_info["distance_m"] - prev_distance
    assert np.linalg.norm(np.array(lap_info["pose"][:2]) - start_xy) < step_len + 0.03
    assert lap_info["lap_time_s"] == pytest.approx(lap_info["sim_time_s"], abs=0.1)
    assert 30 < lap_info["lap_time_s"] < 90     # 10.7 m at the expert's ~0.17 m/s
    assert max(offset_errors) < 0.3             # cm: our centre offset = the simulator's lane distance
    assert len(offset_errors) > 300


def test_expert_with_reversed_actions_leaves_the_lane_within_seconds(reversed_env, straight_start):
    env, expert = reversed_env, LaneFollowPController()
    env.reset(seed=1, options={"s": straight_start, "offset": 0.01, "heading": 0.05})
    for _ in range(50):
        _, reward, terminated, truncated, info = env.step(expert.act(env.lane_state()))
        if terminated:
            break
    assert terminated, "with reversed actions the expert should leave the lane within 5 s"
    episode = info["episode"]
    assert episode["end"] in ("left_lane", "off_road") and episode["out_of_lane_events"] == 1
    assert reward == -env.lane.reward_config.out_of_lane_penalty
    assert info["sim_time_s"] < 5.0
    assert episode["distance_m"] < 0      # reversed: the expert's forward command drives it backwards


# --- perturbations change the motion, inside the simulator ---------------------------------------------------

@pytest.fixture(scope="module")
def lane_sims(headless):
    """Physics-only LaneSims (tiny camera, never rendered) per perturbation string, built on demand."""
    from redraw_sim.duckietown_sim import LaneSim

    cache = {}

    def get(perturb):
        if perturb not in cache:
            cache[perturb] = LaneSim("loop_empty", perturb, camera_width=32, camera_height=24, seed=0)
        return cache[perturb]

    return get


def drive(lane, s, commands, heading=0.0):
    """Run wheel commands (one per 1/30 s) from rest at arc length s; return per-substep (x, z, angle, speed, distance)."""
    lane.reset(seed=0, s=s, offset=0.0, heading=heading)
    out = []
    for left, right in commands:
        lane.step(left, right, 1)
        x, _, z = lane.sim.cur_pos
        out.append((x, z, lane.sim.cur_angle, lane.sim.velocities()[0], lane.episode.distance))
    out = np.array(out)
    out[:, 2] = np.unwrap(out[:, 2])
    return out


def test_nominal_matches_the_stock_simulator_dynamics(lane_sims, straight_start):
    from duckietown_world.world_duckietown.pwm_dynamics import PWMCommands, get_DB18_nominal

    lane = lane_sims("")
    assert lane.perturbation == {} and lane_sims("gain:1,trim:0").perturb == ""
    commands = [(0.3, 0.35)] * 30 + [(0.0, 0.2)] * 15
    ours = drive(lane, straight_start, commands)
    assert np.array_equal(ours, drive(lane_sims("gain:1,trim:0"), straight_start, commands))
    # the same commands through duckietown_world's nominal DB18 (0.15 s delay) from the same pose
    lane.reset(seed=0, s=straight_start, offset=0.0, heading=0.0)
    sim = lane.sim
    state = get_DB18_nominal(delay=0.15).initialize(c0=(sim.cartesian_from_weird(sim.cur_pos, sim.cur_angle), np.zeros((3, 3))), t0=0)
    for i, (left, right) in enumerate(commands):
        state = state.integrate(SIM_DT, PWMCommands(motor_left=left, motor_right=right))
        pos, angle = sim.weird_from_cartesian(state.TSE2_from_state()[0])
        assert (pos[0], pos[2]) == pytest.approx(tuple(ours[i, :2]), abs=1e-9)
        assert math.remainder(angle - ours[i, 2], 2 * math.pi) == pytest.approx(0, abs=1e-9)


def test_trim_turns_the_robot(lane_sims, straight_start):
    straight = [(0.3, 0.3)] * 30
    turn = {}
    for p in ("", "trim:0.1", "trim:-0.1"):
        traj = drive(lane_sims(p), straight_start, straight)
        turn[p] = traj[-1, 2] - traj[0, 2]
    assert abs(turn[""]) < 1e-6                          # equal commands drive straight
    assert turn["trim:0.1"] > 0.1 and turn["trim:-0.1"] < -0.1   # right motor stronger -> turns left, and back
    assert turn["trim:0.1"] == pytest.approx(-turn["trim:-0.1"], rel=1e-6)


def test_gain_scales_the_speed(lane_sims, straight_start):
    straight = [(0.3, 0.3)] * 45
    nominal = drive(lane_sims(""), straight_start, straight)
    slow = drive(lane_sims("gain:0.5"), straight_start, straight)
    fast = drive(lane_sims("gain:1.5"), straight_start, straight)
    assert nominal[-1, 4] > 0.15                          # ~0.2 m in 1.5 s
    assert slow[-1, 4] / nominal[-1, 4] == pytest.approx(0.5, rel=0.02)
    assert fast[-1, 4] / nominal[-1, 4] == pytest.approx(1.5, rel=0.02)
    assert slow[-1, 3] / nominal[-1, 3] == pytest.approx(0.5, rel=0.02)


def test_delay_shifts_the_response(lane_sims, straight_start):
    step_input = [(0.4, 0.4)] * 45

    def onset(traj):   # time at which the robot first moves faster than 2 cm/s
        return (np.argmax(traj[:, 3] > 0.02) + 1) * SIM_DT

    t_nominal = onset(drive(lane_sims(""), straight_start, step_input))
    t_delayed = onset(drive(lane_sims("delay:0.3"), straight_start, step_input))
    assert 0.1 < t_nominal < 0.3                           # the simulator's own 0.15 s delay
    assert t_delayed - t_nominal == pytest.approx(0.3, abs=SIM_DT + 1e-9)


def test_reversed_flips_the_motion(lane_sims, straight_start):
    commands = [(0.25, 0.35)] * 30
    nominal = drive(lane_sims(""), straight_start, commands)
    flipped = drive(lane_sims("reversed"), straight_start, commands)
    assert nominal[-1, 4] > 0.05 and flipped[-1, 4] < -0.05          # ahead vs backwards along the lane
    assert flipped[-1, 4] == pytest.approx(-nominal[-1, 4], rel=0.02)
    assert nominal[-1, 2] - nominal[0, 2] > 0.05 > -0.05 > flipped[-1, 2] - flipped[0, 2]   # left turn vs right turn


def test_perturbations_compose(lane_sims, straight_start):
    composed = lane_sims("trim:0.1,gain:0.7,delay:0.2")
    assert composed.perturb == "trim:0.1,gain:0.7,delay:0.2"
    straight = [(0.3, 0.3)] * 45
    nominal, traj = drive(lane_sims(""), straight_start, straight), drive(composed, straight_start, straight)
    assert traj[-1, 2] - traj[0, 2] > 0.05                                  # trim: turns left
    assert np.argmax(traj[:, 3] > 0.02) - np.argmax(nominal[:, 3] > 0.02) == 6  # delay: 0.2 s = 6 steps later
    # gain: the speed builds up to 0.7x nominal (the trim adds its own small speed change at this yaw rate)
    assert traj[-1, 3] / nominal[-1, 3] == pytest.approx(0.7, rel=0.05)


# --- reward signs --------------------------------------------------------------------------------------------

def test_reward_signs(nominal_env, straight_start):
    env = nominal_env
    env.reset(seed=0, options={"s": straight_start, "offset": 0.0, "heading": 0.0})
    still = [env.step([0.0, 0.0])[1] for _ in range(5)]
    assert max(abs(r) for r in still) < 1e-6                      # standing on the centre earns nothing
    env.reset(seed=0, options={"s": straight_start, "offset": 0.02, "heading": 0.0})
    assert abs(env.step([0.0, 0.0])[1]) < 0.05                    # still, 2 cm off centre: about zero
    env.reset(seed=0, options={"s": straight_start, "offset": 0.0, "heading": 0.0})
    forward = [env.step([0.6, 0.0])[1] for _ in range(10)]
    assert sum(forward) > 2.0 and forward[-1] > 0.3
    env.reset(seed=0, options={"s": straight_start + 0.5, "offset": 0.0, "heading": 0.0})
    backward = [env.step([-0.6, 0.0])[1] for _ in range(10)]
    assert sum(backward) < -2.0 and backward[-1] < -0.3
    # the centre penalty grows with the distance from the centre
    at_rest = []
    for offset in (0.0, 0.03, 0.06, 0.09):
        env.reset(seed=0, options={"s": straight_start, "offset": offset, "heading": 0.0})
        at_rest.append(env.step([0.0, 0.0])[1])
    assert at_rest[0] > at_rest[1] > at_rest[2] > at_rest[3] > -env.lane.reward_config.centre_weight - 1e-9


def test_leaving_the_lane_is_penalised_and_ends_the_episode(nominal_env, straight_start):
    env = nominal_env
    env.reset(seed=0, options={"s": straight_start, "offset": 0.0, "heading": 0.0})
    for _ in range(40):
        _, reward, terminated, truncated, info = env.step([0.5, 1.0])   # hard left, across the centre line
        if terminated:
            break
    assert terminated and not truncated
    assert reward == -env.lane.reward_config.out_of_lane_penalty
    assert info["out_of_lane"] and info["episode"]["end"] == "left_lane" and info["episode"]["out_of_lane_events"] == 1
    sim = env.lane.sim
    assert -sim.get_lane_pos2(sim.cur_pos, sim.cur_angle).dist > env.lane.reward_config.lane_limit   # left of the lane
    with pytest.raises(RuntimeError, match="call reset"):
        env.step([0.0, 0.0])


def test_time_limit_truncates_with_episode_metrics(headless):
    from redraw_sim.duckietown_env import DuckietownLaneEnv

    env = DuckietownLaneEnv(seed=3, time_limit=5, camera_width=32, camera_height=24)
    env.reset()
    for i in range(5):
        _, _, terminated, truncated, info = env.step([0.3, 0.0])
        assert not terminated and truncated == (i == 4)
    episode = info["episode"]
    assert episode["end"] == "time_limit" and episode["length"] == 5 and episode["laps"] == 0
    assert episode["dense_reward"] == pytest.approx(episode["return"] / 5)
    assert episode["sim_time_s"] == pytest.approx(0.5)


# --- observations --------------------------------------------------------------------------------------------

def test_observation_is_the_preprocessed_camera_frame(nominal_env, straight_start):
    env = nominal_env
    assert env.preprocess_config == PreprocessConfig() and env.kinematics_config == KinematicsConfig()
    obs, _ = env.reset(seed=0, options={"s": straight_start, "offset": 0.0, "heading": 0.0})
    assert obs["image"].shape == (64, 64, 2) and obs["image"] in env.observation_space["image"]
    assert np.array_equal(obs["image"], preprocess(env.frame, env.preprocess_config))
    assert env.frame.shape == (120, 160, 3)
    # the lane mask sees the yellow centre line on the left and the white edge line on the right
    yellow, white = obs["image"][..., 0].astype(float), obs["image"][..., 1].astype(float)
    assert yellow[:, :32].sum() > 5 * yellow[:, 32:].sum() > 0
    assert white[:, 32:].sum() > 5 * white[:, :32].sum() > 0
    obs, *_ = env.step([0.5, 0.1])
    assert np.array_equal(obs["image"], preprocess(env.frame, env.preprocess_config))


def test_vector_is_velocity_then_the_last_actions(headless):
    """action_history=2: vector = measured (forward m/s, yaw rate) + the last 2 actions sent, newest first, zeros
    after a reset; the velocity part is the default env's vector."""
    from redraw_common.observation import history_from_actions
    from redraw_sim.duckietown_env import DuckietownLaneEnv

    plain = DuckietownLaneEnv(seed=3, camera_width=32, camera_height=24)
    env = DuckietownLaneEnv(seed=3, camera_width=32, camera_height=24, action_history=2)
    assert env.observation_space["vector"].shape == (6,) and env.describe()["action_history"] == 2
    actions = np.array([[0.6, 0.2], [0.8, -0.4], [1.0, 0.0], [0.7, 0.3], [0.0, 0.0]], np.float32)
    obs, _ = env.reset(seed=1)
    ref, _ = plain.reset(seed=1)
    vectors, refs = [obs["vector"]], [ref["vector"]]
    for a in actions[:-1]:
        vectors.append(env.step(a)[0]["vector"])
        refs.append(plain.step(a)[0]["vector"])
    vectors = np.array(vectors)
    assert np.array_equal(vectors[:, :2], np.array(refs)) and np.abs(vectors[-1, :2]).max() > 0
    assert np.array_equal(vectors[:, 2:], history_from_actions(actions, 2))
    obs, _ = env.reset()
    assert not obs["vector"].any()
    with pytest.raises(ValueError, match="action_history"):
        DuckietownLaneEnv(camera_width=32, camera_height=24, action_history=-1)


@pytest.mark.parametrize("mode, camera", [("lane_mask", (160, 120)), ("rgb", (160, 120)), ("lane_mask", (640, 480))])
def test_jpeg_round_trip_within_the_stated_tolerance(headless, mode, camera):
    from redraw_sim.duckietown_env import DuckietownLaneEnv

    env = DuckietownLaneEnv(seed=0, obs_mode=mode, camera_width=camera[0], camera_height=camera[1])
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(6):
        options = {"s": rng.uniform(0, env.lane.track.length), "offset": rng.uniform(-0.04, 0.04), "heading": rng.uniform(-0.3, 0.3)}
        obs, _ = env.reset(seed=0, options=options)
        jpeg = preprocess(encode_jpeg(env.frame, quality=90), env.preprocess_config)
        diffs.append(np.abs(obs["image"].astype(float) - jpeg.astype(float)).mean())
    print(f"JPEG q90 round trip, {mode} from {camera}: mean abs diff {np.mean(diffs):.2f}, max {np.max(diffs):.2f} (tolerance {JPEG_TOLERANCE})")
    assert 0 < max(diffs) <= JPEG_TOLERANCE


def test_seeded_and_reproducible(nominal_env, headless):
    from redraw_sim.duckietown_env import DuckietownLaneEnv

    other = DuckietownLaneEnv(seed=123, camera_width=160, camera_height=120)
    runs = []
    for env in (nominal_env, other):
        obs, info = env.reset(seed=7)
        rng = np.random.default_rng(0)
        trace = [(obs["image"].copy(), info["pose"])]
        for _ in range(15):
            obs, reward, *_ , info = env.step(rng.uniform([0.2, -0.3], [0.6, 0.3]))
            trace.append((obs["image"].copy(), info["pose"], reward))
        runs.append(trace)
    for a, b in zip(*runs):
        assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
    poses = {tuple(np.round(nominal_env.reset(seed=s)[1]["pose"], 6)) for s in range(4)}
    assert len(poses) == 4                                           # different seeds, different start poses
    starts = [nominal_env.reset()[1] for _ in range(20)]              # random starts stay on the lane
    assert all(abs(i["lane_offset_m"]) <= 0.03 + 1e-9 and abs(i["heading_deg"]) <= 15 + 1e-6 for i in starts)


# --- maps, registration, errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("map_name", ["small_loop", "small_loop_cw", "zigzag_dists", "ETHZ_loop"])
def test_other_maps_drive(headless, map_name):
    env = gym.make("redraw/DuckietownLoop-v0", map_name=map_name, camera_width=64, camera_height=48)
    expert = LaneFollowPController()
    obs, info = env.reset(seed=0)
    for _ in range(60):
        obs, reward, terminated, truncated, info = env.step(expert.act(env.unwrapped.lane_state()))
        assert not terminated
    assert info["distance_m"] > 0.7 and reward > 0
    assert env.unwrapped.describe()["map"] == map_name


def test_registered_ids_and_clear_errors(headless):
    env = gym.make("redraw/DuckietownLoopReversed-v0", obs_mode="rgb", camera_width=64, camera_height=48)
    base = env.unwrapped
    assert base.perturb == "reversed" and base.preprocess_config.mode == "rgb"
    assert base.observation_space["image"].shape == base.preprocess_config.shape == (64, 64, 3)
    assert isinstance(base.kinematics_config, KinematicsConfig) and base.substeps == 3
    from redraw_sim.duckietown_env import DuckietownLaneEnv

    with pytest.raises(ValueError, match="map must be one of the loop maps"):
        DuckietownLaneEnv(map_name="udem1")
    with pytest.raises(PerturbError, match="unknown perturbation 'wind'"):
        DuckietownLaneEnv(perturb="wind:2")
    with pytest.raises(ValueError, match="control_hz must divide"):
        DuckietownLaneEnv(control_hz=7)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be 2 finite numbers"):
        env.step([0.1, math.nan])
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"x": 1.0})
