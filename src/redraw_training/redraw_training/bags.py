"""Bags -> dataset: turn recordings of a robot (rosbag2, as written by redraw_recorder) into episodes in the
replay's format (redraw_common.episodes), preprocessed with the settings of the model being calibrated.

    report = convert_bags(["~/redraw_bags/db1_run1"], "data/real_db1", preprocess_config=manifest.preprocessing)

What it does, per recording (a recording folder with its parts, or any rosbag2 bag with a camera topic):

1. Reads the camera (sensor_msgs/CompressedImage), the driving commands (redraw_msgs/DriveAction on
   `redraw/action`, else redraw_msgs/WheelsCmdStamped turned into actions by the inverse kinematics stored
   with the bag) and the episode events (redraw_msgs/EpisodeEvent). A part left unfinished by a killed
   recorder is read up to its last complete chunk (and reported).
2. Control ticks at `control_hz`, locked to the driver's own commands: after a tick at time t the next
   tick is the command nearest to t + 1/control_hz (within half a period). Where the driver sent nothing
   near a tick, the command in force is held if the driver's next command follows within `max_gap`
   seconds of it (a driver slower than the control rate); a longer silence ends the episode.
3. Each tick's observation is the freshest camera frame stamped at or before the tick, at most
   `max_frame_age` old (default one control period): row t = (frame, action chosen after seeing it).
   For a model whose observation has a vector (the Duckietown env's "vector", redraw_common.observation:
   `vector_dim = 2 + 2k`), each step's vector is the measured forward speed m/s and yaw rate rad/s, from the
   latest wheel-odometry message (geometry_msgs/TwistStamped on `deadreckoning_node/velocity`) stamped at or
   before its frame, at most `max_odometry_age` older (default two control periods), followed by the last k
   actions of the episode (forward, turn; newest first; zeros before the episode's first step, as after an env
   reset: every episode written, however it was cut, starts its history afresh). A tick whose frame has no such
   odometry is treated like a tick without a usable frame (step 4); a bag without the odometry topic, or with no
   odometry on it, is refused. With `vector_dim=0` odometry is ignored.
4. Episodes are cut at episode events (END/START), at gaps and at ticks without a usable frame; ticks
   between an END and the next START are dropped; episodes shorter than `min_episode_length` are dropped.
   An END for leaving the lane or a collision marks the episode terminal.
5. Frames of the wrong size, undecodable frames and frames whose stamps go backwards are dropped and
   counted; above `max_bad_fraction` of the frames the input is refused with an error saying what was
   found. Camera drops are estimated from gaps between frame stamps.

The output folder is written under a temporary name and renamed at the end: a failure never leaves half
a dataset, an existing output folder is refused, and the inputs are only ever read. The report (also
`report.json` in the output) counts transitions, episodes, dropped and misaligned frames and the time span,
and says `clean` when every transition is sound (no tick without a fresh frame, no frame discarded for its
size, encoding or stamp, no tick whose odometry went stale, no part recovered after a crash) and the camera
lost at most 1 % of its frames.

Command line:  convert-bags BAG [BAG ...] --out DIR [--preprocess FILE] [--control-hz 10] [--vector-dim 6]
(--preprocess takes a model's checkpoint.json or ONNX manifest, whose vector size then applies too.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from redraw_common.alignment import AlignmentRule
from redraw_common.cli import entry_point, number
from redraw_common.episodes import make_flags, save_episode
from redraw_common.errors import BagError, KinematicsError, PreprocessError
from redraw_common.kinematics import KinematicsConfig, wheels_to_action
from redraw_common.mcaprepair import is_complete, iter_messages
from redraw_common.observation import history_from_actions, history_length
from redraw_common.paths import out_dir_problem
from redraw_common.preprocessing import PreprocessConfig, decode_jpeg, preprocess
from redraw_common.recording import PART_CLOSED, PREFIX, SIDECAR, RecordingInfo, Sidecar, cdr_header_stamp

CAMERA_TYPE = "sensor_msgs/msg/CompressedImage"
ACTION_TYPE = "redraw_msgs/msg/DriveAction"
WHEELS_TYPE = "redraw_msgs/msg/WheelsCmdStamped"
EPISODE_TYPE = "redraw_msgs/msg/EpisodeEvent"
ODOMETRY_TYPE = "geometry_msgs/msg/TwistStamped"
ODOMETRY_SUFFIX = "deadreckoning_node/velocity"  # redraw_common.topics.ODOM_VELOCITY
ODOMETRY_DOC = f"{ODOMETRY_TYPE} on <robot>/{ODOMETRY_SUFFIX} (twist.linear.x forward m/s, twist.angular.z yaw rate rad/s)"
ODOMETRY_SOURCE = "odometry velocity (forward m/s, yaw rate rad/s)"
ROLE_OF_TYPE = {CAMERA_TYPE: "camera", ACTION_TYPE: "action", WHEELS_TYPE: "wheels_cmd", EPISODE_TYPE: "episode"}
EVENT_START, EVENT_END = 0, 1
TERMINAL_REASONS = {1, 4}  # REASON_LEFT_LANE, REASON_COLLISION
REPORT = "report.json"
CLEAN_MAX_DROP_FRACTION = 0.01
#: most driving commands that were non-finite (dropped) or outside [-1, 1] (clipped), as a fraction of all, in a
#: clean report
CLEAN_MAX_BAD_COMMAND_FRACTION = 0.01
#: most used frames whose content is odd (redraw_training.bags.frame_content), per kind, in a clean report
CLEAN_MAX_ODD_FRAME_FRACTION = 0.05
ODD_FRAMES = {"grayscale": "grayscale (no colour: the lane mask finds no yellow)", "black": "all black (a covered lens?)",
              "white": "all white (overexposed?)"}


# ---------------------------------------------------------------------------------------------------
# Reading bags
# ---------------------------------------------------------------------------------------------------

@dataclass
class Part:
    """One rosbag2 bag (a recording's part, or a plain bag)."""

    path: Path               # bag folder, or a storage file for a bag without metadata.yaml
    storage_file: Path | None
    clean: bool              # closed cleanly: read with rosbags; else read tolerantly up to the last complete chunk

    def describe(self) -> str:
        return str(self.path)


@dataclass
class Source:
    """One continuous recording: its parts in time order and what it says about itself."""

    path: Path
    kind: str                      # "recording" | "bag"
    parts: list[Part]
    info: RecordingInfo | None
    requested: int | None = None   # the usable transitions the recorder was asked for (recording.json stats)


def _storage_file(folder: Path) -> Path | None:
    files = sorted([*folder.glob("*.mcap"), *folder.glob("*.db3")])
    return files[0] if len(files) == 1 else None


def _part(folder: Path) -> Part:
    file = _storage_file(folder)
    has_meta = (folder / "metadata.yaml").is_file()
    if file is None and not has_meta:
        raise BagError(f"{folder}: not a rosbag2 bag: no metadata.yaml and no single .mcap/.db3 file")
    clean = has_meta and (file is None or file.suffix != ".mcap" or is_complete(file))
    return Part(folder, file, clean)


def discover(path: str | Path) -> list[Source]:
    """A recording folder, a rosbag2 bag folder, an .mcap file, or a folder holding several of these."""
    path = Path(path).expanduser()
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    if path.is_file():
        if path.suffix not in (".mcap", ".db3"):
            raise BagError(f"{path}: expected a bag folder, a recording folder or an .mcap/.db3 file, found a {path.suffix or 'plain'} file")
        return [Source(path, "bag", [Part(path, path, path.suffix != ".mcap" or is_complete(path))], None)]
    if (path / SIDECAR).is_file():
        sidecar = Sidecar.read(path)
        parts = []
        for entry in sidecar.parts:
            folder = path / entry.name
            if not folder.is_dir():
                if entry.status == PART_CLOSED:
                    raise BagError(f"{path}: part {entry.name} is listed in {SIDECAR} but its folder is missing")
                continue  # the recorder died before creating it
            parts.append(_part(folder))
        if not parts:
            raise BagError(f"{path}: the recording holds no parts (the recorder stopped before the first message)")
        requested = int(sidecar.stats.get("transitions_requested") or 0) or None
        return [Source(path, "recording", parts, sidecar.info, requested)]
    if (path / "metadata.yaml").is_file() or _storage_file(path) is not None:
        return [Source(path, "bag", [_part(path)], _bag_info(path))]
    children = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    sources = [s for child in children if (child / SIDECAR).is_file() or (child / "metadata.yaml").is_file() for s in discover(child)]
    if not sources:
        raise BagError(f"{path}: no bag here: expected a recording folder ({SIDECAR}), a rosbag2 bag (metadata.yaml) or folders of them")
    return sources


def _bag_info(folder: Path) -> RecordingInfo | None:
    """The redraw recording info in a bag's metadata custom_data, if it has any."""
    meta = folder / "metadata.yaml"
    if not meta.is_file():
        return None
    import yaml

    try:
        custom = (yaml.safe_load(meta.read_text()) or {}).get("rosbag2_bagfile_information", {}).get("custom_data") or {}
    except (yaml.YAMLError, AttributeError) as exc:
        raise BagError(f"{meta}: not a valid rosbag2 metadata file ({exc})") from None
    if not any(str(k).startswith(PREFIX) for k in custom):
        return None
    return RecordingInfo.from_custom_data(custom, str(meta))


class _Typestore:
    """rosbags typestore with ROS 2 kilted types plus whatever message definitions the bag carries."""

    def __init__(self):
        from rosbags.typesys import Stores, get_typestore

        self.store = get_typestore(Stores.ROS2_KILTED)

    def learn(self, msgtype: str, msgdef: str) -> None:
        from rosbags.typesys import get_types_from_msg

        if msgtype in self.store.fielddefs or not msgdef:
            return
        self.store.register(get_types_from_msg(msgdef, msgtype))

    def deserialize(self, raw: bytes, msgtype: str) -> Any:
        if msgtype not in self.store.fielddefs:
            raise BagError(f"message type {msgtype} is not known and the bag carries no definition for it")
        return self.store.deserialize_cdr(raw, msgtype)


def _iter_part(part: Part, types: _Typestore, roles: dict[str, str] | None = None) -> Iterator[tuple[str, str, int, bytes]]:
    """(topic, msgtype, log time ns, raw CDR) of a part's messages; only topics in `roles` if given."""
    if part.clean:
        from rosbags.rosbag2 import Reader

        with Reader(part.path) as reader:
            conns = [c for c in reader.connections if roles is None or c.topic in roles]
            for c in conns:
                types.learn(c.msgtype, c.msgdef.data)
            if not conns:
                return
            for conn, log_ns, raw in reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, log_ns, raw
    else:
        if part.storage_file is None or part.storage_file.suffix == ".db3":
            from rosbags.rosbag2 import Reader

            if part.storage_file is None:
                raise BagError(f"{part.path}: metadata.yaml but no storage file")
            with Reader(part.storage_file) as reader:  # sqlite3 keeps what was committed
                for conn, log_ns, raw in reader.messages():
                    types.learn(conn.msgtype, conn.msgdef.data)
                    if roles is None or conn.topic in roles:
                        yield conn.topic, conn.msgtype, log_ns, raw
            return
        for channel, schema, log_ns, raw in iter_messages(part.storage_file):
            if roles is not None and channel.topic not in roles:
                continue
            msgtype = schema.name if schema else ""
            if schema is not None:
                types.learn(msgtype, schema.data.decode())
            yield channel.topic, msgtype, log_ns, raw


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged file can raise: rosbags' own errors, and anything its parsers hit on garbage
    (struct.error, OverflowError, UnicodeDecodeError, MemoryError, ...). Every one of them means the same to
    the user, "this bag cannot be read", and is reported with the file's name."""
    return (Exception,)


def _list_topics(part: Part, types: _Typestore) -> dict[str, tuple[str, int | None]]:
    """topic -> (msgtype, message count the bag's index promises, None if it has no index)."""
    if part.clean:
        from rosbags.rosbag2 import Reader

        with Reader(part.path) as reader:
            return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
    if part.storage_file is not None and part.storage_file.suffix == ".mcap":
        from redraw_common.mcaprepair import scan_mcap

        scan = scan_mcap(part.storage_file)
        return {c.topic: (scan.schemas[c.schema_id].name if c.schema_id in scan.schemas else "", None) for c in scan.channels.values()}
    from rosbags.rosbag2 import Reader

    with Reader(part.storage_file) as reader:
        return {c.topic: (c.msgtype, None) for c in reader.connections}


# ---------------------------------------------------------------------------------------------------
# Streams of one recording
# ---------------------------------------------------------------------------------------------------

@dataclass
class Streams:
    camera_topic: str
    frame_stamp: np.ndarray        # (N,) int64 ns, header stamps (log time where the header is empty), in log order
    frame_part: np.ndarray         # (N,) index of the part holding the frame
    frame_index: np.ndarray        # (N,) index of the frame within its part's camera messages
    cmd_stamp: np.ndarray          # (M,) int64 ns
    cmd_action: np.ndarray         # (M, 2) float32 (forward, turn)
    action_source: str            # "action" | "wheels_cmd"
    events: list[tuple[int, int, int]]  # (stamp ns, event, reason), by stamp, in recorded order at equal stamps
    messages: dict[str, int] = field(default_factory=dict)
    bad_commands: int = 0
    clipped_commands: int = 0
    command_out_of_order: int = 0
    frame_out_of_order: int = 0
    odometry: Odometry | None = None   # when the model needs a vector


@dataclass
class Odometry:
    """The measured velocity stream of a recording."""

    topic: str
    stamp: np.ndarray              # (N,) int64 ns, header stamps, increasing
    vector: np.ndarray             # (N, 2) float32 (forward m/s, yaw rate rad/s)
    non_finite: int = 0
    out_of_order: int = 0


def _pick_topics(source: Source, topics: dict[str, str]) -> dict[str, str]:
    """role -> topic of a recording, from its info if it has one, else from the message types."""
    by_role: dict[str, list[str]] = {}
    for topic, msgtype in topics.items():
        if msgtype in ROLE_OF_TYPE:
            by_role.setdefault(ROLE_OF_TYPE[msgtype], []).append(topic)
    chosen = {}
    for role, candidates in by_role.items():
        preferred = source.info.topics.get(role) if source.info else None
        if preferred in candidates:
            chosen[role] = preferred
        elif len(candidates) == 1:
            chosen[role] = candidates[0]
        else:
            suffix = {"camera": "camera_node/image/compressed", "action": "redraw/action", "wheels_cmd": "wheels_driver_node/wheels_cmd",
                      "episode": "redraw/episode"}[role]
            named = [c for c in candidates if c.endswith(suffix)]
            if len(named) != 1:
                raise BagError(f"{source.path}: {len(candidates)} topics of type for '{role}' ({sorted(candidates)}); cannot tell which one to use")
            chosen[role] = named[0]
    if "camera" not in chosen:
        listing = ", ".join(f"{t} [{m}]" for t, m in sorted(topics.items())) or "none"
        raise BagError(
            f"{source.path}: no camera topic: expected {CAMERA_TYPE} messages (on <robot>/camera_node/image/compressed); "
            f"the bag has: {listing}"
        )
    if "action" not in chosen and "wheels_cmd" not in chosen:
        listing = ", ".join(f"{t} [{m}]" for t, m in sorted(topics.items()))
        raise BagError(
            f"{source.path}: no driving commands: expected {ACTION_TYPE} (redraw/action) or {WHEELS_TYPE} "
            f"(wheels_driver_node/wheels_cmd) messages; the bag has: {listing}"
        )
    return chosen


def _pick_odometry(source: Source, topics: dict[str, str], topic: str | None) -> str:
    """The odometry topic of a recording: `topic` if given, else the one its recording info names, else the one
    named <robot>/deadreckoning_node/velocity. Refuses a missing topic or one of another type."""
    listing = ", ".join(f"{t} [{m}]" for t, m in sorted(topics.items())) or "none"
    if topic is None:
        preferred = source.info.topics.get("odometry") if source.info else None
        named = [t for t in topics if t.endswith(ODOMETRY_SUFFIX)]
        if preferred in topics:
            topic = preferred
        elif len(named) == 1:
            topic = named[0]
        elif len(named) > 1:
            raise BagError(f"{source.path}: {len(named)} odometry topics ({sorted(named)}); cannot tell which one to use: "
                           "give one (convert-bags --odometry-topic TOPIC)")
        else:
            stamped = sorted(t for t, m in topics.items() if m == ODOMETRY_TYPE)
            hint = (f"; its {ODOMETRY_TYPE} topics {stamped} are not named as odometry: give one (convert-bags --odometry-topic TOPIC)"
                    if stamped else "")
            raise BagError(
                f"{source.path}: the model's vector starts with the measured velocity (forward speed, yaw rate) but the bag has no odometry "
                f"topic: expected {ODOMETRY_DOC}; the bag has: {listing}{hint}"
            )
    elif topic not in topics:
        raise BagError(f"{source.path}: odometry topic {topic} not found: expected {ODOMETRY_TYPE} messages on it; the bag has: {listing}")
    if topics[topic] != ODOMETRY_TYPE:
        raise BagError(f"{source.path}: odometry topic {topic} carries {topics[topic] or 'an unknown type'}; expected {ODOMETRY_DOC}")
    return topic


def _monotonic(stamps: list[int], what: str, source: Source, max_bad_fraction: float) -> np.ndarray:
    """Mask of the stamps that do not go backwards; an error if too many do."""
    keep = np.ones(len(stamps), bool)
    latest = -1
    first_bad = None
    for i, s in enumerate(stamps):
        if s <= latest:
            keep[i] = False
            if first_bad is None:
                first_bad = (i, s, latest)
        else:
            latest = s
    bad = int((~keep).sum())
    if bad and bad > max_bad_fraction * len(stamps):
        i, s, prev = first_bad
        raise BagError(
            f"{source.path}: {what} stamps out of order: {bad} of {len(stamps)} messages are stamped at or before an earlier one "
            f"(first: message {i} stamped {s / 1e9:.6f} s after one stamped {prev / 1e9:.6f} s); expected increasing header stamps "
            f"(tolerated: {max_bad_fraction:.0%})"
        )
    return keep


def read_streams(source: Source, types: _Typestore, *, action_source: str, kinematics: KinematicsConfig | None,
                 max_bad_fraction: float, odometry: bool = False, odometry_topic: str | None = None) -> Streams:
    """First pass over a recording: stamps of every frame, every command and every event (no decoding); with
    `odometry`, also the measured velocities."""
    errors = _read_errors()
    topics: dict[str, str] = {}
    promised: list[dict[str, tuple[str, int | None]]] = []
    for part in source.parts:
        try:
            promised.append(_list_topics(part, types))
        except errors as exc:
            raise BagError(f"{part.path}: cannot read the bag ({type(exc).__name__}: {exc}); expected a rosbag2 bag (mcap or sqlite3)") from None
        topics.update({t: m for t, (m, _) in promised[-1].items()})
    chosen = _pick_topics(source, topics)
    use_action = "action" in chosen and action_source in ("auto", "action")
    if action_source == "action" and "action" not in chosen:
        raise BagError(f"{source.path}: action_source='action' but the bag has no {ACTION_TYPE} topic")
    if not use_action and "wheels_cmd" not in chosen:
        raise BagError(f"{source.path}: action_source='wheels' but the bag has no {WHEELS_TYPE} topic")
    if not use_action:
        kinematics = kinematics or (source.info.kinematics if source.info else None)
        if kinematics is None:
            raise BagError(
                f"{source.path}: only wheel commands, and no kinematics to turn them into actions: the bag has no redraw "
                f"recording info; give the robot's kinematics (convert-bags --kinematics FILE, a YAML mapping of gain, trim, "
                f"baseline, radius, k, limit)"
            )
    if odometry:
        chosen["odometry"] = _pick_odometry(source, topics, odometry_topic)
    roles = {topic: role for role, topic in chosen.items()}
    frame_stamp, frame_part, frame_index = [], [], []
    cmd_stamp, cmd_action = [], []
    odom_stamp, odom_vector = [], []
    odom_bad = 0
    events = []
    messages: Counter[str] = Counter()
    bad = clipped = 0
    for p, part in enumerate(source.parts):
        n_frames = 0
        read: Counter[str] = Counter()
        try:
            for topic, msgtype, log_ns, raw in _iter_part(part, types, roles):
                role = roles[topic]
                messages[role] += 1
                read[topic] += 1
                if role == "camera":
                    stamp = cdr_header_stamp(raw) or log_ns
                    frame_stamp.append(stamp)
                    frame_part.append(p)
                    frame_index.append(n_frames)
                    n_frames += 1
                elif role == "episode":
                    msg = types.deserialize(raw, msgtype)
                    events.append((_stamp(msg, log_ns), int(msg.event), int(msg.reason)))
                elif role == "odometry":
                    msg = types.deserialize(raw, msgtype)
                    v = (float(msg.twist.linear.x), float(msg.twist.angular.z))
                    if not all(math.isfinite(x) for x in v):
                        odom_bad += 1
                        continue
                    odom_stamp.append(_stamp(msg, log_ns))
                    odom_vector.append(v)
                elif (role == "action") == use_action:
                    msg = types.deserialize(raw, msgtype)
                    if use_action:
                        a = (float(msg.forward), float(msg.turn))
                    else:
                        try:
                            inv = wheels_to_action(msg.vel_left, msg.vel_right, kinematics)
                        except ValueError:
                            bad += 1
                            continue
                        a = (inv.forward, inv.turn)
                        if max(abs(msg.vel_left), abs(msg.vel_right)) > kinematics.limit:   # beyond what the driver takes
                            clipped += 1
                            a = tuple(np.clip(a, -1.0, 1.0))
                    if not all(math.isfinite(x) for x in a):
                        bad += 1
                        continue
                    if any(abs(x) > 1.0 for x in a):
                        clipped += 1
                    cmd_stamp.append(_stamp(msg, log_ns))
                    cmd_action.append(np.clip(a, -1.0, 1.0))
        except BagError:
            raise
        except errors as exc:
            raise BagError(
                f"{part.path}: cannot read the bag ({type(exc).__name__}: {exc}); expected a rosbag2 bag (mcap or sqlite3) "
                f"written by the redraw recorder or ros2 bag"
            ) from None
        short = {t: (n, read[t]) for t, (_, n) in promised[p].items() if t in roles and n is not None and read[t] != n}
        if short:
            detail = ", ".join(f"{t}: index says {n}, read {r}" for t, (n, r) in sorted(short.items()))
            raise BagError(f"{part.path}: cannot read the bag: corrupt data, messages missing ({detail})")
    if not frame_stamp:
        raise BagError(f"{source.path}: the camera topic {chosen['camera']} has no messages")
    if not cmd_stamp:
        raise BagError(f"{source.path}: no usable driving commands on {chosen['action' if use_action else 'wheels_cmd']}")
    odom = None
    if odometry:
        if not odom_stamp:
            found = f"{messages['odometry']} messages, all with non-finite values" if messages["odometry"] else "no messages"
            raise BagError(
                f"{source.path}: the odometry topic {chosen['odometry']} ({ODOMETRY_TYPE}) has {found}; the model's vector starts "
                f"with the measured velocity (forward speed, yaw rate) at every frame (a robot without wheel odometry: the recorder logs "
                f"'NO ODOMETRY'; convert for a model without a vector, vector_dim=0)"
            )
        okeep = _monotonic(odom_stamp, "odometry", source, max_bad_fraction)
        odom = Odometry(chosen["odometry"], np.asarray(odom_stamp, np.int64)[okeep], np.asarray(odom_vector, np.float32).reshape(-1, 2)[okeep],
                        non_finite=odom_bad, out_of_order=int((~okeep).sum()))
    fkeep = _monotonic(frame_stamp, "camera frame", source, max_bad_fraction)
    ckeep = _monotonic(cmd_stamp, "driving command", source, max_bad_fraction)
    streams = Streams(
        camera_topic=chosen["camera"],
        frame_stamp=np.asarray(frame_stamp, np.int64)[fkeep], frame_part=np.asarray(frame_part)[fkeep],
        frame_index=np.asarray(frame_index)[fkeep],
        cmd_stamp=np.asarray(cmd_stamp, np.int64)[ckeep], cmd_action=np.asarray(cmd_action, np.float32).reshape(-1, 2)[ckeep],
        action_source="action" if use_action else "wheels_cmd", events=sorted(events, key=lambda e: e[0]),  # stable: END then START at one stamp stay in order
        messages=dict(messages), bad_commands=bad, clipped_commands=clipped,
        command_out_of_order=int((~ckeep).sum()), frame_out_of_order=int((~fkeep).sum()), odometry=odom,
    )
    return streams


def _stamp(msg: Any, log_ns: int) -> int:
    s = msg.header.stamp
    ns = int(s.sec) * 1_000_000_000 + int(s.nanosec)
    return ns if ns > 0 else log_ns


# ---------------------------------------------------------------------------------------------------
# Ticks and episodes
# ---------------------------------------------------------------------------------------------------

@dataclass
class Ticks:
    time: np.ndarray       # (K,) int64 ns
    action: np.ndarray     # (K, 2) float32
    held: np.ndarray       # (K,) bool: no command near this tick, the previous one held
    segment: np.ndarray    # (K,) int: a new segment starts after every gap longer than max_gap


def control_ticks(cmd_stamp: np.ndarray, cmd_action: np.ndarray, control_hz: float, max_gap: float) -> Ticks:
    """Phase-locked control ticks over a command stream (see the module docstring, step 2)."""
    period = int(round(1e9 / control_hz))
    half = period // 2
    gap = int(max_gap * 1e9)
    times, actions, held, segment = [], [], [], []
    n = len(cmd_stamp)
    seg = 0
    j = 0
    t = int(cmd_stamp[0])
    last_cmd = 0
    times.append(t)
    actions.append(cmd_action[0])
    held.append(False)
    segment.append(seg)
    while True:
        slot = t + period
        while j < n and cmd_stamp[j] <= t:
            j += 1
        k = j
        best = -1
        while k < n and cmd_stamp[k] < slot + half:
            if cmd_stamp[k] >= slot - half and (best < 0 or abs(cmd_stamp[k] - slot) < abs(cmd_stamp[best] - slot)):
                best = k
            k += 1
        if best >= 0:
            t, last_cmd, is_held = int(cmd_stamp[best]), best, False
        elif j >= n:
            break
        else:
            # no command near the slot: hold the one in force if the driver's next command follows within
            # max_gap of it (a slow driver); otherwise the driver stopped: cut, restart at its next command
            in_force = max(last_cmd, int(np.searchsorted(cmd_stamp, slot, side="right")) - 1)
            nxt = int(np.searchsorted(cmd_stamp, slot - half, side="left"))
            if nxt >= n:
                break
            if cmd_stamp[nxt] - cmd_stamp[in_force] <= gap:
                t, last_cmd, is_held = slot, in_force, True
            else:
                seg += 1
                t, last_cmd, is_held = int(cmd_stamp[nxt]), nxt, False
        times.append(t)
        actions.append(cmd_action[last_cmd])
        held.append(is_held)
        segment.append(seg)
    return Ticks(np.asarray(times, np.int64), np.asarray(actions, np.float32).reshape(-1, 2), np.asarray(held), np.asarray(segment))


@dataclass(frozen=True)
class Plan:
    """Which frame each kept tick uses, and where episodes start and end."""

    episodes: list[tuple[int, int, bool]]   # (first tick, end tick exclusive, terminal) into the tick arrays
    frame_of_tick: np.ndarray                # (K,) index into the stream's frames, -1 = no usable frame
    stats: dict[str, int]
    odometry_of_tick: np.ndarray | None = None  # (K,) index into the odometry stream, -1 = none fresh; None = not needed


def plan_episodes(streams: Streams, ticks: Ticks, max_frame_age: float, min_length: int, max_odometry_age: float = 0.2) -> Plan:
    age_ns = int(max_frame_age * 1e9)
    k = len(ticks.time)
    idx = np.searchsorted(streams.frame_stamp, ticks.time, side="right") - 1
    frame = np.where(idx >= 0, idx, -1)
    age = np.where(frame >= 0, ticks.time - streams.frame_stamp[np.maximum(frame, 0)], np.iinfo(np.int64).max)
    stale = (frame >= 0) & (age > age_ns)
    missing = frame < 0
    frame = np.where(stale | missing, -1, frame)
    odom = None
    if streams.odometry is not None:
        # the latest odometry stamped at or before the frame (not the tick): what the robot measured when it saw it
        frame_time = streams.frame_stamp[np.maximum(frame, 0)]
        oidx = np.searchsorted(streams.odometry.stamp, frame_time, side="right") - 1
        oage = np.where(oidx >= 0, frame_time - streams.odometry.stamp[np.maximum(oidx, 0)], np.iinfo(np.int64).max)
        odom_missing = (frame >= 0) & (oidx < 0)
        odom_stale = (frame >= 0) & (oidx >= 0) & (oage > int(max_odometry_age * 1e9))
        odom = np.where((frame >= 0) & ~odom_missing & ~odom_stale, oidx, -1)

    # episode boundaries from events: a START or END at time e starts a new episode at the first tick >= e;
    # ticks after an END and before the next START are outside any episode
    boundary = np.zeros(k, bool)
    outside = np.zeros(k, bool)
    terminal_at = {}  # tick index where an episode ends terminally (exclusive end)
    ends = [(s, r) for s, e, r in streams.events if e == EVENT_END]
    for s, e, r in streams.events:
        i = int(np.searchsorted(ticks.time, s, side="left"))
        if i < k:
            boundary[i] = True
        if e == EVENT_END and r in TERMINAL_REASONS:
            terminal_at[i] = True
    if ends:
        state_end = None
        ev = streams.events
        pos = 0
        for i in range(k):
            while pos < len(ev) and ev[pos][0] <= ticks.time[i]:
                state_end = ev[pos][1] == EVENT_END
                pos += 1
            outside[i] = bool(state_end)
    seg_change = np.r_[False, ticks.segment[1:] != ticks.segment[:-1]]
    usable = (frame >= 0) & ~outside
    if odom is not None:
        usable &= odom >= 0
    episodes = []
    short = short_ticks = 0
    start = None
    cuts = Counter()
    for i in range(k + 1):
        cut = i == k or not usable[i] or boundary[i] or seg_change[i]
        if cut and start is not None:
            length = i - start
            terminal = bool(terminal_at.get(i, False))
            if length >= min_length:
                episodes.append((start, i, terminal))
            else:
                short += 1
                short_ticks += length
            start = None
            if i < k:
                cuts["event" if boundary[i] else "gap" if seg_change[i] else "outside" if outside[i]
                     else "no_frame" if frame[i] < 0 else "no_odometry"] += 1
        if i < k and usable[i] and start is None:
            start = i
    stats = {
        "ticks": int(k),
        "held_ticks": int(ticks.held.sum()),
        "stale_frame_ticks": int((stale & ~outside).sum()),
        "ticks_before_first_frame": int((missing & ~outside).sum()),
        # every tick is exactly one of: in an episode kept, in a short one dropped, between episodes, or without
        # its observation (no frame yet, or no odometry yet / too old for a model with a vector)
        "ticks_without_observation": int((~usable & ~outside).sum()),
        "ticks_between_episodes": int(outside.sum()),
        "short_episodes_dropped": short,
        "ticks_in_short_episodes": short_ticks,
        "cuts_at_events": cuts["event"],
        "cuts_at_gaps": cuts["gap"],
        "cuts_at_unusable_frames": cuts["no_frame"],
    }
    if odom is not None:
        stats.update({
            "stale_odometry_ticks": int((odom_stale & ~outside).sum()),
            "ticks_before_first_odometry": int((odom_missing & ~outside).sum()),
            "cuts_at_odometry_gaps": cuts["no_odometry"],
        })
    return Plan(episodes, frame, stats, odom)


def estimate_camera_drops(stamps: np.ndarray) -> tuple[int, float]:
    """(frames missing, median camera rate in Hz), from the frame stamps: each interval spans round(dt / period)
    camera periods; missing = periods spanned - intervals (a late frame followed by an early one cancels out)."""
    if len(stamps) < 3:
        return 0, 0.0
    dt = np.diff(stamps) / 1e9
    period = float(np.median(dt))
    if period <= 0:
        return 0, 0.0
    return max(0, int(np.round(dt / period).sum()) - len(dt)), 1.0 / period


# ---------------------------------------------------------------------------------------------------
# Second pass: decode and preprocess the frames that are used
# ---------------------------------------------------------------------------------------------------

def frame_content(rgb: np.ndarray) -> str | None:
    """What is wrong with a decoded camera frame's content, if anything: 'grayscale' (the three channels equal: a
    mono camera or a grey JPEG, whose lane mask has no yellow), 'black' (nothing above 10 of 255: a covered lens)
    or 'white' (nothing below 245: an overexposed one); None for an ordinary frame."""
    view = rgb[::4, ::4].astype(np.int16)
    if view.max() <= 10:
        return "black"
    if view.min() >= 245:
        return "white"
    if view.ndim == 3 and view.shape[2] >= 3 and not np.any(view[..., 0] - view[..., 1]) and not np.any(view[..., 1] - view[..., 2]):
        return "grayscale"
    return None


def load_frames(source: Source, streams: Streams, wanted: np.ndarray, types: _Typestore, cfg: PreprocessConfig,
                progress: bool) -> tuple[dict[int, np.ndarray], dict[int, tuple[int, int]], dict[int, str], Counter]:
    """Decode and preprocess the frames with stream indices in `wanted`. Returns (obs, frame sizes, problems, counts
    of frames with odd content: frame_content)."""
    errors = _read_errors()
    want_by_part: dict[int, dict[int, int]] = {}
    for f in np.unique(wanted):
        want_by_part.setdefault(int(streams.frame_part[f]), {})[int(streams.frame_index[f])] = int(f)
    obs: dict[int, np.ndarray] = {}
    sizes: dict[int, tuple[int, int]] = {}
    problems: dict[int, str] = {}
    content: Counter = Counter()
    bar = _progress(len(np.unique(wanted)), f"frames of {source.path.name}", progress)
    for p, part in enumerate(source.parts):
        want = want_by_part.get(p)
        if not want:
            continue
        n = 0
        try:
            for _, msgtype, _, raw in _iter_part(part, types, {streams.camera_topic: "camera"}):
                f = want.get(n)
                n += 1
                if f is None:
                    continue
                msg = types.deserialize(raw, msgtype)
                try:
                    rgb = decode_jpeg(bytes(msg.data))
                    sizes[f] = rgb.shape[:2]
                    obs[f] = preprocess(rgb, cfg)
                    odd = frame_content(rgb)
                    if odd:
                        content[odd] += 1
                except PreprocessError as exc:
                    problems[f] = str(exc)
                bar.update(1)
        except BagError:
            raise
        except errors as exc:
            raise BagError(f"{part.path}: cannot read the bag ({type(exc).__name__}: {exc})") from None
    bar.close()
    return obs, sizes, problems, content


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, leave=False)


