"""Bags -> dataset (redraw_training.bags) on synthetic rosbag2 bags written with rosbags.

Frames are tiny RGB images whose brightness encodes the frame number, so the tests can tell exactly which
frame each transition used."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers.synthetic_bag import CFG, NS, ODOM, T0, frame, level_of, odometry_stream, stream, write_bag

from redraw_common.alignment import EVENT_END, EVENT_START, AlignmentRule, UsableCounter
from redraw_common.episodes import iter_episodes
from redraw_common.errors import BagError
from redraw_common.kinematics import KinematicsConfig, action_to_wheels
from redraw_common.observation import history_from_actions
from redraw_common.preprocessing import PreprocessConfig, encode_jpeg
from redraw_common.recording import RecordingInfo
from redraw_training.bagalign import control_ticks
from redraw_training.bags import convert_bags
from redraw_training.cli.convert_bags import main
from redraw_training.targetdata import dataset_from_bags, is_bag_input


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def episodes(folder):
    return [ep for _, ep in iter_episodes(folder)]


# ---------------------------------------------------------------------------------------------------

def test_pairs_each_action_with_the_freshest_frame_before_it(tmp_path):
    frames, actions = stream(seconds=3.0)
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions)
    report = convert_bags([bag], tmp_path / "ds", CFG, 10, verbose=False)
    (ep,) = episodes(tmp_path / "ds")
    assert report["transitions"] == len(actions) == 30 and report["episodes"] == 1
    assert report["clean"], report
    np.testing.assert_allclose(ep["action"], np.array([[f, t] for _, f, t in actions], np.float32), atol=1e-6)
    # action k at k/10 s + 12 ms: the freshest frame is number 3k (at k/10 s), level 10 + 3k
    assert [level_of(img) for img in ep["image"]] == [10 + 3 * k for k in range(30)]
    assert ep["image"].shape == (30, 8, 8, 3) and ep["image"].dtype == np.uint8
    np.testing.assert_allclose(ep["stamp"], [(T0 + k * NS // 10) / 1e9 for k in range(30)])
    assert ep["is_first"][0] and ep["is_last"][-1] and not ep["is_terminal"].any()
    assert (tmp_path / "ds" / "report.json").is_file()


def test_wheel_commands_become_actions_through_the_stored_kinematics(tmp_path):
    kin = KinematicsConfig(trim=0.1, gain=0.8)
    frames, actions = stream(seconds=2.0)
    wheels = []
    for s, f, t in actions:
        w = action_to_wheels(f, t, kin)
        assert not w.clamped
        wheels.append((s, w.left, w.right))
    bag = write_bag(tmp_path / "bag", frames=frames, wheels=wheels, info=RecordingInfo(robot="db", kinematics=kin, preprocessing=CFG))
    report = convert_bags(bag, tmp_path / "ds", CFG, verbose=False)
    (ep,) = episodes(tmp_path / "ds")
    assert report["inputs"][0]["action_source"] == "wheels_cmd"
    np.testing.assert_allclose(ep["action"], np.array([[f, t] for _, f, t in actions]), atol=1e-5)
    # the default kinematics would read the same wheel commands differently: the stored ones were used
    convert_bags(bag, tmp_path / "ds2", CFG, verbose=False, kinematics=KinematicsConfig())
    (ep2,) = episodes(tmp_path / "ds2")
    assert np.abs(ep2["action"] - ep["action"]).max() > 0.05


def test_wheel_commands_of_a_plain_bag_take_the_kinematics_from_the_cli(tmp_path, capsys):
    kin = KinematicsConfig(trim=0.1, gain=0.8)
    frames, actions = stream(seconds=2.0)
    wheels = [(s, *(lambda w: (w.left, w.right))(action_to_wheels(f, t, kin))) for s, f, t in actions]
    bag = write_bag(tmp_path / "bag", frames=frames, wheels=wheels, plain=True)
    pre = tmp_path / "pre.json"
    pre.write_text(json.dumps(CFG.to_dict()))
    assert main([str(bag), "--out", str(tmp_path / "ds"), "--preprocess", str(pre)]) == 2
    err = capsys.readouterr().err
    assert "no kinematics to turn them into actions" in err and "convert-bags --kinematics FILE" in err, err
    (tmp_path / "kin.yaml").write_text("gain: 0.8\ntrim: 0.1\n")
    assert main([str(bag), "--out", str(tmp_path / "ds"), "--preprocess", str(pre), "--kinematics", str(tmp_path / "kin.yaml")]) == 0
    (ep,) = episodes(tmp_path / "ds")
    np.testing.assert_allclose(ep["action"], np.array([[f, t] for _, f, t in actions]), atol=1e-5)
    (tmp_path / "bad.yaml").write_text("gain: 0.8\nwheel_radius: 0.03\n")
    assert main([str(bag), "--out", str(tmp_path / "ds3"), "--preprocess", str(pre), "--kinematics", str(tmp_path / "bad.yaml")]) == 2
    assert "bad.yaml: invalid kinematics" in capsys.readouterr().err and not (tmp_path / "ds3").exists()


def test_two_robots_recordings_are_refused_together_unless_told(tmp_path):
    frames, actions = stream(seconds=2.0)
    a = write_bag(tmp_path / "a", frames=frames, actions=actions, info=RecordingInfo(robot="db1", preprocessing=CFG))
    b = write_bag(tmp_path / "b", frames=frames, actions=actions, info=RecordingInfo(robot="db2", preprocessing=CFG))
    with pytest.raises(BagError, match=rf"recordings of 2 robots \(db1: {a}; db2: {b}\); a calibration dataset is one robot's "
                                       r"dynamics.*--mixed-robots"):
        convert_bags([a, b], tmp_path / "ds", CFG, verbose=False)
    assert not (tmp_path / "ds").exists()
    report = convert_bags([a, b], tmp_path / "ds", CFG, verbose=False, mixed_robots=True)
    assert report["robots"] == ["db1", "db2"] and report["transitions"] == 40
    assert convert_bags([a], tmp_path / "ds1", CFG, verbose=False)["robots"] == ["db1"]


def test_episodes_cut_at_events_and_gaps(tmp_path):
    frames, actions = stream(seconds=6.0)
    # the driver pauses 1.0 s between 4.0 and 5.0 s (longer than max_gap=0.5): a cut
    actions = [a for a in actions if not (T0 + 4 * NS <= a[0] < T0 + 5 * NS)]
    events = [
        (T0 + int(1.55 * NS), 1, 1),   # END, left the lane (terminal)
        (T0 + int(1.85 * NS), 0, 0),   # START: ticks at 1.6 .. 1.8 s lie between episodes
    ]
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions, events=events)
    report = convert_bags(bag, tmp_path / "ds", CFG, min_episode_length=4, verbose=False)
    eps = episodes(tmp_path / "ds")
    assert [len(e["action"]) for e in eps] == [16, 21, 10]  # 0.0-1.5 s, 1.9-3.9 s, 5.0-5.9 s
    assert eps[0]["is_terminal"][-1] and not eps[1]["is_terminal"].any() and not eps[2]["is_terminal"].any()
    ticks = report["inputs"][0]["ticks"]
    assert ticks["ticks_between_episodes"] == 3 and ticks["cuts_at_events"] == 1 and ticks["cuts_at_gaps"] == 1
    assert report["transitions"] == 47 and report["held_ticks"] == 0


def test_end_and_start_at_the_same_stamp(tmp_path):
    # a twin that resets publishes END and START with one stamp: the next episode starts right away
    frames, actions = stream(seconds=3.0)
    events = [(T0 + int(1.05 * NS), 1, 1), (T0 + int(1.05 * NS), 0, 0)]
    report = convert_bags(write_bag(tmp_path / "bag", frames=frames, actions=actions, events=events), tmp_path / "ds", CFG,
                          min_episode_length=4, verbose=False)
    assert [len(e["action"]) for e in episodes(tmp_path / "ds")] == [11, 19]
    assert report["inputs"][0]["ticks"]["ticks_between_episodes"] == 0


def test_slow_driver_holds_its_command_and_fast_driver_is_subsampled(tmp_path):
    frames, _ = stream(seconds=3.0)
    slow = [(T0 + k * NS // 5 + 12_000_000, 0.1 * k, 0.0) for k in range(15)]     # 5 Hz
    fast = [(T0 + k * NS // 50 + 3_000_000, 0.02 * (k % 50), 0.0) for k in range(150)]  # 50 Hz
    convert_bags(write_bag(tmp_path / "slow", frames=frames, actions=slow), tmp_path / "ds_slow", CFG, verbose=False)
    convert_bags(write_bag(tmp_path / "fast", frames=frames, actions=fast), tmp_path / "ds_fast", CFG, verbose=False)
    (eps,) = episodes(tmp_path / "ds_slow")
    assert len(eps["action"]) == 29  # 10 Hz over the 2.8 s of commands
    np.testing.assert_allclose(eps["action"][:6, 0], [0.0, 0.0, 0.1, 0.1, 0.2, 0.2], atol=1e-6)
    (epf,) = episodes(tmp_path / "ds_fast")
    dt = np.diff(epf["stamp"])
    assert len(epf["action"]) == 31 and np.allclose(dt, 0.1, atol=0.034)  # ticks 0.003 .. 2.903 s, then 2.983 s


def test_control_ticks_phase_lock_to_a_drifting_driver():
    # a driver at 9.8 Hz with 10 ms jitter: ticks follow its commands one to one, no holds
    rng = np.random.default_rng(0)
    stamps = np.cumsum(np.full(200, int(NS / 9.8))) + rng.integers(-10_000_000, 10_000_000, 200)
    ticks = control_ticks(stamps.astype(np.int64), np.zeros((200, 2), np.float32), 10.0, 0.5)
    assert len(ticks.time) == 200 and not ticks.held.any() and (ticks.segment == 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_recorders_online_count_is_what_the_converter_keeps_from_a_jittery_driver(tmp_path, seed):
    # a driver descheduled on a loaded machine: 10 Hz commands with 30 ms jitter, some late by most of a period,
    # some skipped, some doubled; a camera that drops bursts of frames; the driver stopping for 1 s; an episode
    # ended and restarted. The recorder's count (fed in arrival order, as its callbacks are) is the converter's.
    rng = np.random.default_rng(seed)
    seconds = 12.0
    frames = [(T0 + int(i * NS / 30), frame(10 + i % 200)) for i in range(int(seconds * 30))]
    for start in rng.integers(0, len(frames) - 10, 3):
        frames = frames[:start] + frames[start + int(rng.integers(2, 6)):]
    stamps = []
    for k in range(int(seconds * 10)):
        if 50 <= k < 60 or rng.random() < 0.05:
            continue
        late = rng.random() < 0.1
        stamps.append(T0 + k * NS // 10 + 12_000_000 + int(rng.uniform(40e6, 90e6) if late else rng.normal(0, 30e6)))
        if rng.random() < 0.05:
            stamps.append(stamps[-1] + int(rng.uniform(10e6, 50e6)))
    stamps = sorted(set(stamps))
    actions = [(s, 0.5, 0.0) for s in stamps]
    events = [(T0 + int(8.35 * NS), EVENT_END, 2), (T0 + int(8.65 * NS), EVENT_START, 0)]
    report = convert_bags(write_bag(tmp_path / "bag", frames=frames, actions=actions, events=events), tmp_path / "ds", CFG, 10, verbose=False)

    counter = UsableCounter(AlignmentRule(control_hz=10.0), needs_odometry=False)
    arrivals = [(s, "frame") for s, _ in frames] + [(s, "command") for s in stamps] + [(s, ("event", e)) for s, e, _ in events]
    for s, kind in sorted(arrivals, key=lambda a: a[0]):
        if kind == "frame":
            counter.frame(s)
        elif kind == "command":
            counter.command(s)
        else:
            counter.event(kind[1], s)
    trailing = counter.usable
    counter.finish()
    assert report["transitions"] > 80 and report["episodes"] >= 3
    assert counter.usable == report["transitions"] and counter.ticks == report["inputs"][0]["ticks"]["ticks"]
    assert report["transitions"] - 2 <= trailing <= report["transitions"]


def test_recovers_a_bag_whose_recorder_was_killed(tmp_path):
    frames, actions = stream(seconds=3.0)
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions, close=False)
    assert not (bag / "metadata.yaml").exists()
    # the process died in the middle of writing the next chunk
    with open(bag / "bag.mcap", "ab") as f:
        f.write(b"\x06" + (123456).to_bytes(8, "little") + b"\x00" * 500)
    before = digest(bag)
    report = convert_bags(bag, tmp_path / "ds", CFG, verbose=False)
    assert report["transitions"] == 30 and report["recovered_parts"] == 1 and not report["clean"]
    assert digest(bag) == before  # read only


@pytest.mark.parametrize("case", ["no_camera", "corrupt", "truncated_header", "wrong_size", "out_of_order", "exists"])
def test_bad_inputs_get_clear_errors_and_lose_nothing(tmp_path, case):
    frames, actions = stream(seconds=2.0)
    out = tmp_path / "ds"
    if case == "no_camera":
        bag = write_bag(tmp_path / "bag", actions=actions)
        match = r"no camera topic: expected sensor_msgs/msg/CompressedImage.*the bag has: /db/redraw/action \[redraw_msgs/msg/DriveAction\]"
    elif case == "corrupt":
        bag = write_bag(tmp_path / "bag", frames=frames, actions=actions)
        data = bytearray((bag / "bag.mcap").read_bytes())
        data[200:4000] = os.urandom(3800)
        (bag / "bag.mcap").write_bytes(bytes(data))
        match = r"bag.*cannot read the bag"
    elif case == "truncated_header":
        bag = write_bag(tmp_path / "bag", frames=frames, actions=actions)
        (bag / "bag.mcap").write_bytes(b"PK\x03\x04 not an mcap")
        match = r"bag.mcap is not an MCAP file: it starts with 0x504b0304206e6f74, expected 0x894d434150300d0a"
    elif case == "wrong_size":
        frames = [(s, frame(10 + i % 200, (24, 32) if i % 3 else (48, 64))) for i, (s, _) in enumerate(frames)]
        bag = write_bag(tmp_path / "bag", frames=frames, actions=actions)
        match = r"frames of the wrong size: 20 of 20 used frames are not 24x32 \(height x width\); found 48x64 \(20\)"
    elif case == "out_of_order":
        frames = [(s if i % 4 else s - NS, j, s) for i, (s, j) in enumerate(frames)]  # received in order, stamped 1 s early
        bag = write_bag(tmp_path / "bag", frames=frames, actions=actions)
        match = r"camera frame stamps out of order: 14 of 60 messages.*expected increasing header stamps"
    else:
        bag = write_bag(tmp_path / "bag", frames=frames, actions=actions)
        out.mkdir()
        (out / "keep.txt").write_text("mine")
        match = r"exists already.*never overwrites"
    before = digest(bag)
    with pytest.raises(BagError, match=match):
        convert_bags(bag, out, CFG, verbose=False, frame_size=(24, 32) if case == "wrong_size" else None)
    assert digest(bag) == before
    if case == "exists":
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
    else:
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_a_few_bad_frames_are_dropped_and_reported(tmp_path):
    frames, actions = stream(seconds=4.0)
    # one used frame in 40 has the wrong size: below max_bad_fraction, so it is dropped and the episode split
    frames = [(s, frame(10 + i % 200, (48, 64) if i == 60 else (24, 32))) for i, (s, _) in enumerate(frames)]
    report = convert_bags(write_bag(tmp_path / "bag", frames=frames, actions=actions), tmp_path / "ds", CFG, min_episode_length=4, verbose=False)
    assert report["wrong_size_frames"] == 1 and report["misaligned_frames"] == 1 and not report["clean"]
    assert [len(e["action"]) for e in episodes(tmp_path / "ds")] == [20, 19]


def test_camera_drops_are_estimated_and_stale_frames_cut(tmp_path):
    frames, actions = stream(seconds=4.0)
    frames = [f for i, f in enumerate(frames) if not 45 <= i < 60]  # 0.5 s without camera
    report = convert_bags(write_bag(tmp_path / "bag", frames=frames, actions=actions), tmp_path / "ds", CFG, min_episode_length=4, verbose=False)
    assert report["dropped_frames"] == 15 and report["dropped_fraction"] == pytest.approx(15 / 120)
    assert report["inputs"][0]["ticks"]["stale_frame_ticks"] == 5 - 1  # ticks at 1.6..1.9 s; 1.5 s still sees frame 44 fresh
    assert report["episodes"] == 2 and not report["clean"]


def test_a_lost_frame_no_tick_needed_keeps_the_report_clean(tmp_path):
    frames, actions = stream(seconds=4.0)
    frames = [f for i, f in enumerate(frames) if i != 31]  # ticks use frames 0, 3, 6, ...: 31 is not needed
    report = convert_bags(write_bag(tmp_path / "bag", frames=frames, actions=actions), tmp_path / "ds", CFG, verbose=False)
    assert report["dropped_frames"] == 1 and report["misaligned_frames"] == 0 and report["clean"]
    assert report["transitions"] == 40


def test_non_finite_and_out_of_range_commands_make_the_report_unclean_and_say_so(tmp_path):
    from redraw_training.bags import format_report

    frames, actions = stream(seconds=4.0)
    # 2 of 40 commands NaN (dropped, held over by the previous one), 2 of 1e9 (clipped to 1): 10 %, above 1 %
    actions = [(t, float("nan") if k in (5, 6) else 1e9 if k in (20, 30) else f, tu) for k, (t, f, tu) in enumerate(actions)]
    report = convert_bags(write_bag(tmp_path / "bag", frames=frames, actions=actions), tmp_path / "ds", CFG, verbose=False)
    assert report["non_finite_commands"] == 2 and report["clipped_commands"] == 2 and not report["clean"]
    reason = "4 of 40 driving commands non-finite (2, dropped) or outside [-1, 1] (2, clipped) (10.0%; at most 1%)"
    assert report["unclean"] == [reason]
    assert f"NOT clean: {reason} (details in report.json)" in format_report(report)
    eps = episodes(tmp_path / "ds")
    assert np.abs(np.concatenate([ep["action"] for ep in eps])).max() <= 1.0


@pytest.mark.parametrize("kind, pixel", [("grayscale", (90, 90, 90)), ("black", (3, 2, 4)), ("white", (250, 252, 251))])
def test_frames_without_a_cameras_content_make_the_report_unclean(tmp_path, kind, pixel):
    from redraw_training.bagalign import frame_content

    frames, actions = stream(seconds=4.0)
    odd = encode_jpeg(np.full((24, 32, 3), pixel, np.uint8), 95)
    frames = [(t, odd if i % 3 == 0 and i < 60 else f) for i, (t, f) in enumerate(frames)]   # 20 of the 40 used frames
    report = convert_bags(write_bag(tmp_path / "bag", frames=frames, actions=actions), tmp_path / "ds", CFG, verbose=False)
    assert report["inputs"][0]["frames"]["content"][kind] == 20 and not report["clean"]
    assert any(r.startswith(f"20 of 40 used frames {'all ' + kind if kind != 'grayscale' else 'grayscale'}") and "(50.0%; at most 5%)" in r
               for r in report["unclean"]), report["unclean"]
    assert frame_content(np.full((8, 8, 3), (100, 90, 80), np.uint8)) is None


def test_a_control_rate_above_the_camera_rate_is_refused_naming_both(tmp_path):
    frames, actions = stream(seconds=4.0, camera_hz=10.0, control_hz=10.0)
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions)
    with pytest.raises(BagError, match=r"control_hz 15 is above the camera's 10.0 Hz \(median frame interval\): frames would be reused"):
        convert_bags(bag, tmp_path / "ds", CFG, 15.0, verbose=False)
    assert not (tmp_path / "ds").exists()
    assert convert_bags(bag, tmp_path / "ds", CFG, 10.0, verbose=False)["transitions"] == 40     # at the camera's rate it converts


def test_wheel_commands_beyond_the_drivers_limit_are_counted_as_clipped(tmp_path):
    frames, actions = stream(seconds=4.0)
    wheels = [(t, 1e9 if k % 4 == 0 else 0.3, 1e9 if k % 4 == 0 else 0.2) for k, (t, _, _) in enumerate(actions)]
    report = convert_bags(write_bag(tmp_path / "bag", frames=frames, wheels=wheels), tmp_path / "ds", CFG, verbose=False)
    assert report["clipped_commands"] == 10 and not report["clean"]
    assert "10 of 40 driving commands non-finite (0, dropped) or outside [-1, 1] (10, clipped)" in report["unclean"][0]


def test_many_bags_and_recording_folders_and_the_cli(tmp_path, capsys):
    f1, a1 = stream(seconds=2.0)
    f2, a2 = stream(seconds=2.0, start=T0 + 100 * NS)
    root = tmp_path / "bags"
    write_bag(root / "run1", frames=f1, actions=a1)
    write_bag(root / "run2", frames=f2, actions=a2)
    assert main([str(root), "--out", str(tmp_path / "ds"), "--min-episode-length", "4"]) == 0
    out = capsys.readouterr().out
    assert "transitions 40 in 2 episodes" in out and "clean" in out
    assert main([str(root), "--out", str(tmp_path / "ds")]) == 2
    assert "exists already" in capsys.readouterr().err


def test_dataset_from_bags_converts_once_and_caches(tmp_path):
    frames, actions = stream(seconds=2.0)
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions)
    assert is_bag_input(bag) and not is_bag_input(tmp_path / "nothing")
    folder, report = dataset_from_bags(bag, tmp_path / "cache", CFG, verbose=False)
    assert report["transitions"] == 20 and not is_bag_input(folder)
    mtime = (folder / "report.json").stat().st_mtime_ns
    again, report2 = dataset_from_bags(bag, tmp_path / "cache", CFG, verbose=False)
    assert again == folder and report2 == report and (folder / "report.json").stat().st_mtime_ns == mtime
    other, _ = dataset_from_bags(bag, tmp_path / "cache", PreprocessConfig(mode="rgb", height=16, width=16, horizon_crop=0.0), verbose=False)
    assert other != folder  # another model's preprocessing: another dataset


# ---------------------------------------------------------------------------------------------------
# The vector observation: wheel odometry (a model with vector_dim 2)

@pytest.mark.parametrize("offset_ms", [-5, 0, 5])
def test_vector_is_the_latest_odometry_stamped_at_or_before_each_frame(tmp_path, offset_ms):
    frames, actions = stream(seconds=3.0)
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions, odometry=odometry_stream(frames, offset_ms / 1000))
    report = convert_bags(bag, tmp_path / "ds", CFG, vector_dim=2, min_episode_length=4, verbose=False)
    (ep,) = episodes(tmp_path / "ds")
    frame_no = np.array([level_of(img) for img in ep["image"]]) - 10  # tick k uses frame 3k
    # odometry i is stamped `offset` from frame i: at or before it -> i; 5 ms after it -> the one before, i - 1
    used = frame_no if offset_ms <= 0 else frame_no - 1
    assert ep["vector"].dtype == np.float32 and ep["vector"].shape == (len(ep["action"]), 2)
    np.testing.assert_allclose(ep["vector"], np.stack([used / 100, -used / 50], 1), atol=1e-6)
    ticks = report["inputs"][0]["ticks"]
    odom = report["inputs"][0]["odometry"]
    assert odom["topic"] == ODOM and odom["hz"] == pytest.approx(30, abs=0.1) and odom["messages"] == 90
    assert odom["age_s"]["max"] == pytest.approx((-offset_ms if offset_ms <= 0 else 1000 / 30 - offset_ms) / 1000, abs=1e-5)
    if offset_ms > 0:  # frame 0 has no odometry before it: the first tick is dropped, as a tick before the first frame
        assert ticks["ticks_before_first_odometry"] == 1 and len(ep["action"]) == 29 and frame_no[0] == 3
        assert ticks["ticks_without_observation"] == 1   # the partition: kept + short + between + without = ticks
        assert ticks["ticks"] == len(ep["action"]) + 1 + ticks["ticks_in_short_episodes"] + ticks["ticks_between_episodes"]
    else:
        assert ticks["ticks_before_first_odometry"] == 0 and len(ep["action"]) == 30
    assert report["clean"] and report["stale_odometry_ticks"] == 0 and report["vector"] == {
        "dim": 2, "source": "odometry velocity (forward m/s, yaw rate rad/s)", "max_odometry_age_s": 0.2}


def test_models_without_a_vector_ignore_odometry(tmp_path):
    frames, actions = stream(seconds=2.0)
    with_odom = write_bag(tmp_path / "a", frames=frames, actions=actions, odometry=odometry_stream(frames))
    without = write_bag(tmp_path / "b", frames=frames, actions=actions)
    for bag in (with_odom, without):
        report = convert_bags(bag, tmp_path / f"ds_{bag.name}", CFG, verbose=False)
        (ep,) = episodes(tmp_path / f"ds_{bag.name}")
        assert "vector" not in ep and report["transitions"] == 20 and report["clean"]
        assert "odometry" not in report["inputs"][0] and report["vector"]["dim"] == 0


def test_odometry_gaps_cut_episodes_like_missing_frames(tmp_path):
    frames, actions = stream(seconds=4.0)
    # no odometry for frames 30 .. 47 (1.0 .. 1.6 s; the frames go on): the last before them is number 29 (0.962 s), more
    # than 0.2 s older than the frames of the ticks at 1.2 .. 1.5 s (frames 36 .. 45)
    odometry = [o for i, o in enumerate(odometry_stream(frames)) if not 30 <= i < 48]
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions, odometry=odometry)
    report = convert_bags(bag, tmp_path / "ds", CFG, vector_dim=2, min_episode_length=4, verbose=False)
    eps = episodes(tmp_path / "ds")
    assert [len(e["action"]) for e in eps] == [12, 24]  # ticks 0.0 .. 1.1 s and 1.6 .. 3.9 s
    ticks = report["inputs"][0]["ticks"]
    assert ticks["stale_odometry_ticks"] == 4 and ticks["cuts_at_odometry_gaps"] == 1
    assert report["stale_odometry_ticks"] == 4 and not report["clean"]

    def expected(ep):  # the latest odometry at or before each frame
        frame_no = np.array([level_of(img) for img in ep["image"]]) - 10
        return np.where((frame_no >= 30) & (frame_no < 48), 29, frame_no) / 100

    for ep in eps:
        np.testing.assert_allclose(ep["vector"][:, 0], expected(ep), atol=1e-6)
    # a longer limit bridges the gap with the last odometry before it
    report2 = convert_bags(bag, tmp_path / "ds2", CFG, vector_dim=2, max_odometry_age=0.7, verbose=False)
    (ep2,) = episodes(tmp_path / "ds2")
    assert report2["transitions"] == 40 and report2["clean"]
    assert report2["inputs"][0]["odometry"]["age_s"]["max"] == pytest.approx(1.5 - 29 / 30 + 0.005, abs=1e-5)
    np.testing.assert_allclose(ep2["vector"][:, 0], expected(ep2), atol=1e-6)
    assert (ep2["vector"][10:16, 0] == np.float32(0.29)).all()


def test_a_duckiebot_bag_in_its_drivers_types_converts_like_the_twins(tmp_path):
    """A plain bag of a Duckiebot's own drivers (robot profile duckietown-ros2: duckietown_msgs/WheelsCmdStamped on
    wheels_cmd, nav_msgs/Odometry on deadreckoning_node/odom) gives the dataset the twin's types give."""
    kin = KinematicsConfig(trim=0.1, gain=0.8)
    frames, actions = stream(seconds=2.0)
    wheels = [(s, *(lambda w: (w.left, w.right))(action_to_wheels(f, t, kin))) for s, f, t in actions]
    odometry = odometry_stream(frames)
    duckiebot = write_bag(tmp_path / "duckiebot", frames=frames, wheels=wheels, odometry=odometry, plain=True,
                          camera_topic="/db/image/compressed", wheels_topic="/db/wheels_cmd", wheels_type="duckietown_msgs/msg/WheelsCmdStamped",
                          odometry_topic="/db/deadreckoning_node/odom", odometry_type="nav_msgs/msg/Odometry")
    twin = write_bag(tmp_path / "twin", frames=frames, wheels=wheels, odometry=odometry, plain=True)
    for bag, odometry_topic in ((duckiebot, "/db/deadreckoning_node/odom"), (twin, ODOM)):
        report = convert_bags(bag, tmp_path / f"ds_{bag.name}", CFG, vector_dim=2, kinematics=kin, verbose=False)
        assert report["transitions"] == 20 and report["inputs"][0]["action_source"] == "wheels_cmd"
        assert report["inputs"][0]["odometry"]["topic"] == odometry_topic
    (ep,), (ep_twin,) = episodes(tmp_path / "ds_duckiebot"), episodes(tmp_path / "ds_twin")
    for key in ("action", "vector", "image"):
        np.testing.assert_array_equal(ep[key], ep_twin[key])
    np.testing.assert_allclose(ep["action"], np.array([[f, t] for _, f, t in actions]), atol=1e-5)
    np.testing.assert_allclose(ep["vector"][:, 1], -np.arange(0, 60, 3) / 50, atol=1e-6)


