"""Reading redraw recordings and rosbag2 bags for the converter (redraw_training.bags): discovery of recordings
and their parts (a part left unfinished by a killed recorder is read up to its last complete chunk), the message
types, the choice of topics (names from redraw_common.topics and the robot profiles, types from the profiles:
redraw_common.robot_profile), the streams of one recording (camera stamps,
commands, odometry, episode events).
"""


from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redraw_common import topics as names
from redraw_common.errors import BagError
from redraw_common.kinematics import KinematicsConfig, wheels_to_action
from redraw_common.mcaprepair import is_complete, iter_messages
from redraw_common.recording import (
    PART_CLOSED,
    PART_REPAIRED,
    PREFIX,
    SIDECAR,
    RecordingInfo,
    Sidecar,
    cdr_header_stamp,
    open_part_file,
    part_file,
)
from redraw_common.robot_profile import SUPPORTED, available, load, velocity

CAMERA_TYPE = "sensor_msgs/msg/CompressedImage"
ACTION_TYPE = "redraw_msgs/msg/DriveAction"
WHEELS_TYPES = SUPPORTED["wheels_cmd"]      # redraw_msgs' or duckietown_msgs' WheelsCmdStamped: the same fields
WHEELS_DOC = " or ".join(WHEELS_TYPES)
EPISODE_TYPE = "redraw_msgs/msg/EpisodeEvent"
ODOMETRY_TYPES = SUPPORTED["odometry"]      # TwistStamped or nav_msgs/Odometry: robot_profile.velocity reads either


def _odometry_names() -> dict[str, tuple[str, list[str]]]:
    """Where the shipped robot profiles put the odometry: topic suffix -> (type, the profiles)."""
    names: dict[str, tuple[str, list[str]]] = {}
    for name in available():
        odometry = load(name).odometry
        names.setdefault(odometry.topic, (odometry.type, []))[1].append(name)
    return names


ODOMETRY_NAMES = _odometry_names()
ODOMETRY_DOC = (" or ".join(f"{msgtype} on <robot>/{suffix} ({', '.join(names)})" for suffix, (msgtype, names) in ODOMETRY_NAMES.items())
                + ": the measured forward m/s and yaw rate rad/s")
ODOMETRY_SOURCE = "odometry velocity (forward m/s, yaw rate rad/s)"
# the names a role's topic ends in, to pick among several of its type: the project's own, the profiles' for the drivers'
ROLE_NAMES = {"action": ("/" + names.ACTION,), "episode": ("/" + names.EPISODE,),
              **{role: tuple(sorted({"/" + load(p).endpoint(role).topic for p in available()})) for role in ("camera", "wheels_cmd")}}
ROLE_OF_TYPE = {CAMERA_TYPE: "camera", ACTION_TYPE: "action", EPISODE_TYPE: "episode", **dict.fromkeys(WHEELS_TYPES, "wheels_cmd")}
TERMINAL_REASONS = {1, 4}  # REASON_LEFT_LANE, REASON_COLLISION


# ---------------------------------------------------------------------------------------------------
# Reading bags
# ---------------------------------------------------------------------------------------------------

@dataclass
class Part:
    """One rosbag2 bag (a recording's part, or a plain bag)."""

    path: Path               # bag folder, or a storage file (a recording's part, a bag without metadata.yaml)
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
            closed, working = part_file(path, entry.name, sidecar.storage), open_part_file(path, entry.name, sidecar.storage)
            if closed.is_file():
                parts.append(Part(closed, closed, closed.suffix != ".mcap" or is_complete(closed)))
            elif working.is_file():   # the part a killed recorder left open: read up to its last complete chunk
                parts.append(Part(working, working, working.suffix != ".mcap" or is_complete(working)))
            elif (path / entry.name).is_dir():   # a recording of the earlier layout: one bag folder per part
                parts.append(_part(path / entry.name))
            elif entry.status in (PART_CLOSED, PART_REPAIRED):
                raise BagError(f"{path}: part {entry.name} is listed in {SIDECAR} as {entry.status} but its file {closed.name} is missing")
            # else: the recorder died before the part's first message
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