# ---------------------------------------------------------------------------------------------------
# The converter
# ---------------------------------------------------------------------------------------------------

def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


def convert_bags(
    bag_paths: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    preprocess_config: PreprocessConfig | None = None,
    control_hz: float = 10.0,
    *,
    kinematics: KinematicsConfig | None = None,
    action_source: str = "auto",
    max_gap: float = 0.5,
    max_frame_age: float | None = None,
    min_episode_length: int = 8,
    max_bad_fraction: float = 0.05,
    frame_size: tuple[int, int] | None = None,
    vector_dim: int = 0,
    odometry_topic: str | None = None,
    max_odometry_age: float | None = None,
    mixed_robots: bool = False,
    progress: bool = False,
    verbose: bool = True,
) -> dict[str, Any]:
    """Convert bags (recording folders, bag folders, .mcap files, or folders of them) into a dataset folder
    of episodes. `preprocess_config`: the settings of the model being calibrated (None: the settings stored
    with the first recording). `frame_size`: expected camera (height, width); None: the most common size.
    `vector_dim`: the size of the model's vector observation (redraw_common.observation): 0 (none; odometry is
    ignored) or 2 + 2k: the wheel odometry's forward speed m/s and yaw rate rad/s, from `odometry_topic`, default
    <robot>/deadreckoning_node/velocity, at most `max_odometry_age` s older than its frame, default 2 / control_hz,
    then the episode's last k actions (forward, turn), newest first, zeros before its first step.
    Recordings of several robots (by their recording info) are refused unless `mixed_robots`: a calibration dataset
    is one robot's dynamics. Returns the report (also written to <out_dir>/report.json). Raises BagError on bad input; then nothing
    is written."""
    t_start = time.monotonic()
    if isinstance(bag_paths, (str, Path)):
        bag_paths = [bag_paths]
    if not bag_paths:
        raise BagError("no bags given: expected one or more recording or bag folders")
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists():
        raise BagError(f"output {out_dir} exists already; the converter never overwrites a dataset: choose a new folder")
    problem = out_dir_problem(out_dir, "output")
    if problem:
        raise BagError(problem)
    if not (isinstance(control_hz, (int, float)) and 0 < control_hz <= 100):
        raise BagError(f"control_hz must be in (0, 100], found {control_hz!r}")
    if action_source not in ("auto", "action", "wheels"):
        raise BagError(f"action_source must be 'auto', 'action' or 'wheels', found {action_source!r}")
    if min_episode_length < 2:
        raise BagError(f"min_episode_length must be >= 2 (the episode format needs 2 steps), found {min_episode_length}")
    history = _vector_history(vector_dim)
    try:   # the rule the recorder counts by too (redraw_common.alignment): its defaults are the converter's
        rule = AlignmentRule(control_hz=control_hz, max_gap_s=max_gap, max_frame_age_s=max_frame_age,
                             max_odometry_age_s=max_odometry_age, min_episode_length=min_episode_length)
    except ValueError as exc:
        raise BagError(str(exc)) from None
    max_frame_age, max_odometry_age = rule.max_frame_age_s, rule.max_odometry_age_s
    sources = [s for p in bag_paths for s in discover(p)]
    seen = set()
    for s in sources:
        key = s.path.resolve()
        if key in seen:
            raise BagError(f"{s.path} is given twice")
        seen.add(key)
    robots: dict[str, list[str]] = {}
    for s in sources:
        robots.setdefault(s.info.robot if s.info else "(unknown)", []).append(str(s.path))
    named = sorted(r for r in robots if r != "(unknown)")
    if len(named) > 1 and not mixed_robots:
        raise BagError(f"the inputs are recordings of {len(named)} robots ("
                       + "; ".join(f"{r}: {', '.join(robots[r])}" for r in named)
                       + "); a calibration dataset is one robot's dynamics: convert each robot's recordings on their own "
                         "(or pass --mixed-robots to convert them together)")
    cfg = preprocess_config
    if cfg is None:
        cfg = next((s.info.preprocessing for s in sources if s.info is not None), None)
        if cfg is None:
            raise BagError("no preprocessing settings: the bags carry no redraw recording info (a bag of `ros2 bag record`, or a part "
                           "without its metadata.yaml); give the model's (convert-bags --preprocess MANIFEST_OR_FILE, or calibrate, "
                           "which uses the checkpoint's)")

    types = _Typestore()
    # ---- pass 1 and planning, for every source, before anything is written
    planned = []
    for source in sources:
        streams = read_streams(source, types, action_source=action_source, kinematics=kinematics, max_bad_fraction=max_bad_fraction,
                               odometry=history is not None, odometry_topic=odometry_topic)
        _, camera_hz = estimate_camera_drops(streams.frame_stamp)
        if camera_hz and control_hz > 1.05 * camera_hz:
            raise BagError(f"{source.path}: control_hz {control_hz:g} is above the camera's {camera_hz:.1f} Hz (median frame interval): "
                           f"frames would be reused for several transitions; convert at a control rate <= {camera_hz:.1f} Hz")
        ticks = control_ticks(streams.cmd_stamp, streams.cmd_action, control_hz, max_gap)
        plan = plan_episodes(streams, ticks, max_frame_age, min_episode_length, max_odometry_age)
        planned.append((source, streams, ticks, plan))

    # ---- pass 2: decode, check sizes, write into a temporary folder next to out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    try:
        report = _write(planned, tmp, cfg, types, frame_size, max_bad_fraction, min_episode_length, progress, history or 0)
        report.update({
            "output": str(out_dir),
            "robots": sorted(robots),
            "preprocessing": cfg.to_dict(),
            "control_hz": float(control_hz),
            "max_gap_s": max_gap,
            "max_frame_age_s": max_frame_age,
            "min_episode_length": min_episode_length,
            "vector": _vector_entry(vector_dim, history, max_odometry_age),
            "seconds": round(time.monotonic() - t_start, 2),
        })
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        os.chmod(tmp, 0o755)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if verbose:
        print(format_report(report))
    return report