def test_of_several_cameras_a_plain_bag_uses_the_one_a_robot_profile_names(tmp_path):
    frames, actions = stream(seconds=2.0)
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions, plain=True, more_cameras=["/db/rear_camera/compressed"])
    report = convert_bags(bag, tmp_path / "ds", CFG, verbose=False)
    assert report["inputs"][0]["camera_topic"] == "/db/camera_node/image/compressed"
    (ep,) = episodes(tmp_path / "ds")
    assert [level_of(img) for img in ep["image"][:3]] == [10, 13, 16]
    both = write_bag(tmp_path / "both", frames=frames, actions=actions, plain=True, more_cameras=["/db/image/compressed"])
    with pytest.raises(BagError, match=r"2 topics of type for 'camera' \(\['/db/camera_node/image/compressed', '/db/image/compressed'\]\); "
                                       r"cannot tell which one to use"):
        convert_bags(both, tmp_path / "ds2", CFG, verbose=False)


def test_the_recordings_own_odometry_topic_or_the_one_asked_for(tmp_path):
    frames, actions = stream(seconds=2.0)
    odometry = odometry_stream(frames)
    # a recording whose info names its odometry topic
    info = RecordingInfo(robot="db", preprocessing=CFG, topics={"odometry": "/db/odom/twist"})
    bag = write_bag(tmp_path / "named", frames=frames, actions=actions, odometry=odometry, odometry_topic="/db/odom/twist", info=info)
    report = convert_bags(bag, tmp_path / "ds", CFG, vector_dim=2, verbose=False)
    assert report["inputs"][0]["odometry"]["topic"] == "/db/odom/twist" and report["transitions"] == 20
    # a plain bag with the odometry under another name: refused with a hint, converted when asked for by name
    plain = write_bag(tmp_path / "plain", frames=frames, actions=actions, odometry=odometry, odometry_topic="/db/base/vel")
    with pytest.raises(BagError, match=r"no odometry topic.*its geometry_msgs/msg/TwistStamped topics \['/db/base/vel'\] are not named as odometry"):
        convert_bags(plain, tmp_path / "ds2", CFG, vector_dim=2, verbose=False)
    report = convert_bags(plain, tmp_path / "ds2", CFG, vector_dim=2, odometry_topic="/db/base/vel", verbose=False)
    (ep,) = episodes(tmp_path / "ds2")
    np.testing.assert_allclose(ep["vector"][:, 1], -np.arange(0, 60, 3) / 50, atol=1e-6)