class Typestore:
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


def iter_part(part: Part, types: Typestore, roles: dict[str, str] | None = None) -> Iterator[tuple[str, str, int, bytes]]:
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


#: what reading a damaged file can raise: rosbags' own errors and anything its parsers hit on garbage (struct.error,
#: OverflowError, UnicodeDecodeError, MemoryError, ...); each means "this bag cannot be read", reported with the file
READ_ERRORS: tuple[type[BaseException], ...] = (Exception,)


def _list_topics(part: Part, types: Typestore) -> dict[str, tuple[str, int | None]]:
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
            named = [c for c in candidates if c.endswith(ROLE_NAMES[role])]
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
            f"{source.path}: no driving commands: expected {ACTION_TYPE} (redraw/action) or {WHEELS_DOC} "
            f"(the robot profile's wheels_cmd) messages; the bag has: {listing}"
        )
    return chosen


def _pick_odometry(source: Source, topics: dict[str, str], topic: str | None) -> str:
    """The odometry topic of a recording: `topic` if given, else the one its recording info names, else the one
    named as a shipped robot profile names it (ODOMETRY_NAMES). Refuses a missing topic or one of another type."""
    listing = ", ".join(f"{t} [{m}]" for t, m in sorted(topics.items())) or "none"
    if topic is None:
        preferred = source.info.topics.get("odometry") if source.info else None
        named = [t for t in topics if t.endswith(tuple(ODOMETRY_NAMES))]
        if preferred in topics:
            topic = preferred
        elif len(named) == 1:
            topic = named[0]
        elif len(named) > 1:
            raise BagError(f"{source.path}: {len(named)} odometry topics ({sorted(named)}); cannot tell which one to use: "
                           "give one (convert-bags --odometry-topic TOPIC)")
        else:
            stamped = sorted(t for t, m in topics.items() if m in ODOMETRY_TYPES)
            kinds = " / ".join(sorted({topics[t] for t in stamped}))
            hint = (f"; its {kinds} topics {stamped} are not named as odometry: give one (convert-bags --odometry-topic TOPIC)"
                    if stamped else "")
            raise BagError(
                f"{source.path}: the model's vector starts with the measured velocity (forward speed, yaw rate) but the bag has no odometry "
                f"topic: expected {ODOMETRY_DOC}; the bag has: {listing}{hint}"
            )
    elif topic not in topics:
        raise BagError(f"{source.path}: odometry topic {topic} not found: expected {' or '.join(ODOMETRY_TYPES)} messages on it; the bag has: {listing}")
    if topics[topic] not in ODOMETRY_TYPES:
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


