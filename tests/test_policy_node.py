"""The policy node as a real process, started as drive.launch.py declares it, against a probe that plays the
camera and the e-stop and records the wheel commands (DDS on loopback)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers.launchstart import start_launch
from helpers.rosproc import NodeGroup
from helpers.tiny_policy import build_policy, reference_action, tamper_hash

from redraw_common.kinematics import KinematicsConfig, action_to_wheels
from redraw_common.manifest import manifest_path_for
from redraw_common.preprocessing import PreprocessConfig, encode_jpeg, preprocess

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[1]
NODES = Path(__file__).parent / "nodes"
DRIVE = REPO / "src" / "redraw_policy_node" / "launch" / "drive.launch.py"
ROBOT = "pbot"
CFG = PreprocessConfig(height=32, width=32)
STOP_WITHIN = 0.2  # seconds: the bound from cause to zero wheels


def run(tmp_path, model, script, listen=3.0, timeout=60):
    """Start the policy node (as the launch file declares it) and the probe; return (probe JSON, node process, node log)."""
    out = tmp_path / "probe.json"
    with NodeGroup(tmp_path) as group:
        node = start_launch(group, DRIVE, {"robot": ROBOT, "model": str(model)})["policy_node"]
        probe = group.start_python(NODES / "policy_probe.py", ["--robot", ROBOT, "--out", str(out), "--script", json.dumps(script),
                                                              "--listen", str(listen)])
        try:
            probe.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"probe did not finish in {timeout} s:\n{probe.output()}\nnode:\n{node.output()}")
        data = json.loads(out.read_text())
        if not node.alive():
            node.wait(5)
        return data, node, node.output()


def road_action():
    """The wheel command the tiny policy must send for the probe's road frame."""
    spec = importlib.util.spec_from_file_location("fake_robot", NODES / "fake_robot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    jpeg = encode_jpeg(mod.road(160, 120, 0.0, np.random.default_rng(1)), 90)
    forward, turn = reference_action(preprocess(jpeg, CFG))
    return action_to_wheels(float(forward), float(turn), KinematicsConfig())


def moving(w):
    return w[1] != 0.0 or w[2] != 0.0


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_policy(tmp_path_factory.mktemp("model"), CFG)


def test_drives_at_the_control_rate(tmp_path, model):
    data, node, log = run(tmp_path, model, [{"mode": "road", "seconds": 3.0}])
    assert data["warmed_up"], log
    (phase,) = data["phases"]
    wheels = [w for w in data["wheels"] if phase["t_start"] <= w[0] <= phase["t_end"]]
    rate = len(wheels) / (phase["t_end"] - phase["t_start"])
    assert 8.0 <= rate <= 12.0, f"{rate:.1f} Hz"
    expect = road_action()
    assert all(moving(w) for w in wheels)
    np.testing.assert_allclose([w[1:3] for w in wheels], [[expect.left, expect.right]] * len(wheels), atol=2e-3)
    status = [s for s in data["status"] if phase["t_start"] <= s[0] <= phase["t_end"]]
    assert {s[1] for s in status} == {0} and {s[4] for s in status} == {"tiny-test-policy"}
    assert all(s[2] > 0 and s[3] > 0 for s in status)
    assert "verified" in log


CAUSES = {
    "camera_loss": ({"mode": "none", "seconds": 1.5}, 1),
    "estop": ({"mode": "road", "seconds": 1.5, "estop": True}, 4),
    "nan_output": ({"mode": "white", "seconds": 1.5}, 2),
    "model_error": ({"mode": "black", "seconds": 1.5}, 3),
}


@pytest.mark.parametrize("cause", sorted(CAUSES))
def test_safety_stops_within_200_ms_and_recovers(tmp_path, model, cause):
    phase_spec, state = CAUSES[cause]
    data, node, log = run(tmp_path, model, [{"mode": "road", "seconds": 1.5}, phase_spec, {"mode": "road", "seconds": 2.0}])
    assert data["warmed_up"], log
    before, fault, after = data["phases"]
    assert any(moving(w) for w in data["wheels"] if before["t_start"] <= w[0] < before["t_end"])
    # the cause: the last frame before the camera went silent, the e-stop message, the first white / black frame
    t_cause = fault["last_frame_before"] if cause == "camera_loss" else fault["t_start"]
    zeros = [w for w in data["wheels"] if w[0] >= t_cause and not moving(w)]
    assert zeros, f"wheels never stopped\n{log}"
    t_zero = zeros[0][0]
    assert t_zero - t_cause <= STOP_WITHIN, f"wheels stopped {1e3 * (t_zero - t_cause):.0f} ms after the cause"
    during = [w for w in data["wheels"] if t_zero <= w[0] <= fault["t_end"]]
    assert during and not any(moving(w) for w in during), "wheels moved again while the cause lasted"
    assert state in {s[1] for s in data["status"] if fault["t_start"] <= s[0] <= fault["t_end"]}
    resumed = [w for w in data["wheels"] if w[0] >= fault["t_end"] and moving(w)]
    assert resumed and resumed[0][0] - fault["t_end"] <= 1.0, "did not recover within 1 s"
    assert any(s[1] == 0 for s in data["status"] if s[0] >= resumed[0][0])


@pytest.mark.parametrize("case, message", [
    ("wrong_hash", "sha256 mismatch"),
    ("wrong_input_size", "input 'obs' must be uint8 [1, 32, 32, 2]"),
    ("missing_manifest", "model manifest not found"),
])
def test_refuses_a_bad_model_and_never_moves_the_wheels(tmp_path, case, message):
    if case == "wrong_input_size":
        path = build_policy(tmp_path / "m", CFG, input_shape=(1, 64, 64, 2))
    else:
        path = build_policy(tmp_path / "m", CFG)
    if case == "wrong_hash":
        tamper_hash(path)
    elif case == "missing_manifest":
        manifest_path_for(path).unlink()
    data, node, log = run(tmp_path, path, [], listen=4.0)
    assert not node.alive() and node.proc.returncode == 2
    out = log
    assert "refusing the model" in out and message in out and "No wheel command was sent" in out, out
    assert data["wheels"] == [] and data["status"] == []