@pytest.mark.parametrize("case", ["no_topic", "no_messages", "wrong_type", "non_finite", "out_of_order", "bad_dim_3", "bad_dim_5", "bad_dim_1",
                                  "missing_named"])
def test_bad_odometry_gets_clear_errors_and_writes_nothing(tmp_path, case):
    frames, actions = stream(seconds=2.0)
    odometry = odometry_stream(frames)
    kw, options = {"odometry": odometry}, {"vector_dim": 2}
    if case == "no_topic":
        kw = {}
        match = (r"the model's vector starts with the measured velocity \(forward speed, yaw rate\) but the bag has no odometry topic: expected "
                 r"nav_msgs/msg/Odometry on <robot>/deadreckoning_node/odom \(duckietown-ros1-bridge, duckietown-ros2\) or "
                 r"geometry_msgs/msg/TwistStamped on <robot>/deadreckoning_node/velocity \(twin\).*; the bag has: /db/camera_node/image/compressed \[sensor_msgs/msg/CompressedImage\], "
                 r"/db/redraw/action \[redraw_msgs/msg/DriveAction\]$")
    elif case == "no_messages":
        kw = {"odometry": []}
        match = r"the odometry topic /db/deadreckoning_node/velocity \(geometry_msgs/msg/TwistStamped\) has no messages.*vector_dim=0"
    elif case == "wrong_type":
        kw = {"odometry": odometry, "odometry_type": "geometry_msgs/msg/Twist"}
        match = (r"odometry topic /db/deadreckoning_node/velocity carries geometry_msgs/msg/Twist; expected nav_msgs/msg/Odometry on .* or "
                 r"geometry_msgs/msg/TwistStamped on <robot>/deadreckoning_node/velocity \(twin\)")
    elif case == "non_finite":
        kw = {"odometry": [(s, float("nan"), y) for s, _, y in odometry]}
        match = r"has 60 messages, all with non-finite values"
    elif case == "out_of_order":
        kw = {"odometry": [(s - (NS if i % 3 == 0 else 0), f, y, s) for i, (s, f, y) in enumerate(odometry)]}  # received in order
        match = r"odometry stamps out of order: 19 of 60 messages are stamped at or before an earlier one"
    elif case.startswith("bad_dim"):  # odd, or too small for the velocity: the layout is 2 + 2k
        dim = int(case[-1])
        options = {"vector_dim": dim}
        match = (r"vector_dim must be 0 \(no vector\) or 2 \+ 2k \(the Duckietown env's 'vector': the wheel odometry's forward speed "
                 rf"m/s and yaw rate rad/s, then the last k actions \(forward, turn\), newest first; e.g. 2, 4, 6\), found {dim}: ")
    else:
        options = {"vector_dim": 2, "odometry_topic": "/db/nothing"}
        match = (r"odometry topic /db/nothing not found: expected geometry_msgs/msg/TwistStamped or nav_msgs/msg/Odometry messages on it; "
                 r"the bag has: .*deadreckoning")
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions, **kw)
    before = digest(bag)
    with pytest.raises(BagError, match=match):
        convert_bags(bag, tmp_path / "ds", CFG, verbose=False, **options)
    assert digest(bag) == before and not (tmp_path / "ds").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def _convert_with_both_manifests(tmp_path, dim: int):
    """A 2 s bag with odometry, converted by the CLI with `--preprocess` a checkpoint.json and an ONNX manifest whose
    vector has `dim` entries. Returns (bag, the checkpoint manifest, the episode of each conversion)."""
    frames, actions = stream(seconds=2.0)
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions, odometry=odometry_stream(frames))
    checkpoint = {"preprocessing": CFG.to_dict(), "model": {"image_shape": [8, 8, 3], "action_dim": 2, "vector_dim": dim}}
    onnx = {"preprocessing": CFG.to_dict(), "inputs": [{"name": "obs", "shape": [1, 8, 8, 3], "dtype": "uint8"},
                                                      {"name": "vector", "shape": [1, dim], "dtype": "float32"}]}
    converted = []
    for name, manifest in (("checkpoint.json", checkpoint), ("policy.json", onnx)):
        (tmp_path / name).write_text(json.dumps(manifest))
        assert main([str(bag), "--out", str(tmp_path / f"ds_{name}"), "--preprocess", str(tmp_path / name)]) == 0
        (ep,) = episodes(tmp_path / f"ds_{name}")
        converted.append(ep)
    return bag, checkpoint, converted


