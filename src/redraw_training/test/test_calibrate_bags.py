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


def write_recording(path: Path, seconds: float = 6.0, camera_hz: float = 30.0, control_hz: float = 10.0) -> Path:
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