def read_streams(source: Source, types: Typestore, *, action_source: str, kinematics: KinematicsConfig | None,
                 max_bad_fraction: float, odometry: bool = False, odometry_topic: str | None = None) -> Streams:
    """First pass over a recording: stamps of every frame, every command and every event (no decoding); with
    `odometry`, also the measured velocities."""
    topics: dict[str, str] = {}
    promised: list[dict[str, tuple[str, int | None]]] = []
    for part in source.parts:
        try:
            promised.append(_list_topics(part, types))
        except READ_ERRORS as exc:
            raise BagError(f"{part.path}: cannot read the bag ({type(exc).__name__}: {exc}); expected a rosbag2 bag (mcap or sqlite3)") from None
        topics.update({t: m for t, (m, _) in promised[-1].items()})
    chosen = _pick_topics(source, topics)
    if action_source == "action" and "action" not in chosen:
        raise BagError(f"{source.path}: action_source='action' but the bag has no {ACTION_TYPE} topic")
    if action_source == "wheels" and "wheels_cmd" not in chosen:
        raise BagError(f"{source.path}: action_source='wheels' but the bag has no {WHEELS_DOC} topic")
    if odometry:
        chosen["odometry"] = _pick_odometry(source, topics, odometry_topic)
    roles = {topic: role for role, topic in chosen.items()}
    frame_stamp, frame_part, frame_index = [], [], []
    commands: dict[str, list] = {"action": [], "wheels_cmd": []}   # role -> [(log time, raw CDR, type)], in log order
    wanted = {"auto": ("action", "wheels_cmd"), "action": ("action",), "wheels": ("wheels_cmd",)}[action_source]
    odom_stamp, odom_vector = [], []
    odom_bad = 0
    events = []
    messages: Counter[str] = Counter()
    for p, part in enumerate(source.parts):
        n_frames = 0
        read: Counter[str] = Counter()
        try:
            for topic, msgtype, log_ns, raw in iter_part(part, types, roles):
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
                    v = velocity(msg, msgtype)
                    if not all(math.isfinite(x) for x in v):
                        odom_bad += 1
                        continue
                    odom_stamp.append(_stamp(msg, log_ns))
                    odom_vector.append(v)
                elif role in wanted:   # a driving command, kept undecoded: which stream is the actions is decided once all are read
                    commands[role].append((log_ns, raw, msgtype))
        except BagError:
            raise
        except READ_ERRORS as exc:
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
    # the actions: redraw/action where the recording has any (what the policy chose), else the wheel commands turned
    # back into actions (a robot driven by its own controller: the recorder lists an empty redraw/action topic)
    use_action = bool(commands["action"]) or "wheels_cmd" not in chosen if action_source == "auto" else action_source == "action"
    role = "action" if use_action else "wheels_cmd"
    if not commands[role]:
        listed = " and ".join(chosen[r] for r in ("action", "wheels_cmd") if r in chosen and r in wanted)
        raise BagError(f"{source.path}: no driving commands: {listed} {'have' if ' and ' in listed else 'has'} no messages"
                       + (" (action_source 'auto' takes the wheel commands when redraw/action is empty)" if action_source != "auto" else ""))
    if not use_action:
        kinematics = kinematics or (source.info.kinematics if source.info else None)
        if kinematics is None:
            raise BagError(
                f"{source.path}: only wheel commands, and no kinematics to turn them into actions: the bag has no redraw "
                f"recording info; give the robot's kinematics (convert-bags --kinematics FILE, a YAML mapping of gain, trim, "
                f"baseline, radius, k, limit)"
            )
    try:
        cmd_stamp, cmd_action, bad, clipped = _command_actions(commands[role], types, use_action, kinematics)
    except READ_ERRORS as exc:
        raise BagError(f"{source.path}: cannot decode the driving commands on {chosen[role]} ({type(exc).__name__}: {exc})") from None
    if not cmd_stamp:
        raise BagError(f"{source.path}: no usable driving commands on {chosen[role]}: all {len(commands[role])} are non-finite or invalid")
    odom = None
    if odometry:
        if not odom_stamp:
            found = f"{messages['odometry']} messages, all with non-finite values" if messages["odometry"] else "no messages"
            raise BagError(
                f"{source.path}: the odometry topic {chosen['odometry']} ({topics[chosen['odometry']]}) has {found}; the model's vector starts "
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


def _command_actions(commands: list, types: Typestore, use_action: bool, kinematics: KinematicsConfig | None) -> tuple[list, list, int, int]:
    """(stamps, actions in [-1, 1], non-finite or invalid commands dropped, commands clipped) of one command stream
    of (log time, raw, type): redraw/action messages as they are, wheel commands through the inverse kinematics."""
    stamps, actions = [], []
    bad = clipped = 0
    for log_ns, raw, msgtype in commands:
        msg = types.deserialize(raw, msgtype)
        stamp = _stamp(msg, log_ns)
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
        stamps.append(stamp)
        actions.append(np.clip(a, -1.0, 1.0))
    return stamps, actions, bad, clipped