def test_the_cli_and_calibrate_take_the_vector_size_from_the_model(tmp_path, capsys):
    from redraw_training.targetdata import target_data_folder

    bag, checkpoint, converted = _convert_with_both_manifests(tmp_path, 2)
    for ep in converted:
        assert ep["vector"].shape == (20, 2)
    assert "vector: odometry velocity (forward m/s, yaw rate rad/s), at most 0.2 s older than its frame" in capsys.readouterr().out
    # --vector-dim overrides the manifest
    assert main([str(bag), "--out", str(tmp_path / "ds0"), "--preprocess", str(tmp_path / "checkpoint.json"), "--vector-dim", "0"]) == 0
    assert "vector" not in episodes(tmp_path / "ds0")[0]
    # calibrate converts with the checkpoint's vector size (cached separately from a conversion without it)
    folder = target_data_folder(str(bag), str(tmp_path / "cal"), checkpoint)
    (ep,) = episodes(folder)
    np.testing.assert_allclose(ep["vector"][:, 0], np.arange(0, 60, 3) / 100, atol=1e-6)
    no_vector = target_data_folder(str(bag), str(tmp_path / "cal"), {**checkpoint, "model": {**checkpoint["model"], "vector_dim": 0}})
    assert no_vector != folder and "vector" not in episodes(no_vector)[0]