def _vector_history(vector_dim: Any) -> int | None:
    """The number of past actions in a model's vector of size `vector_dim` (2 + 2k); None for a model without a vector."""
    if isinstance(vector_dim, (int, np.integer)) and not isinstance(vector_dim, bool) and vector_dim == 0:
        return None
    try:
        return history_length(vector_dim)
    except ValueError:
        raise BagError(
            f"vector_dim must be 0 (no vector) or 2 + 2k (the Duckietown env's 'vector': the wheel odometry's forward speed "
            f"m/s and yaw rate rad/s, then the last k actions (forward, turn), newest first; e.g. 2, 4, 6), found {vector_dim!r}: "
            f"a bag holds no other vector observation"
        ) from None


def _actions_phrase(history: int) -> str:
    return f"last {history} action{'s' if history > 1 else ''} (forward, turn), newest first"


def describe_vector(history: int) -> str:
    """The layout of a vector with `history` past actions, as the report states it."""
    if not history:
        return ODOMETRY_SOURCE
    return f"{ODOMETRY_SOURCE} + {_actions_phrase(history)}, zeros at each episode's start"


def _vector_entry(vector_dim: int, history: int | None, max_odometry_age: float) -> dict[str, Any]:
    if history is None:
        return {"dim": 0, "source": "none"}
    return {"dim": int(vector_dim), "source": describe_vector(history), **({"action_history": history} if history else {}),
            "max_odometry_age_s": max_odometry_age}


