"""Synthetic rosbag2 bags for tests, written with rosbags (MCAP).

- write_bag: any mix of camera frames, DriveAction and wheel commands, episode events and odometry, each message
  given explicitly (the converter's tests, the bad-input generators);
- write_recording / write_redraw_recording: a camera and DriveAction commands at set rates, with camera outages on
  demand; optionally as a recording folder with the recorder's recording.json."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from redraw_common.preprocessing import PreprocessConfig, decode_jpeg, encode_jpeg
from redraw_common.recording import PART_CLOSED, PartEntry, RecordingInfo, Sidecar, open_part_file, part_file

SRC = Path(__file__).resolve().parents[2] / "src"
MSG_PACKAGES = ("redraw_msgs", "duckietown_msgs")   # the workspace's message packages, from their sources
CFG = PreprocessConfig(mode="rgb", height=8, width=8, horizon_crop=0.0)
NS = 1_000_000_000
T0 = 1_700_000_000 * NS
ODOM = "/db/deadreckoning_node/velocity"


def typestore():
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for package in MSG_PACKAGES:
        for f in sorted((SRC / package / "msg").glob("*.msg")):
            types.update(get_types_from_msg(f.read_text(), f"{package}/msg/{f.stem}"))
    store.register(types)
    return store


TS = typestore()


def frame(level: int, size=(24, 32)) -> bytes:
    """A flat frame of mean brightness `level`, slightly tinted (a camera's colour: not grayscale); JPEG keeps a flat
    image's level within 1."""
    return encode_jpeg(np.full((*size, 3), (level + 3, level, level - 3), np.uint8), 95)


def level_of(obs: np.ndarray) -> int:
    return int(round(float(obs.mean())))


def header(ns: int):
    H, T = TS.types["std_msgs/msg/Header"], TS.types["builtin_interfaces/msg/Time"]
    return H(stamp=T(sec=ns // NS, nanosec=ns % NS), frame_id="")


def write_bag(path: Path, *, frames=(), actions=(), wheels=(), events=(), odometry=None, info: RecordingInfo | None = None,
              camera_topic="/db/camera_node/image/compressed", odometry_topic=ODOM, odometry_type="geometry_msgs/msg/TwistStamped",
              wheels_topic="/db/wheels_driver_node/wheels_cmd", wheels_type="redraw_msgs/msg/WheelsCmdStamped", more_cameras=(), close=True, plain=False):
    """plain: a bag as `ros2 bag record` writes it, without redraw recording info. frames: [(stamp ns, jpeg bytes[, log time])], actions: [(stamp, forward, turn)], wheels: [(stamp, left, right)],
    events: [(stamp, event, reason)], odometry: [(stamp, forward m/s, yaw rate rad/s[, log time])] (an empty list: the
    topic without messages; None: no topic). more_cameras: further camera topics, each with the frames darkened by 5.
    Log time = stamp + 1 ms."""
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    for k, v in ({} if plain else (info or RecordingInfo(robot="db", preprocessing=CFG)).to_custom_data()).items():
        w.set_custom_data(k, v)
    w.open()
    msgs = []
    if frames:
        c = w.add_connection(camera_topic, "sensor_msgs/msg/CompressedImage", typestore=TS)
        Img = TS.types["sensor_msgs/msg/CompressedImage"]
        # a third element is the log time, when it should differ from the stamp
        msgs += [(f[2] if len(f) > 2 else f[0], c, TS.serialize_cdr(Img(header=header(f[0]), format="jpeg", data=np.frombuffer(f[1], np.uint8)), Img.__msgtype__))
                 for f in frames]
    for topic in more_cameras:
        c = w.add_connection(topic, "sensor_msgs/msg/CompressedImage", typestore=TS)
        Img = TS.types["sensor_msgs/msg/CompressedImage"]
        dark = [encode_jpeg(np.clip(decode_jpeg(f[1]).astype(int) - 5, 0, 255).astype(np.uint8), 95) for f in frames]
        msgs += [(f[0], c, TS.serialize_cdr(Img(header=header(f[0]), format="jpeg", data=np.frombuffer(d, np.uint8)), Img.__msgtype__))
                 for f, d in zip(frames, dark, strict=True)]
    if actions:
        c = w.add_connection("/db/redraw/action", "redraw_msgs/msg/DriveAction", typestore=TS)
        A = TS.types["redraw_msgs/msg/DriveAction"]
        msgs += [(s, c, TS.serialize_cdr(A(header=header(s), forward=f, turn=t, source=2), A.__msgtype__)) for s, f, t in actions]
    if wheels:
        c = w.add_connection(wheels_topic, wheels_type, typestore=TS)
        W = TS.types[wheels_type]
        msgs += [(s, c, TS.serialize_cdr(W(header=header(s), vel_left=lft, vel_right=r), W.__msgtype__)) for s, lft, r in wheels]
    if odometry is not None:
        c = w.add_connection(odometry_topic, odometry_type, typestore=TS)
        msgs += [(o[3] if len(o) > 3 else o[0], c, odometry_cdr(*o[:3], odometry_type)) for o in odometry]
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


def odometry_cdr(stamp: int, forward: float, yaw_rate: float, msgtype: str = "geometry_msgs/msg/TwistStamped") -> bytes:
    V, Tw = TS.types["geometry_msgs/msg/Vector3"], TS.types["geometry_msgs/msg/Twist"]
    twist = Tw(linear=V(x=forward, y=0.0, z=0.0), angular=V(x=0.0, y=0.0, z=yaw_rate))
    if msgtype == "geometry_msgs/msg/Twist":  # unstamped: a wrong type for odometry
        return TS.serialize_cdr(twist, msgtype)
    if msgtype == "nav_msgs/msg/Odometry":   # a Duckiebot's dead reckoning: the velocity in twist.twist
        P, Q = TS.types["geometry_msgs/msg/Point"], TS.types["geometry_msgs/msg/Quaternion"]
        pose = TS.types["geometry_msgs/msg/PoseWithCovariance"](
            pose=TS.types["geometry_msgs/msg/Pose"](position=P(x=0.0, y=0.0, z=0.0), orientation=Q(x=0.0, y=0.0, z=0.0, w=1.0)),
            covariance=np.zeros(36))
        moving = TS.types["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36))
        return TS.serialize_cdr(TS.types[msgtype](header=header(stamp), child_frame_id="base", pose=pose, twist=moving), msgtype)
    return TS.serialize_cdr(TS.types[msgtype](header=header(stamp), twist=twist), msgtype)


def odometry_stream(frames, offset=-0.005):
    """One odometry message per frame, `offset` s from it, encoding the frame number i: (i / 100 m/s, -i / 50 rad/s)."""
    return [(s + int(offset * NS), i / 100, -i / 50) for i, (s, *_) in enumerate(frames)]


def stream(seconds=3.0, camera_hz=30.0, control_hz=10.0, start=T0, offset=0.012):
    """Frames at camera_hz with level = 10 + frame number % 200; actions at control_hz, `offset` s after a frame."""
    n_frames = int(seconds * camera_hz)
    frames = [(start + int(i * NS / camera_hz), frame(10 + i % 200)) for i in range(n_frames)]
    n_act = int(seconds * control_hz)
    actions = [(start + int(k * NS / control_hz + offset * NS), round(0.9 * np.sin(k / 3.0), 4), round(0.5 * np.cos(k / 4.0), 4)) for k in range(n_act)]
    return frames, actions


def write_recording(path: Path, seconds: float = 6.0, camera_hz: float = 30.0, control_hz: float = 10.0,
                    outage: tuple[float, float] | None = None) -> Path:
    """outage=(every, length): no camera frames in the last `length` s of every `every` s."""
    store = TS
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
    """A recording folder as the recorder leaves it (redraw_common.recording): one closed part rec_0.mcap listed in
    metadata.yaml, and recording.json saying how many usable transitions it was asked for."""
    from redraw_recorder.bagwriter import write_metadata

    folder.mkdir(parents=True)
    info = RecordingInfo(robot="db1")
    working, closed = open_part_file(folder, "rec_0", "mcap"), part_file(folder, "rec_0", "mcap")
    write_recording(working.parent, **kwargs)
    (working.parent / f"{working.parent.name}.mcap").replace(closed)
    shutil.rmtree(working.parent)
    write_metadata(folder, [closed], info.to_custom_data(), {})
    Sidecar(info=info, parts=[PartEntry(name="rec_0", status=PART_CLOSED)], state="finished",
            stats={"transitions_requested": requested}).write(folder)
    return folder