def test_a_few_odometry_messages_out_of_order_are_dropped_and_reported(tmp_path):
    frames, actions = stream(seconds=2.0)
    odometry = odometry_stream(frames)
    s, f, y = odometry[31]
    odometry[31] = (s - NS, f, y, s)  # stamped 1 s early, received in order: below max_bad_fraction, dropped
    report = convert_bags(write_bag(tmp_path / "bag", frames=frames, actions=actions, odometry=odometry), tmp_path / "ds", CFG,
                          vector_dim=2, verbose=False)
    (ep,) = episodes(tmp_path / "ds")
    assert report["inputs"][0]["odometry"]["out_of_order"] == 1 and report["out_of_order"] == 1 and not report["clean"]
    assert report["transitions"] == 20 and ep["vector"][10, 0] == np.float32(0.30)  # frame 30 still has its own odometry


# ---------------------------------------------------------------------------------------------------
# The vector observation with an action history (vector_dim 2 + 2k, redraw_common.observation)

def test_vector_of_six_is_the_odometry_then_the_episodes_last_two_actions(tmp_path, capsys):
    frames, actions = stream(seconds=6.0)
    # the driver pauses 1.0 s between 4.0 and 5.0 s: a cut; the second episode (ticks 5.0 .. 5.9 s) restarts its history
    actions = [a for a in actions if not (T0 + 4 * NS <= a[0] < T0 + 5 * NS)]
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions, odometry=odometry_stream(frames))
    report2 = convert_bags(bag, tmp_path / "ds2", CFG, vector_dim=2, min_episode_length=4, verbose=False)
    capsys.readouterr()
    report6 = convert_bags(bag, tmp_path / "ds6", CFG, vector_dim=6, min_episode_length=4)
    eps2, eps6 = episodes(tmp_path / "ds2"), episodes(tmp_path / "ds6")
    assert [len(e["action"]) for e in eps6] == [len(e["action"]) for e in eps2] == [40, 10]
    for e2, e6 in zip(eps2, eps6, strict=True):
        assert e6["vector"].dtype == np.float32 and e6["vector"].shape == (len(e6["action"]), 6)
        np.testing.assert_array_equal(e6["vector"][:, :2], e2["vector"])       # the velocity: as for a model of size 2
        np.testing.assert_array_equal(e6["action"], e2["action"])
        np.testing.assert_array_equal(e6["vector"][:, 2:], history_from_actions(e6["action"], 2))
    # by hand, from the recorded commands (tick k = command k; the second episode starts with command 40, sent at 5.0 s)
    cmd = np.array([[f, t] for _, f, t in actions], np.float32)
    first, second = eps6
    np.testing.assert_array_equal(first["vector"][0, 2:], np.zeros(4, np.float32))
    np.testing.assert_array_equal(first["vector"][1, 2:], [*cmd[0], 0.0, 0.0])
    np.testing.assert_array_equal(first["vector"][5, 2:], [*cmd[4], *cmd[3]])     # newest first
    np.testing.assert_allclose(first["vector"][5, :2], [15 / 100, -15 / 50], atol=1e-6)  # tick 5 sees frame 15
    np.testing.assert_array_equal(second["vector"][0, 2:], np.zeros(4, np.float32))  # not the commands before the gap
    np.testing.assert_array_equal(second["vector"][1, 2:], [*cmd[40], 0.0, 0.0])
    np.testing.assert_array_equal(second["vector"][2, 2:], [*cmd[41], *cmd[40]])
    assert report6["vector"] == {
        "dim": 6, "source": "odometry velocity (forward m/s, yaw rate rad/s) + last 2 actions (forward, turn), newest first, "
                            "zeros at each episode's start", "action_history": 2, "max_odometry_age_s": 0.2}
    assert report2["vector"] == {"dim": 2, "source": "odometry velocity (forward m/s, yaw rate rad/s)", "max_odometry_age_s": 0.2}
    assert ("vector: odometry velocity (forward m/s, yaw rate rad/s), at most 0.2 s older than its frame, + last 2 actions "
            "(forward, turn), newest first" in capsys.readouterr().out)
    assert json.loads((tmp_path / "ds6" / "report.json").read_text())["vector"] == report6["vector"]