def _write(planned, folder: Path, cfg: PreprocessConfig, types: _Typestore, frame_size, max_bad_fraction: float,
           min_length: int, progress: bool, history: int = 0) -> dict[str, Any]:
    inputs = []
    totals = Counter()
    lengths = []
    n_episode = 0
    span = [2**63 - 1, 0]
    for source, streams, ticks, plan in planned:
        used = np.concatenate([plan.frame_of_tick[a:b] for a, b, _ in plan.episodes]) if plan.episodes else np.zeros(0, int)
        obs, sizes, problems, content = load_frames(source, streams, used, types, cfg, progress)
        # wrong size: against the given size, else the most common size of the used frames
        expected = tuple(frame_size) if frame_size else (Counter(sizes.values()).most_common(1)[0][0] if sizes else None)
        wrong = {f for f, hw in sizes.items() if hw != expected}
        if wrong and len(wrong) > max_bad_fraction * max(1, len(sizes)):
            found = Counter(sizes[f] for f in wrong).most_common(3)
            raise BagError(
                f"{source.path}: frames of the wrong size: {len(wrong)} of {len(sizes)} used frames are not {expected[0]}x{expected[1]} "
                f"(height x width); found {', '.join(f'{h}x{w} ({n})' for (h, w), n in found)}"
            )
        if problems and len(problems) > max_bad_fraction * max(1, len(used)):
            f, why = next(iter(problems.items()))
            raise BagError(f"{source.path}: {len(problems)} of {len(used)} used camera frames cannot be decoded (first: {why})")
        bad = wrong | set(problems)
        odom_ages: list[np.ndarray] = []
        written = 0
        episodes_here = 0
        short_after = 0
        for a, b, terminal in plan.episodes:
            rows = np.arange(a, b)
            frames = plan.frame_of_tick[rows]
            ok = np.array([f not in bad for f in frames])
            # unusable frames split the episode further
            for run in _runs(ok):
                r0, r1 = run
                if r1 - r0 < min_length:
                    short_after += 1
                    continue
                sel = rows[r0:r1]
                fsel = frames[r0:r1]
                end_terminal = terminal and r1 == len(rows)
                ep = {
                    "image": np.stack([obs[int(f)] for f in fsel]),
                    "action": ticks.action[sel].astype(np.float32),
                    **make_flags(len(sel), end_terminal),
                    "stamp": streams.frame_stamp[fsel].astype(np.float64) / 1e9,
                }
                if plan.odometry_of_tick is not None:
                    osel = plan.odometry_of_tick[sel]
                    # the episode's own actions: its history starts from zeros, as after an env reset
                    ep["vector"] = np.concatenate([streams.odometry.vector[osel], history_from_actions(ep["action"], history)], 1).astype(np.float32)
                    odom_ages.append(streams.frame_stamp[fsel] - streams.odometry.stamp[osel])
                name = f"{n_episode:06d}-{_safe(source.path.name)}.npz"
                save_episode(folder / name, ep)
                n_episode += 1
                episodes_here += 1
                written += len(sel)
                lengths.append(len(sel))
                span[0] = min(span[0], int(streams.frame_stamp[fsel[0]]))
                span[1] = max(span[1], int(streams.frame_stamp[fsel[-1]]))
        drops, camera_hz = estimate_camera_drops(streams.frame_stamp)
        unclean = [str(p.path) for p in source.parts if not p.clean]
        entry = {
            "path": str(source.path),
            "kind": source.kind,
            "robot": source.info.robot if source.info else None,
            "parts": len(source.parts),
            "recovered_parts": unclean,
            "messages": streams.messages,
            "action_source": streams.action_source,
            "camera_hz": round(camera_hz, 2),
            "transitions": written,
            "transitions_requested": source.requested,
            "episodes": episodes_here,
            "frames": {
                "total": int(len(streams.frame_stamp) + streams.frame_out_of_order),
                "used": written,
                "dropped_estimated": drops,
                "out_of_order": streams.frame_out_of_order,
                "wrong_size": len(wrong),
                "undecodable": len(problems),
                "expected_size": list(expected) if expected else None,
                "content": {kind: int(content[kind]) for kind in ("grayscale", "black", "white")},
            },
            "commands": {
                "total": int(len(streams.cmd_stamp) + streams.command_out_of_order + streams.bad_commands),   # every command read
                "out_of_order": streams.command_out_of_order,
                "non_finite": streams.bad_commands,
                "clipped": streams.clipped_commands,
            },
            "ticks": {**plan.stats, "short_episodes_dropped": plan.stats["short_episodes_dropped"] + short_after},
            **({"odometry": _odometry_entry(streams.odometry, odom_ages)} if streams.odometry is not None else {}),
            "recorded_span_s": round((int(streams.frame_stamp[-1]) - int(streams.frame_stamp[0])) / 1e9, 3),
        }
        inputs.append(entry)
        totals["transitions"] += written
        totals["episodes"] += episodes_here
        totals["dropped"] += drops
        totals["out_of_order"] += streams.frame_out_of_order + streams.command_out_of_order
        totals["wrong_size"] += len(wrong)
        totals["undecodable"] += len(problems)
        totals["decoded"] += len(sizes)
        for kind in ("grayscale", "black", "white"):
            totals[kind] += content[kind]
        totals["misaligned"] += plan.stats["stale_frame_ticks"] + len(wrong) + len(problems)
        totals["held"] += plan.stats["held_ticks"]
        totals["stale_odometry"] += plan.stats.get("stale_odometry_ticks", 0)
        totals["out_of_order"] += streams.odometry.out_of_order if streams.odometry is not None else 0
        totals["recovered_parts"] += len(unclean)
    if totals["transitions"] == 0:
        raise BagError(
            "no episodes could be formed: every stretch of driving was shorter than min_episode_length "
            f"({min_length} ticks) or had no usable camera frames; per-input counts: "
            + "; ".join(f"{e['path']}: {e['ticks']}" for e in inputs)
        )
    frames_total = sum(e["frames"]["total"] for e in inputs)
    drop_fraction = totals["dropped"] / max(1, frames_total + totals["dropped"])
    commands = sum(e["commands"]["total"] for e in inputs)
    non_finite = sum(e["commands"]["non_finite"] for e in inputs)
    clipped = sum(e["commands"]["clipped"] for e in inputs)
    content = _content_problems(totals, commands, non_finite, clipped)
    reasons = _unclean_reasons(totals, drop_fraction) + content
    return {
        "transitions": totals["transitions"],
        "episodes": totals["episodes"],
        "episode_length": {"min": min(lengths), "mean": round(float(np.mean(lengths)), 2), "max": max(lengths)},
        "dropped_frames": totals["dropped"],
        "dropped_fraction": round(drop_fraction, 5),
        "misaligned_frames": totals["misaligned"],
        "out_of_order": totals["out_of_order"],
        "wrong_size_frames": totals["wrong_size"],
        "undecodable_frames": totals["undecodable"],
        "held_ticks": totals["held"],
        "stale_odometry_ticks": totals["stale_odometry"],
        "recovered_parts": totals["recovered_parts"],
        "non_finite_commands": non_finite,
        "clipped_commands": clipped,
        "time_span": {"start": _iso(span[0]), "end": _iso(span[1]), "seconds": round((span[1] - span[0]) / 1e9, 3)},
        "clean": not reasons,
        "unclean": reasons,
        "content_problems": content,
        "inputs": inputs,
    }


