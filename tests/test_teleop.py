"""The joystick teleop as a real process (teleop.launch.py, joy:=false: the probe is the gamepad) on a Duckiebot's
robot profile, next to the recorder (record.launch.py) on the same profile: the stick drives through the dead-man
button and the speed limits in the drivers' wheel-command type, releasing or losing the joystick stops the
wheels, and the recording converts into one episode per hold of the button, with the stick's actions."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers.launchstart import start_launch
from helpers.rosproc import NodeGroup

from redraw_common.episodes import iter_episodes
from redraw_common.kinematics import KinematicsConfig, action_to_wheels
from redraw_common.preprocessing import PreprocessConfig
from redraw_common.robot_profile import load
from redraw_training.bags import convert_bags

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[1]
NODES = Path(__file__).parent / "nodes"
TELEOP = REPO / "src" / "redraw_teleop" / "launch" / "teleop.launch.py"
RECORD = REPO / "src" / "redraw_recorder" / "launch" / "record.launch.py"
ROBOT = "jbot"
PROFILE = "duckietown-ros2"
HOLD = [0, 0, 0, 0, 1, 0, 0, 0]                      # teleop.yaml: enable_button 4
STICKS = ([0.0, 0.5, 0.0, -0.5], [0.0, 1.0, 0.0, 0.25])  # axis 1 forward, axis 3 turn
LIMITS = (0.6, 1.0)                                   # teleop.yaml: max_forward, max_turn
JOY_TIMEOUT = 0.5                                     # teleop.yaml
SOURCE_TELEOP = 1                                     # redraw_msgs/DriveAction


def between(rows, phase, skip=0.0):
    return [r for r in rows if phase["t_start"] + skip <= r[0] <= phase["t_end"]]


def test_the_joystick_drives_through_the_profile_and_the_recording_has_an_episode_per_hold(tmp_path):
    script = [{"seconds": 1.0}, {"seconds": 2.0, "axes": STICKS[0], "buttons": HOLD}, {"seconds": 1.0},
              {"seconds": 2.0, "axes": STICKS[1], "buttons": HOLD}, {"seconds": 1.5, "silent": True}]
    out, probe_out = tmp_path / "rec", tmp_path / "probe.json"
    with NodeGroup(tmp_path) as group:
        teleop = start_launch(group, TELEOP, {"robot": ROBOT, "robot_profile": PROFILE, "joy": "false"}, strict=True)["joy_teleop"]
        rec = start_launch(group, RECORD, {"robot": ROBOT, "robot_profile": PROFILE, "output": str(out)})["recorder"]
        probe = group.start_python(NODES / "joy_probe.py", ["--robot", ROBOT, "--profile", PROFILE, "--out", str(probe_out),
                                                           "--script", json.dumps(script)])
        try:
            probe.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"probe did not finish:\n{probe.output()}\n{teleop.output()}")
        rec.signal(signal.SIGINT)
        assert rec.wait(15) == 0, rec.output()
        log = teleop.output()
    data = json.loads(probe_out.read_text())
    idle, first, released, second, silent = data["phases"]
    assert data["wheels_types"] == [load(PROFILE).wheels_cmd.type], data["wheels_types"]
    assert not [a for a in data["actions"] if a[0] <= first["t_start"]], "drove before the dead-man button was held"
    for phase, stick in ((first, STICKS[0]), (second, STICKS[1])):
        held = between(data["actions"], phase, skip=0.2)
        rate = len(held) / (phase["t_end"] - phase["t_start"] - 0.2)
        assert 8.0 <= rate <= 12.0, f"{rate:.1f} commands/s at control_hz 10"
        want = (stick[1] * LIMITS[0], stick[3] * LIMITS[1])
        np.testing.assert_allclose([a[1:3] for a in held], [want] * len(held), atol=1e-6)
        assert {a[3] for a in held} == {SOURCE_TELEOP}
        wheels = action_to_wheels(*want, KinematicsConfig())
        np.testing.assert_allclose([w[1:3] for w in between(data["wheels"], phase, skip=0.2)], [[wheels.left, wheels.right]] * len(held),
                                   atol=1e-6)
    # released: one zero command within a control period (+ delivery), then nothing until the button again; a tick that
    # fired while the release was still in flight (published, not yet received) may carry the held command, no later
    after = between(data["actions"], released)
    stops = [a for a in after if a[1:3] == [0.0, 0.0]]
    assert len(stops) == 1 and after[-1] == stops[0] and stops[0][0] - released["t_start"] <= 0.25, after
    held_value = list(np.float32((STICKS[0][1] * LIMITS[0], STICKS[0][3] * LIMITS[1])).astype(float))
    for stale in after[:-1]:
        assert stale[0] - released["t_start"] <= 0.1 and np.allclose(stale[1:3], held_value, atol=1e-6), after
    # the joystick lost (no Joy at all): the last command holds for joy_timeout, then one zero command within a
    # control period (+ delivery)
    lost = [a for a in data["actions"] if a[0] > second["last_joy"] + 0.05]
    stops = [a for a in lost if a[1:3] == [0.0, 0.0]]
    assert len(stops) == 1 and lost[-1] == stops[0], lost
    assert JOY_TIMEOUT - 0.05 <= stops[0][0] - second["last_joy"] <= JOY_TIMEOUT + 0.25, lost
    assert [(e[1], e[2]) for e in data["events"]] == [(0, 3), (1, 3)] * 2, data["events"]   # START, END by the operator
    assert "dead-man button released: wheels to zero" in log and "no Joy message for" in log, log

    report = convert_bags([out], tmp_path / "ds", PreprocessConfig(height=32, width=32), 10, verbose=False)
    episodes = [ep for _, ep in iter_episodes(tmp_path / "ds")]
    assert len(episodes) == 2, json.dumps(report, indent=1)
    for ep, stick in zip(episodes, STICKS, strict=True):
        assert len(ep["action"]) >= 15
        moving = ep["action"][np.abs(ep["action"]).sum(1) > 0]   # the release's zero may close the episode
        assert len(moving) >= len(ep["action"]) - 1
        np.testing.assert_allclose(moving, [[stick[1] * LIMITS[0], stick[3] * LIMITS[1]]] * len(moving), atol=1e-6)