def test_the_cli_and_calibrate_take_a_vector_of_six_from_the_model(tmp_path, capsys):
    from redraw_training.targetdata import target_data_folder

    bag, checkpoint, converted = _convert_with_both_manifests(tmp_path, 6)
    for ep in converted:
        assert ep["vector"].shape == (20, 6)
        np.testing.assert_array_equal(ep["vector"][3, 2:], [*ep["action"][2], *ep["action"][1]])
    assert "+ last 2 actions (forward, turn), newest first" in capsys.readouterr().out
    # a size the layout cannot have: a clear error, nothing written
    assert main([str(bag), "--out", str(tmp_path / "ds5"), "--vector-dim", "5"]) == 2
    assert "vector_dim must be 0 (no vector) or 2 + 2k" in capsys.readouterr().err and not (tmp_path / "ds5").exists()
    folder = target_data_folder(str(bag), str(tmp_path / "cal"), checkpoint)
    (ep,) = episodes(folder)
    assert ep["vector"].shape == (20, 6)
    np.testing.assert_array_equal(ep["vector"][:, 2:], history_from_actions(ep["action"], 2))


def test_the_converter_ticks_at_the_rate_the_recording_was_made_at_and_calibrate_refuses_another(tmp_path):
    from redraw_common.errors import RedrawInputError
    from redraw_training.targetdata import target_data_folder

    frames, actions = stream(seconds=4.0, control_hz=5.0)
    bag = write_bag(tmp_path / "bag", frames=frames, actions=actions, info=RecordingInfo(robot="db", preprocessing=CFG, control_hz=5.0))
    report = convert_bags(bag, tmp_path / "ds", verbose=False)                   # no rate given: the recording's
    assert report["control_hz"] == 5.0 and report["transitions"] == len(actions) == 20   # one tick per 5 Hz command
    told = convert_bags(bag, tmp_path / "ds10", control_hz=10.0, min_episode_length=2, verbose=False)   # told otherwise
    assert told["control_hz"] == 10.0
    manifest = {"preprocessing": CFG.to_dict(), "extra": {"control_hz": 10.0}, "model": {"vector_dim": 0}}
    with pytest.raises(RedrawInputError, match="was recorded at 5 Hz, the checkpoint acts at 10 Hz"):
        target_data_folder(bag, tmp_path / "cal", manifest, log=lambda line: None)
    assert not (tmp_path / "cal").exists()
    other = write_bag(tmp_path / "bag10", frames=frames, actions=actions, info=RecordingInfo(robot="db", preprocessing=CFG))
    with pytest.raises(BagError, match=r"different control rates \(.*5 Hz; .*10 Hz\)"):
        convert_bags([bag, other], tmp_path / "mixed", verbose=False)


def test_recordings_of_both_layouts_convert_alike(tmp_path):
    """A recording as the recorder writes it (one bag: rec_0.mcap listed in metadata.yaml) and one of the earlier
    layout (a bag folder per part, rec_0000/) give the same dataset."""
    from helpers.synthetic_bag import write_recording, write_redraw_recording

    from redraw_common.recording import PART_CLOSED, PartEntry, Sidecar

    current = write_redraw_recording(tmp_path / "current", 40, seconds=4.0)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    write_recording(earlier / "rec_0000", seconds=4.0)
    Sidecar(info=RecordingInfo(robot="db1"), parts=[PartEntry(name="rec_0000", status=PART_CLOSED)], state="finished").write(earlier)
    reports = [convert_bags(rec, tmp_path / f"ds_{rec.name}", CFG, verbose=False) for rec in (current, earlier)]
    assert reports[0]["transitions"] == reports[1]["transitions"] >= 30
    for a, b in zip(episodes(tmp_path / "ds_current"), episodes(tmp_path / "ds_earlier"), strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["action"], b["action"])