def _unclean_reasons(totals: dict[str, int], drop_fraction: float) -> list[str]:
    """Each soundness check a conversion failed, as a phrase. Clean (with _content_problems empty): every transition is
    sound (no tick without a fresh frame, no frame discarded, nothing recovered) and the camera lost at most
    CLEAN_MAX_DROP_FRACTION of its frames (lost frames no tick needed are harmless)."""
    checks = [
        (totals["misaligned"] - totals["wrong_size"] - totals["undecodable"], "ticks without a fresh frame"),
        (totals["out_of_order"], "messages out of order"),
        (totals["wrong_size"], "frames of the wrong size"),
        (totals["undecodable"], "undecodable frames"),
        (totals["stale_odometry"], "ticks with stale odometry"),
        (totals["recovered_parts"], "recovered (unfinished) bag parts"),
    ]
    reasons = [f"{n} {what}" for n, what in checks if n]
    if drop_fraction > CLEAN_MAX_DROP_FRACTION:
        reasons.append(f"{totals['dropped']} camera frames lost ({drop_fraction:.1%}; at most {CLEAN_MAX_DROP_FRACTION:.0%})")
    return reasons


def _content_problems(totals: dict[str, int], commands: int, non_finite: int, clipped: int) -> list[str]:
    """What makes well-formed data wrong, as phrases: more than CLEAN_MAX_ODD_FRAME_FRACTION of the used frames
    grayscale, all black or all white, or more than CLEAN_MAX_BAD_COMMAND_FRACTION of the commands non-finite or out
    of range. The report is not clean with any of them, and `calibrate` refuses such data (datacheck)."""
    problems = []
    for kind in ("grayscale", "black", "white"):
        if totals["decoded"] and totals[kind] / totals["decoded"] > CLEAN_MAX_ODD_FRAME_FRACTION:
            problems.append(f"{totals[kind]} of {totals['decoded']} used frames {ODD_FRAMES[kind]} "
                            f"({totals[kind] / totals['decoded']:.1%}; at most {CLEAN_MAX_ODD_FRAME_FRACTION:.0%})")
    bad = non_finite + clipped
    if commands and bad / commands > CLEAN_MAX_BAD_COMMAND_FRACTION:
        problems.append(f"{bad} of {commands} driving commands non-finite ({non_finite}, dropped) or outside [-1, 1] ({clipped}, "
                        f"clipped) ({bad / commands:.1%}; at most {CLEAN_MAX_BAD_COMMAND_FRACTION:.0%})")
    return problems


