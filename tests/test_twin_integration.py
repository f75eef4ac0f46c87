"""The digital twin and the exploration driver as real node processes over DDS on loopback: camera frames flow,
the explorer drives the twin, perturbations act inside the twin, lane departures reset it with episode
events, and the wheels stop when commands stop. The nodes start as twin.launch.py / explore.launch.py
declare them (their config files), with test-only overrides (small camera, faster than real time)."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers.cpuhog import CpuHog
from helpers.launchstart import start_launch
from helpers.rosproc import NodeGroup

from redraw_common.kinematics import KinematicsConfig, action_to_wheels

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "src" / "redraw_sim" / "launch"
PROBE = Path(__file__).parent / "nodes" / "twin_probe.py"
SMALL_CAMERA = {"camera_width": 160, "camera_height": 120, "log_every": 2.0}
pytestmark = pytest.mark.ros

SOURCE_EXPLORE = 2
EVENT_START, EVENT_END, REASON_LEFT_LANE = 0, 1, 1


def run_probe(group: NodeGroup, tmp_path: Path, seconds: float, command: str = "", sim_seconds: float = 0.0) -> dict:
    """Listen for `seconds` of wall time, or (sim_seconds > 0) for that much simulated time within `seconds` of wall time."""
    out = tmp_path / "probe.json"
    probe = group.start_python(PROBE, ["--robot", "tb", "--seconds", str(seconds), "--out", str(out), "--command", command,
                                       "--sim-seconds", str(sim_seconds)])
    try:
        probe.wait(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"probe did not finish: {probe.output()}")
    return json.loads(out.read_text())


@pytest.mark.parametrize("hog", [False, True], ids=["idle", "one_core_taken"])
def test_twin_with_explorer_streams_images_and_moves(tmp_path, hog):
    # with a busy loop on one core (started and ended here) the twin must still publish every frame: slower, same data
    with CpuHog(cores=1) if hog else contextlib.nullcontext(), NodeGroup(tmp_path) as group:
        twin = start_launch(group, LAUNCH / "twin.launch.py", {"robot": "tb", "use_sim_time": "true", "real_time_factor": "2.0"},
                            overrides={"twin_node": SMALL_CAMERA})["twin_node"]
        explorer = start_launch(group, LAUNCH / "explore.launch.py", {"robot": "tb", "use_sim_time": "true"})["explore_node"]
        seen = run_probe(group, tmp_path, seconds=120.0, sim_seconds=16.0)
        assert twin.alive() and explorer.alive(), twin.output()[-3000:] + explorer.output()[-3000:]
        logs = twin.output() + explorer.output()
    frames, truth, actions, wheels = seen["frames"], seen["truth"], seen["actions"], seen["wheels"]
    # images flow: JPEG at the configured size, 30 Hz in simulated time (stamps on the twin's /clock)
    assert len(frames) >= 100, logs[-3000:]
    assert all(f["format"] == "jpeg" and f["shape"] == [120, 160, 3] and f["frame_id"] == "tb" for f in frames)
    stamps = np.array([f["stamp_ns"] for f in frames]) / 1e9
    gaps = np.diff(stamps)
    # every frame the camera rate owes, on a loaded machine too (the twin slows its clock instead of skipping)
    assert gaps.min() > 0 and gaps.max() == pytest.approx(1 / 30, abs=1e-6), np.unique(np.round(gaps, 4))
    assert stamps[-1] - stamps[0] > 14.0
    assert np.std([f["mean"] for f in frames]) > 0.1      # the view changes as the robot drives
    # the explorer drives: DriveActions (source EXPLORE) and the wheel commands the kinematics make of them
    assert len(actions) >= 60 and {a["source"] for a in actions} == {SOURCE_EXPLORE}
    by_stamp = {w["stamp_ns"]: w for w in wheels}
    paired = [(a, by_stamp[a["stamp_ns"]]) for a in actions if a["stamp_ns"] in by_stamp]
    assert len(paired) >= 0.9 * len(actions)
    for a, w in paired:
        expect = action_to_wheels(a["forward"], a["turn"], KinematicsConfig())
        assert (w["left"], w["right"]) == pytest.approx((expect.left, expect.right), abs=1e-5)
    assert len({round(a["forward"], 3) for a in actions}) > 10   # varied speeds
    # the twin moves along its lane (ground truth)
    rows = [r for r in truth if r["episode"] == truth[-1]["episode"]]
    assert len(truth) >= 300
    assert rows[-1]["distance_m"] > 0.3 or any(r["out_of_lane"] for r in truth)
    path = np.array([[r["x_m"], r["y_m"]] for r in truth])
    assert np.linalg.norm(path.max(0) - path.min(0)) > 0.3
    assert any(e["event"] == EVENT_START for e in seen["events"]) or truth[0]["episode"] > 0
    # the explorer identifies each command channel of the nominal twin once, as +1, and never revises it
    for channel in ("forward", "turn"):
        decisions = re.findall(rf"actuation identified from odometry: {channel} x([+-]1)", logs)
        assert decisions == ["+1"], (channel, decisions, logs[-3000:])


def test_reversed_twin_flips_the_motion_resets_on_lane_departure_and_stops_without_commands(tmp_path):
    command = "1.5:0.3,0.3;4.0:0.1,0.6"   # straight ahead, then a hard left until it leaves the lane; then nothing
    with NodeGroup(tmp_path) as group:
        params = {**SMALL_CAMERA, "perturb": "reversed", "real_time_factor": 2.0, "command_timeout": 0.5, "seed": 3}
        twin = group.start_executable("redraw_sim", "twin_node", name="twin", namespace="tb", params=params)
        seen = run_probe(group, tmp_path, seconds=14.0, command=command)
        assert twin.alive(), twin.output()[-3000:]
        logs = twin.output()
    truth, events = seen["truth"], seen["events"]
    assert "perturbation 'reversed'" in logs
    first = [r for r in truth if r["episode"] == 0]
    # a forward command (0.3, 0.3) drives the reversed robot backwards along its lane
    assert min(r["distance_m"] for r in first) < -0.05, logs[-2000:]
    assert max(r["distance_m"] for r in first) < 0.02
    # it left the lane: END (LEFT_LANE) then START, and the ground truth moved on to the next episode
    kinds = [(e["event"], e["reason"]) for e in events]
    assert (EVENT_END, REASON_LEFT_LANE) in kinds, (kinds, logs[-2000:])
    end = kinds.index((EVENT_END, REASON_LEFT_LANE))
    assert (EVENT_START, 0) in kinds[end + 1:]
    assert any(r["out_of_lane"] == 1.0 for r in truth) and truth[-1]["episode"] >= 1
    assert "left the lane" in logs
    # the commands stopped ~5.5 s after the twin came up: the wheels stopped, the robot stands still
    last = [r for r in truth if r["t"] > truth[-1]["t"] - 1.0]
    assert len(last) > 20 and max(abs(r["speed_mps"]) for r in last) < 0.01
    assert max(r["distance_m"] for r in last) - min(r["distance_m"] for r in last) < 0.005


def test_scripted_teleop_drives_the_twin_like_a_teleop(tmp_path):
    with NodeGroup(tmp_path) as group:
        start_launch(group, LAUNCH / "twin.launch.py", {"robot": "tb", "use_sim_time": "true", "real_time_factor": "2.0"},
                     overrides={"twin_node": SMALL_CAMERA})
        teleop = start_launch(group, LAUNCH / "teleop.launch.py", {"robot": "tb", "use_sim_time": "true"},
                              overrides={"teleop_node": {"script": "100.0:0.5,0.0"}})["teleop_node"]
        seen = run_probe(group, tmp_path, seconds=120.0, sim_seconds=12.0)
        assert teleop.alive(), teleop.output()[-2000:]
    actions, truth = seen["actions"], seen["truth"]
    assert len(actions) >= 30 and {a["source"] for a in actions} == {1}     # DriveAction.SOURCE_TELEOP
    assert all(a["forward"] == pytest.approx(0.5) and a["turn"] == 0.0 for a in actions)
    assert truth[-1]["distance_m"] > 0.3 or truth[-1]["episode"] > 0          # straight ahead along the lane
