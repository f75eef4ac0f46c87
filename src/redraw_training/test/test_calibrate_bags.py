"""`calibrate --data <rosbag2 recording>` converts the bags with the checkpoint's preprocessing, then calibrates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from redraw_common.episodes import iter_episodes
from redraw_common.preprocessing import encode_jpeg
from redraw_training.checkpoint import read_manifest
from redraw_training.cli.calibrate import main as calibrate_main

MSG_DIR = Path(__file__).resolve().parents[2] / "redraw_msgs" / "msg"
NS = 1_000_000_000


def write_recording(path: Path, seconds: float = 6.0, camera_hz: float = 30.0, control_hz: float = 10.0,
                    outage: tuple[float, float] | None = None) -> Path:
    """outage=(every, length): no camera frames in the last `length` s of every `every` s."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for f in sorted(MSG_DIR.glob("*.msg")):
        types.update(get_types_from_msg(f.read_text(), f"redraw_msgs/msg/{f.stem}"))
    store.register(types)
    Header, Time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    Img, Act = store.types["sensor_msgs/msg/CompressedImage"], store.types["redraw_msgs/msg/DriveAction"]
    rng = np.random.default_rng(0)
    t0 = 1_700_000_000 * NS
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        cam = w.add_connection("/db/camera_node/image/compressed", Img.__msgtype__, typestore=store)
        act = w.add_connection("/db/redraw/action", Act.__msgtype__, typestore=store)
        msgs = []
        for i in range(int(seconds * camera_hz)):
            s = t0 + int(i * NS / camera_hz)
            if outage and (i / camera_hz) % outage[0] >= outage[0] - outage[1]:
                continue
            jpeg = encode_jpeg(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), 90)
            msg = Img(header=Header(stamp=Time(sec=s // NS, nanosec=s % NS), frame_id=""), format="jpeg", data=np.frombuffer(jpeg, np.uint8))
            msgs.append((s, cam, store.serialize_cdr(msg, Img.__msgtype__)))
        for k in range(int(seconds * control_hz)):
            s = t0 + int(k * NS / control_hz) + 10_000_000
            msg = Act(header=Header(stamp=Time(sec=s // NS, nanosec=s % NS), frame_id=""), forward=0.5, turn=float(np.sin(k / 5)), source=2)
            msgs.append((s, act, store.serialize_cdr(msg, Act.__msgtype__)))
        for s, conn, raw in sorted(msgs, key=lambda m: m[0]):
            w.write(conn, s + 1_000_000, raw)
    return path


def test_calibrate_accepts_a_bag_and_converts_it_with_the_checkpoint_preprocessing(redraw_run, tmp_path, capsys):
    bag = write_recording(tmp_path / "rec")
    out = tmp_path / "cal"
    code = calibrate_main(["--checkpoint", str(redraw_run.pretrain_dir), "--data", str(bag), "--out", str(out),
                           "--updates", "3", "--no-progress", "--set", "calibrate.holdout=0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "converting rosbag2 input" in printed
    datasets = list((out / "dataset").glob("bags-*"))
    assert len(datasets) == 1
    eps = [ep for _, ep in iter_episodes(datasets[0])]
    _, manifest = read_manifest(redraw_run.pretrain_dir)
    pre = manifest["preprocessing"]
    assert sum(len(ep["image"]) for ep in eps) >= 50
    assert eps[0]["image"].shape[1:] == (pre["height"], pre["width"], 3 if pre["mode"] == "rgb" else 2)
    assert "reward" not in eps[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counters"]["updates"] == 3


def test_calibrate_refuses_a_recording_the_converter_could_barely_use_unless_told(redraw_run, tmp_path, capsys):
    # the camera out for 0.3 s of every 2 s (a twin that skipped frames): ticks without a fresh frame, frames lost
    bag = write_recording(tmp_path / "rec", seconds=12.0, outage=(2.0, 0.3))
    out = tmp_path / "cal"
    args = ["--checkpoint", str(redraw_run.pretrain_dir), "--data", str(bag), "--out", str(out), "--updates", "2", "--no-progress",
            "--set", "calibrate.holdout=0", "--set", "batch_length=4", "--set", "batch_size=2"]
    try:
        calibrate_main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "fail 2 check(s)" in err and "12 of 120 control ticks (10.0%) have no fresh camera frame or odometry (at most 5%)" in err, err
    assert "the camera lost 44 frames (12.5%; at most 5%)" in err and "--accept-unclean" in err
    assert not out.exists()          # nothing trained, nothing half-written
    # told to, it calibrates on them
    try:
            code = calibrate_main(args + ["--accept-unclean"])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "calibrating on data that fail 2 check(s)" in captured.out
    assert json.loads((out / "summary.json").read_text())["counters"]["updates"] == 2


def test_data_checks_name_each_failure_with_its_number_and_threshold():
    from redraw_training.datacheck import failed_checks

    report = {"inputs": [{"ticks": {"ticks": 1000, "ticks_without_observation": 10}}], "dropped_fraction": 0.0, "dropped_frames": 0,
              "episode_length": {"mean": 40.0}}
    assert failed_checks(report, batch_length=16) == []
    bad = {**report, "dropped_fraction": 0.2, "dropped_frames": 600, "episode_length": {"mean": 9.5}}
    failed = failed_checks(bad, batch_length=16)
    assert len(failed) == 2
    assert "the camera lost 600 frames (20.0%; at most 5%)" in failed[0]
    assert "mean episode is 9.5 transitions, shorter than one training sequence (batch_length=16)" in failed[1]