def _odometry_entry(odom: Odometry, ages: list[np.ndarray]) -> dict[str, Any]:
    """Report of one recording's odometry: its topic and rate, and how much older than its frame the vector is."""
    age = np.concatenate(ages) / 1e9 if ages else np.zeros(0)
    hz = 1.0 / float(np.median(np.diff(odom.stamp) / 1e9)) if len(odom.stamp) > 2 else 0.0
    return {
        "topic": odom.topic,
        "messages": int(len(odom.stamp) + odom.out_of_order + odom.non_finite),
        "hz": round(hz, 2),
        "out_of_order": odom.out_of_order,
        "non_finite": odom.non_finite,
        "age_s": {"mean": round(float(age.mean()), 5), "max": round(float(age.max()), 5)} if len(age) else None,
    }


def _runs(ok: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, v in enumerate(ok):
        if v and start is None:
            start = i
        if not v and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(ok)))
    return runs


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "bag"


def format_report(report: dict[str, Any]) -> str:
    span = report["time_span"]
    lines = [
        f"converted {len(report['inputs'])} input(s) of robot(s) {', '.join(report.get('robots', []))} -> {report['output']}",
        f"  transitions {report['transitions']} in {report['episodes']} episodes "
        f"(length min/mean/max {report['episode_length']['min']}/{report['episode_length']['mean']}/{report['episode_length']['max']})",
        f"  frames: {report['dropped_frames']} dropped (estimated from stamp gaps), {report['misaligned_frames']} misaligned, "
        f"{report['wrong_size_frames']} wrong size, {report['undecodable_frames']} undecodable, {report['out_of_order']} out of order",
        f"  time span {span['start']} .. {span['end']} ({span['seconds']:.1f} s); held ticks {report['held_ticks']}; "
        f"recovered parts {report['recovered_parts']}",
    ]
    vector = report.get("vector", {"dim": 0})
    if vector["dim"]:
        history = vector.get("action_history", 0)
        actions = f", + {_actions_phrase(history)}" if history else ""
        lines.append(f"  vector: {ODOMETRY_SOURCE}, at most {vector['max_odometry_age_s']:g} s older than its frame{actions}; "
                     f"{report['stale_odometry_ticks']} ticks with stale odometry (cut)")
    lines.append("  clean" if report["clean"] else f"  NOT clean: {'; '.join(report.get('unclean', []))} (details in report.json)")
    for e in report["inputs"]:
        odom = e.get("odometry")
        lines.append(f"  - {e['path']}: {e['transitions']} transitions, {e['episodes']} episodes, actions from {e['action_source']}, "
                     f"camera {e['camera_hz']} Hz" + (f", odometry {odom['topic']} {odom['hz']} Hz" if odom else "")
                     + (f", recovered {len(e['recovered_parts'])} unfinished part(s)" if e["recovered_parts"] else ""))
    return "\n".join(lines)


