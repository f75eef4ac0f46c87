"""redraw_sim.drive_metrics on synthetic ground-truth streams whose metrics are known by construction."""

import math

import pytest

from redraw_sim.drive_metrics import SIM_HZ, DriveMetrics, DriveMetricsError

LOOP = 10.0          # m, a short loop
SPEED = 0.5          # m/s


def stream(seconds: float, depart_at: tuple[float, ...] = (), start_s: float = 0.0, reward: float = 0.8, offset: float = 0.02):
    """A robot driving at SPEED from the twin's start: laps every LOOP m within an episode, a lane departure (then a
    new episode from distance 0) at each time in depart_at. Yields ground-truth dicts, one per simulator step."""
    episode, ep_start = 0, start_s
    departures = sorted(depart_at)
    for i in range(1, int(round(seconds * SIM_HZ)) + 1):
        t = start_s + i / SIM_HZ
        distance = SPEED * (t - ep_start)
        out = bool(departures) and t >= departures[0] - 1e-9
        yield {"stamp_s": t, "x_m": 0.0, "y_m": 0.0, "yaw_rad": 0.0, "lane_offset_m": -offset, "lane_heading_rad": 0.0,
               "s_m": distance % LOOP, "distance_m": distance, "laps": int(distance // LOOP), "lap_time_s": math.nan,
               "speed_mps": SPEED, "yaw_rate_rps": 0.0, "reward": -20.0 if out else reward, "episode": episode, "out_of_lane": float(out)}
        if out:
            departures.pop(0)
            episode, ep_start = episode + 1, t


def test_laps_lap_times_offset_and_reward_without_departures():
    m = DriveMetrics(duration_s=50.0, control_hz=10.0)
    for v in stream(60.0):
        if v["stamp_s"] >= 2.0:
            m.open(2.0)            # the robot already drove 1 m before the window: the first lap is partial
        m.add_truth(v)
        if m.done:
            break
    s = m.summary()
    assert m.done and s["sim_seconds"] == pytest.approx(50.0, abs=0.05)
    # laps at 20 s, 40 s (the twin's count); the first from the window's start, 18 s; then 20 s
    assert s["laps"] == 2 and s["lap_times_s"] == pytest.approx([18.0, 20.0], abs=0.05)
    assert s["lap_time_s"] == pytest.approx(19.0, abs=0.05)
    assert s["centre_offset_cm"] == pytest.approx(2.0) and s["departures"] == 0
    assert s["dense_reward"] == pytest.approx(0.8) and s["truth_coverage"] == pytest.approx(1.0, abs=0.01)
    assert s["distance_m"] == pytest.approx(SPEED * 50.0, abs=0.05) and s["speed_mps"] == pytest.approx(SPEED, abs=0.01)


def test_departures_cost_the_penalty_once_per_control_step_and_restart_the_lap_count():
    m = DriveMetrics(duration_s=60.0, control_hz=10.0)
    m.open(0.0)
    for v in stream(61.0, depart_at=(25.0,)):
        m.add_truth(v)
    m.add_departure(25.0)
    m.add_departure(70.0)         # outside the window: ignored
    s = m.summary()
    assert s["departures"] == 1 and s["departures_seen_in_events"] == 1 and s["departures_seen_in_truth"] == 1 and s["episodes"] == 2
    # laps at 20 s (episode 0) and at 25 + 20 = 45 s (episode 1, counted from its start)
    assert s["laps"] == 2 and s["lap_times_s"] == pytest.approx([20.0, 20.0], abs=0.05)
    steps = 60.0 * 10.0
    assert s["dense_reward"] == pytest.approx((0.8 * (steps - 1 / 3) - 20.0) / steps, rel=1e-3)
    # the env's definition: one control step of -20 among 600, the others 0.8
    assert s["dense_reward"] == pytest.approx((0.8 * 599 - 20.0) / 600, abs=2e-3)
    assert s["distance_m"] == pytest.approx(SPEED * 25.0 + SPEED * 35.0, abs=0.1)


def test_lost_messages_show_in_the_coverage_not_in_the_means():
    m = DriveMetrics(duration_s=30.0)
    m.open(0.0)
    for i, v in enumerate(stream(31.0)):
        if i % 4 != 1:            # a quarter lost
            m.add_truth(v)
    s = m.summary()
    assert s["truth_coverage"] == pytest.approx(0.75, abs=0.02)
    assert s["dense_reward"] == pytest.approx(0.8) and s["centre_offset_cm"] == pytest.approx(2.0)
    assert s["laps"] == 1 and s["lap_times_s"][0] == pytest.approx(20.0, abs=0.1)


def test_window_and_errors():
    m = DriveMetrics(duration_s=5.0)
    with pytest.raises(DriveMetricsError, match="never opened"):
        m.summary()
    for v in stream(3.0):
        m.add_truth(v)              # before the window: only remembered as episode starts
    m.open(3.0)
    with pytest.raises(DriveMetricsError, match="no ground truth"):
        m.summary()
    assert not m.done and m.progress()["sim_s"] == 0.0
    with pytest.raises(ValueError, match="must be > 0"):
        DriveMetrics(duration_s=0.0)
