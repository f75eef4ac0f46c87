"""Bags -> dataset (redraw_training.bags) on synthetic rosbag2 bags written with rosbags.

Frames are tiny RGB images whose brightness encodes the frame number, so the tests can tell exactly which
frame each transition used."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from redraw_common.episodes import iter_episodes
from redraw_common.errors import BagError
from redraw_common.kinematics import KinematicsConfig, action_to_wheels
from redraw_common.preprocessing import PreprocessConfig, encode_jpeg
from redraw_common.recording import RecordingInfo
from redraw_training.bags import control_ticks, convert_bags, dataset_from_bags, is_bag_input, main

MSG_DIR = Path(__file__).resolve().parents[2] / "redraw_msgs" / "msg"
CFG = PreprocessConfig(mode="rgb", height=8, width=8, horizon_crop=0.0)
NS = 1_000_000_000
T0 = 1_700_000_000 * NS


def typestore():
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for f in sorted(MSG_DIR.glob("*.msg")):
        types.update(get_types_from_msg(f.read_text(), f"redraw_msgs/msg/{f.stem}"))
    store.register(types)
    return store


TS = typestore()


def frame(level: int, size=(24, 32)) -> bytes:
    """A flat frame of brightness `level` (JPEG keeps a flat image's level within 1)."""
    return encode_jpeg(np.full((*size, 3), level, np.uint8), 95)


def level_of(obs: np.ndarray) -> int:
    return int(round(float(obs.mean())))


def header(ns: int):
    H, T = TS.types["std_msgs/msg/Header"], TS.types["builtin_interfaces/msg/Time"]
    return H(stamp=T(sec=ns // NS, nanosec=ns % NS), frame_id="")


def write_bag(path: Path, *, frames=(), actions=(), wheels=(), events=(), info: RecordingInfo | None = None,
              camera_topic="/db/camera_node/image/compressed", close=True):
    """frames: [(stamp ns, jpeg bytes[, log time])], actions: [(stamp, forward, turn)], wheels: [(stamp, left, right)],
    events: [(stamp, event, reason)]. Log time = stamp + 1 ms."""
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    for k, v in (info or RecordingInfo(robot="db", preprocessing=CFG)).to_custom_data().items():
        w.set_custom_data(k, v)
    w.open()
    msgs = []
    if frames:
        c = w.add_connection(camera_topic, "sensor_msgs/msg/CompressedImage", typestore=TS)
        Img = TS.types["sensor_msgs/msg/CompressedImage"]
        # a third element is the log time, when it should differ from the stamp
        msgs += [(f[2] if len(f) > 2 else f[0], c, TS.serialize_cdr(Img(header=header(f[0]), format="jpeg", data=np.frombuffer(f[1], np.uint8)), Img.__msgtype__))
                 for f in frames]
    if actions:
        c = w.add_connection("/db/redraw/action", "redraw_msgs/msg/DriveAction", typestore=TS)
        A = TS.types["redraw_msgs/msg/DriveAction"]
        msgs += [(s, c, TS.serialize_cdr(A(header=header(s), forward=f, turn=t, source=2), A.__msgtype__)) for s, f, t in actions]
    if wheels:
        c = w.add_connection("/db/wheels_driver_node/wheels_cmd", "redraw_msgs/msg/WheelsCmdStamped", typestore=TS)
        W = TS.types["redraw_msgs/msg/WheelsCmdStamped"]
        msgs += [(s, c, TS.serialize_cdr(W(header=header(s), vel_left=lft, vel_right=r), W.__msgtype__)) for s, lft, r in wheels]
    if events:
        c = w.add_connection("/db/redraw/episode", "redraw_msgs/msg/EpisodeEvent", typestore=TS)
        E = TS.types["redraw_msgs/msg/EpisodeEvent"]
        msgs += [(s, c, TS.serialize_cdr(E(header=header(s), event=e, reason=r), E.__msgtype__)) for s, e, r in events]
    for s, c, raw in sorted(msgs, key=lambda m: m[0]):
        w.write(c, s + 1_000_000, raw)
    if close:
        w.close()
    else:  # a killed recorder: chunks flushed, no summary, no metadata.yaml
        w.storage.close_chunk()
        w.storage.bio.flush()
        w.storage.bio.close()
    return path


def stream(seconds=3.0, camera_hz=30.0, control_hz=10.0, start=T0, offset=0.012):
    """Frames at camera_hz with level = 10 + frame number % 200; actions at control_hz, `offset` s after a frame."""
    n_frames = int(seconds * camera_hz)
    frames = [(start + int(i * NS / camera_hz), frame(10 + i % 200)) for i in range(n_frames)]
    n_act = int(seconds * control_hz)
    actions = [(start + int(k * NS / control_hz + offset * NS), round(0.9 * np.sin(k / 3.0), 4), round(0.5 * np.cos(k / 4.0), 4)) for k in range(n_act)]
    return frames, actions


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