def is_bag_input(path: str | Path) -> bool:
    """True if `path` is something convert_bags reads (a recording, a rosbag2 bag, an .mcap/.db3 file, or a
    folder of those), False if it is a dataset folder of episodes (.npz) or anything else."""
    path = Path(path).expanduser()
    if path.is_file():
        return path.suffix in (".mcap", ".db3")
    if not path.is_dir() or any(path.glob("*.npz")):
        return False
    try:
        discover(path)
    except BagError:
        return False
    return True


def dataset_from_bags(bag_paths: str | Path | Sequence[str | Path], cache_root: str | Path, preprocess_config: PreprocessConfig,
                      control_hz: float = 10.0, **options: Any) -> tuple[Path, dict[str, Any]]:
    """The dataset of these bags for this preprocessing, converted once and cached under `cache_root` (for CLIs
    such as `calibrate` that accept bag folders directly). The cache key covers the bags' files (paths, sizes,
    modification times), the preprocessing, the control rate and the options. Returns (folder, report)."""
    import hashlib

    if isinstance(bag_paths, (str, Path)):
        bag_paths = [bag_paths]
    files = []
    for src in [s for p in bag_paths for s in discover(p)]:
        for f in sorted(x for x in src.path.rglob("*") if x.is_file()) if src.path.is_dir() else [src.path]:
            st = f.stat()
            files.append(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    key = json.dumps({"files": files, "pre": preprocess_config.to_dict(), "hz": control_hz, "options": options}, sort_keys=True, default=str)
    folder = Path(cache_root).expanduser() / f"bags-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if (folder / REPORT).is_file():
        return folder, json.loads((folder / REPORT).read_text())
    report = convert_bags(bag_paths, folder, preprocess_config, control_hz, **options)
    return folder, report


def _read_settings(path: Path) -> Any:
    if not path.is_file():
        raise BagError(f"settings file not found: {path}")
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BagError(f"{path}: neither JSON nor YAML ({exc})") from None


def load_vector_dim(path: str | Path) -> int | None:
    """The vector size a model expects, from its checkpoint manifest (checkpoint.json: model.vector_dim) or its ONNX
    manifest (the 'vector' input's shape [1, D]; 0 without one); None for a file of preprocessing settings only."""
    path = Path(path)
    d = _read_settings(path)
    if not isinstance(d, dict):
        return None
    if isinstance(d.get("model"), dict) and "vector_dim" in d["model"]:
        return int(d["model"]["vector_dim"])
    if isinstance(d.get("inputs"), list):
        vec = [t for t in d["inputs"] if isinstance(t, dict) and t.get("name") == "vector"]
        if not vec:
            return 0
        shape = vec[0].get("shape")
        if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int)):
            raise BagError(f"{path}: the 'vector' input's shape must be [1, D], found {shape!r}")
        return shape[1]
    return None


