"""Synthetic rosbag2 recordings for tests: a camera and DriveAction commands at set rates, with camera outages on
demand, written with rosbags (MCAP); optionally as a recording folder with the recorder's recording.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from redraw_common.preprocessing import encode_jpeg
from redraw_common.recording import PART_CLOSED, PartEntry, RecordingInfo, Sidecar

MSG_DIR = Path(__file__).resolve().parents[2] / "src" / "redraw_msgs" / "msg"
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


def write_redraw_recording(folder: Path, requested: int, **kwargs) -> Path:
    """A recording folder as the recorder leaves it: one closed part and recording.json saying how many usable
    transitions it was asked for."""
    folder.mkdir(parents=True)
    write_recording(folder / "rec_0000", **kwargs)
    Sidecar(info=RecordingInfo(robot="db1"), parts=[PartEntry(name="rec_0000", status=PART_CLOSED)], state="finished",
            stats={"transitions_requested": requested}).write(folder)
    return folder
