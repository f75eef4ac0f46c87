"""End to end with the digital twin, with the nodes as the top-level bring-ups launch/twin_record.launch.py and
launch/twin_drive.launch.py declare them (small camera, slower than real time, for a busy test machine):

- issue 6: twin (reversed actions) + exploration driver + recorder -> a bag of at least the requested
  transitions, read back with rosbags with its metadata, converted into a dataset with a clean report; the
  perturbation shows in the recorded data (turn commands move the image the other way under reversed actions);
  the converted dataset's vector (the recorded wheel odometry) is exactly the velocity the twin measured (its
  ground truth), and it follows the commands, or their opposite under reversed actions;
- issue 7: the policy node with a tiny exported model drives the twin for several seconds at the control rate.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.launchstart import start_launch
from helpers.rosproc import NodeGroup
from helpers.tiny_policy import build_policy
from rosbags.rosbag2 import Reader

from redraw_common.episodes import iter_episodes
from redraw_common.preprocessing import PreprocessConfig
from redraw_common.recording import RecordingInfo, Sidecar
from redraw_training.bags import convert_bags

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[1]
TWIN_RECORD = REPO / "launch" / "twin_record.launch.py"
TWIN_DRIVE = REPO / "launch" / "twin_drive.launch.py"
PROBE = Path(__file__).parent / "nodes" / "drive_probe.py"
ROBOT = "e2e"
SMALL_CAMERA = {"camera_width": 160, "camera_height": 120}
CFG = PreprocessConfig()  # lane_mask 64x64, as the models
TRANSITIONS = 80
LAG = 3  # control ticks from a command to the velocity it causes (the motor model's response; measured correlations peak here)
# a third of real time: the twin renders every frame even on a busy 2-core machine (it skips frames it cannot
# render in time); every node follows the twin's /clock, so the data is the same as in real time
RTF = "0.35"
ROBOT_TOPICS = {f"/{ROBOT}/{t}" for t in ("camera_node/image/compressed", "wheels_driver_node/wheels_cmd", "redraw/action", "redraw/episode",
                                           "deadreckoning_node/velocity")}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """perturb -> (recording folder, conversion report, dataset folder, probe JSON), recorded once per perturbation;
    a probe listens next to the recorder (wheel commands, the twin's ground truth)."""
    cache = {}

    def get(perturb: str):
        if perturb not in cache:
            tmp = tmp_path_factory.mktemp(f"twin_{perturb or 'nominal'}")
            out = tmp / "recording"
            with NodeGroup(tmp) as group:
                nodes = start_launch(group, TWIN_RECORD, {"robot": ROBOT, "perturb": perturb, "output": str(out), "max_transitions": str(TRANSITIONS),
                                                          "use_sim_time": "true", "real_time_factor": RTF},
                                     overrides={"twin_node": SMALL_CAMERA, "explore_node": {"seed": 3}})
                twin, rec = nodes["twin_node"], nodes["recorder"]
                probe = group.start_python(PROBE, ["--robot", ROBOT, "--out", str(tmp / "probe.json"), "--duration", "16"])
                try:
                    code = rec.wait(timeout=150)
                    probe.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    pytest.fail(f"recorder did not reach {TRANSITIONS} transitions:\n{rec.output()[-2000:]}\n{twin.output()[-3000:]}")
                assert code == 0, rec.output()
            report = convert_bags([out], tmp / "dataset", CFG, 10, vector_dim=2, verbose=False)  # as for a model observing odometry
            cache[perturb] = (out, report, tmp / "dataset", json.loads((tmp / "probe.json").read_text()))
        return cache[perturb]

    return get


def test_twin_reversed_explorer_recorder_bag_to_dataset(recorded):
    out, report, dataset, _ = recorded("reversed")
    side = Sidecar.read(out)
    assert side.state == "finished" and "max_transitions" in side.stop_reason
    with Reader(out) as reader:   # the recording is one bag, its parts the files metadata.yaml lists
        info = RecordingInfo.from_custom_data(reader.storage.metadata.custom)
        topics = {c.topic for c in reader.connections}
        count = reader.message_count
    assert info.robot == ROBOT and info.preprocessing.to_dict() and info.kinematics.to_dict()
    assert topics == ROBOT_TOPICS  # the twin's ground truth never goes into the bag
    assert count > 3 * TRANSITIONS
    ticks = report["inputs"][0]["ticks"]
    assert ticks["ticks"] >= TRANSITIONS
    assert report["clean"], json.dumps(report, indent=1)
    # all ticks became transitions, but the fragments too short to be episodes around the twin's resets (and any tick
    # before the recorder's first odometry message or camera frame: on a loaded machine a command can come first)
    assert report["transitions"] == ticks["ticks"] - ticks["ticks_in_short_episodes"] - ticks["ticks_between_episodes"] \
        - ticks["ticks_without_observation"] > 0
    assert ticks["ticks_without_observation"] <= ticks["ticks_before_first_odometry"] + ticks["ticks_before_first_frame"] <= 10
    assert report["stale_odometry_ticks"] == 0 and report["inputs"][0]["odometry"]["hz"] == pytest.approx(30, abs=0.5)
    assert report["inputs"][0]["action_source"] == "action" and report["episodes"] == len(list(iter_episodes(dataset)))


def image_motion_vs_turn(dataset: Path, lag: int = 2) -> float:
    """From the recorded data alone: correlation between the turn command at t - lag (the twin's motor model
    answers with a delay) and the horizontal shift of the observation from t to t+1 (phase correlation)."""
    turns, shifts = [], []
    for _, ep in iter_episodes(dataset):
        img = ep["image"].astype(np.float32).sum(-1)
        for t in range(lag, len(img) - 1):
            (dx, _), response = cv2.phaseCorrelate(img[t], img[t + 1])
            if response > 0.05:
                turns.append(ep["action"][t - lag, 1])
                shifts.append(dx)
    assert len(turns) >= 30, f"only {len(turns)} usable frame pairs"
    return float(np.corrcoef(turns, shifts)[0, 1])


def yaw_rate_vs_command(probe: dict, delay: float = 0.3) -> float:
    """From the twin's ground truth (seen by the probe): correlation between the commanded wheel difference
    (right - left) `delay` seconds of wall time earlier (about 0.1 s simulated) and the yaw rate."""
    wheels = np.array([w[:3] for w in probe["wheels"]])
    pairs = []
    for t, truth in probe["truth"]:
        i = np.searchsorted(wheels[:, 0], t - delay) - 1
        if i >= 0 and wheels[i, 1:].any():
            pairs.append((wheels[i, 2] - wheels[i, 1], truth["yaw_rate_rps"]))
    assert len(pairs) >= 50, f"only {len(pairs)} ground-truth samples while driving"
    return float(np.corrcoef(np.array(pairs).T)[0, 1])


def test_reversed_actions_flip_the_measured_motion(recorded):
    nominal, reversed_ = recorded(""), recorded("reversed")
    # in the recorded data: turning left moves the image one way nominally, the other way reversed
    image = image_motion_vs_turn(nominal[2]), image_motion_vs_turn(reversed_[2])
    assert image[0] > 0.3 and image[1] < -0.1, image
    # and in the twin's ground truth: the yaw rate follows the command, or its opposite
    truth = yaw_rate_vs_command(nominal[3]), yaw_rate_vs_command(reversed_[3])
    assert truth[0] > 0.5 and truth[1] < -0.5, truth


def test_the_vector_is_the_velocity_the_twin_measured(recorded):
    correlations = {}
    for perturb in ("", "reversed"):
        _, _, dataset, probe = recorded(perturb)
        # the twin's ground truth by stamp (ms), except at resets (the truth is from just before, the frame from just after)
        truth = {round(t["stamp_s"] * 1000): (t["speed_mps"], t["yaw_rate_rps"]) for _, t in probe["truth"] if not t["out_of_lane"]}
        pairs, vectors, commands = [], [], []
        for _, ep in iter_episodes(dataset):
            assert ep["vector"].shape == (len(ep["action"]), 2) and ep["vector"].dtype == np.float32
            pairs += [(v, truth[round(s * 1000)]) for s, v in zip(ep["stamp"], ep["vector"]) if round(s * 1000) in truth]
            vectors.append(ep["vector"][LAG:])
            commands.append(ep["action"][:-LAG])  # the motor model answers with a delay
        # each step's vector is what the twin measured at its frame: the Duckietown env's observation
        assert len(pairs) >= 20, f"only {len(pairs)} steps seen by the probe"
        measured, true = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        np.testing.assert_allclose(measured, true, atol=1e-5)
        vector, command = np.concatenate(vectors), np.concatenate(commands)
        assert np.abs(vector[:, 0]).max() > 0.05, "the robot did not move"
        correlations[perturb or "nominal"] = [float(np.corrcoef(command[:, i], vector[:, i])[0, 1]) for i in (0, 1)]
        mean_speed = float(vector[:, 0].mean())
        # the explorer mostly drives ahead, also under reversed actions: it identifies the reversed controls from
        # the odometry within a second (ActuationSigns) and sends negated commands from then on
        assert mean_speed > 0.03, (perturb, mean_speed)
    # forward command vs forward speed, turn command vs yaw rate: follow nominally, flip under reversed actions
    # (measured: +0.91 / +0.95 nominal, -0.91 / -0.96 reversed)
    assert min(correlations["nominal"]) > 0.6 and max(correlations["reversed"]) < -0.6, correlations


def test_policy_node_drives_the_twin_at_the_control_rate(tmp_path):
    model = build_policy(tmp_path / "model", CFG, error_when_black=False)  # a view without lane markings must not stop it
    out = tmp_path / "probe.json"
    with NodeGroup(tmp_path) as group:
        nodes = start_launch(group, TWIN_DRIVE, {"robot": ROBOT, "model": str(model), "use_sim_time": "true", "real_time_factor": RTF},
                             overrides={"twin_node": SMALL_CAMERA})
        twin, node = nodes["twin_node"], nodes["policy_node"]
        probe = group.start_python(Path(__file__).parent / "nodes" / "drive_probe.py", ["--robot", ROBOT, "--out", str(out), "--duration", "16"])
        try:
            probe.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"probe did not finish:\n{twin.output()[-3000:]}\n{node.output()[-3000:]}")
        assert twin.alive() and node.alive(), twin.output()[-3000:] + node.output()[-3000:]
    seen = json.loads(out.read_text())
    assert seen["warmed_up"], twin.output()[-3000:]
    start = seen["t_first_frame"] + 2.0  # the node's first fresh frames
    wheels = [w for w in seen["wheels"] if w[0] >= start]
    stamps = np.array([w[3] for w in wheels]) / 1e9
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])  # in the twin's (simulated) time, which the node follows
    assert 8.5 <= rate <= 11.5, f"{rate:.1f} Hz"
    assert np.mean([w[1] != 0 or w[2] != 0 for w in wheels]) > 0.9
    status = [s[1] for s in seen["status"] if s[0] >= start]
    assert status.count(0) >= 0.9 * len(status)
    speeds = [t["speed_mps"] for _, t in seen["truth"] if _ >= start]
    assert max(speeds) > 0.05, "the twin did not move"