def load_preprocess_config(path: str | Path) -> PreprocessConfig:
    """Preprocessing settings from a model manifest (its 'preprocessing'), or a JSON/YAML file of them."""
    path = Path(path)
    d = _read_settings(path)
    if isinstance(d, dict) and isinstance(d.get("preprocessing"), dict):
        d = d["preprocessing"]
    try:
        return PreprocessConfig.from_dict(d)
    except PreprocessError as exc:
        raise BagError(f"{path}: invalid preprocessing settings: {exc}") from None


def load_kinematics_config(path: str | Path) -> KinematicsConfig:
    """A robot's kinematics from a JSON/YAML mapping of KinematicsConfig's fields (gain, trim, baseline, radius, k, ...)."""
    path = Path(path)
    d = _read_settings(path)
    if not isinstance(d, dict):
        raise BagError(f"{path}: expected a mapping of kinematics settings (gain: 1.0, trim: 0.0, ...), found {type(d).__name__}")
    try:
        return KinematicsConfig.from_dict(d)
    except KinematicsError as exc:
        raise BagError(f"{path}: invalid kinematics: {exc}") from None


@entry_point("convert-bags")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convert-bags", description="Convert redraw recordings / rosbag2 bags into a dataset of episodes.")
    parser.add_argument("bags", nargs="+", help="recording folders, bag folders, .mcap files, or folders of them")
    parser.add_argument("--out", required=True, help="dataset folder to create (must not exist)")
    parser.add_argument("--preprocess", help="model manifest or JSON/YAML preprocessing settings (default: those stored with the bags)")
    parser.add_argument("--control-hz", type=number(low=0, high=100, low_open=True), default=10.0)
    parser.add_argument("--mixed-robots", action="store_true", help="convert recordings of several robots into one dataset")
    parser.add_argument("--kinematics", default=None,
                        help="YAML/JSON mapping of the robot's kinematics (gain, trim, baseline, radius, k, limit), to turn wheel "
                             "commands into actions (default: those stored with the bags)")
    parser.add_argument("--action-source", choices=("auto", "action", "wheels"), default="auto")
    parser.add_argument("--max-gap", type=number(low=0, low_open=True), default=0.5, help="seconds without commands that end an episode")
    parser.add_argument("--max-frame-age", type=number(low=0, low_open=True), default=None, help="oldest usable frame at a tick, s (default: 1/control_hz)")
    parser.add_argument("--min-episode-length", type=number(int, low=2), default=8)
    parser.add_argument("--max-bad-fraction", type=number(low=0, high=1), default=0.05)
    parser.add_argument("--vector-dim", type=number(int, low=0), default=None,
                        help="the model's vector observation size: 0 = none, or 2 + 2k = wheel odometry (forward m/s, yaw rate "
                             "rad/s) then the last k actions (forward, turn), newest first (2, 4, 6, ...); "
                             "default: from the model manifest given to --preprocess, else 0")
    parser.add_argument("--odometry-topic", default=None, help=f"odometry topic (default: the recording's, else <robot>/{ODOMETRY_SUFFIX})")
    parser.add_argument("--max-odometry-age", type=number(low=0, low_open=True), default=None, help="oldest usable odometry before a frame, s (default: 2/control_hz)")
    args = parser.parse_args(argv)
    cfg = load_preprocess_config(args.preprocess) if args.preprocess else None
    kinematics = load_kinematics_config(args.kinematics) if args.kinematics else None
    vector_dim = args.vector_dim if args.vector_dim is not None else ((load_vector_dim(args.preprocess) or 0) if args.preprocess else 0)
    convert_bags(args.bags, args.out, cfg, args.control_hz, action_source=args.action_source, max_gap=args.max_gap, kinematics=kinematics,
                 max_frame_age=args.max_frame_age, min_episode_length=args.min_episode_length,
                 max_bad_fraction=args.max_bad_fraction, vector_dim=vector_dim, odometry_topic=args.odometry_topic,
                 max_odometry_age=args.max_odometry_age, mixed_robots=args.mixed_robots, progress=sys.stderr.isatty())
    return 0


if __name__ == "__main__":
    sys.exit(main())
