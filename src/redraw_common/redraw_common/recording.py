"""What a recording says about itself: the facts the recorder stores with every bag, read back by the
bag -> dataset converter.

A *recording* is the folder the redraw recorder writes: one rosbag2 bag whose storage is split into files
("parts", by size or duration) as rosbag2's own splitting does, plus a sidecar `recording.json`:

    <recording>/
      recording.json            RecordingInfo + the parts and their state (see `Sidecar`)
      metadata.yaml             rosbag2 v9: every closed part's file, the topics with their counts and offered QoS
      <name>_0.mcap             part 0
      <name>_1.mcap             part 1
      .<name>_2/.<name>_2.mcap  the part being written; moved next to the others (and listed) when it closes

`ros2 bag play <recording>`, `ros2 bag info <recording>` and rosbags' Reader(<recording>) read it as one bag.
metadata.yaml is rewritten atomically each time a part closes, so after a crash (SIGKILL, power loss) every
closed part is listed and readable; the part that was open is read up to its last flush and made whole by
`repair_bag`. metadata.yaml carries the RecordingInfo in `custom_data` (string values, keys prefixed with
`redraw.`), and every MCAP part embeds its own rosbag2 metadata with it (and its part number), as rosbag2's MCAP
files do, so a part copied elsewhere still says which robot, kinematics and preprocessing it was recorded with. The sidecar is written atomically at start, at every split and at the end: after a crash it still
names the robot, the type hashes and the part that was open.

Stdlib only (plus redraw_common's config classes): used by the recorder on the robot and by the
converter on the workstation.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BagError, KinematicsError, PreprocessError
from .files import read_json_object, write_json
from .kinematics import KinematicsConfig
from .preprocessing import PreprocessConfig

FORMAT_VERSION = 1
SIDECAR = "recording.json"
PREFIX = "redraw."
ROLES = ("camera", "wheels_cmd", "action", "episode", "odometry")  # odometry: measured velocity (topics.ODOM_VELOCITY), optional

STORAGE_SUFFIX = {"mcap": ".mcap", "sqlite3": ".db3"}
PART_OPEN = "open"        # being written (or the recorder died while writing it)
PART_CLOSED = "closed"    # closed cleanly: an indexed storage file next to metadata.yaml, which lists it
PART_REPAIRED = "repaired"  # was open when the recorder died; repair_bag completed it and listed it


@dataclass(frozen=True)
class RecordingInfo:
    """Robot, kinematics, preprocessing and topics of a recording."""

    robot: str
    kinematics: KinematicsConfig = KinematicsConfig()
    preprocessing: PreprocessConfig = PreprocessConfig()
    control_hz: float = 10.0
    topics: dict[str, str] = field(default_factory=dict)  # role (ROLES) -> absolute topic name
    recorder: str = ""
    started: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.robot, str) or not self.robot.strip("/"):
            raise BagError(f"recording robot name must be a non-empty string, found {self.robot!r}")
        if not (isinstance(self.control_hz, (int, float)) and math.isfinite(self.control_hz) and 0 < self.control_hz <= 100):
            raise BagError(f"recording control_hz must be in (0, 100], found {self.control_hz!r}")
        unknown = sorted(set(self.topics) - set(ROLES))
        if unknown:
            raise BagError(f"unknown topic roles {unknown}; expected a subset of {list(ROLES)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "robot": self.robot,
            "kinematics": self.kinematics.to_dict(),
            "preprocessing": self.preprocessing.to_dict(),
            "control_hz": float(self.control_hz),
            "topics": dict(self.topics),
            "recorder": self.recorder,
            "started": self.started,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "recording info") -> RecordingInfo:
        if not isinstance(d, dict):
            raise BagError(f"{source}: expected a mapping, found {type(d).__name__}")
        version = d.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise BagError(f"{source}: format_version must be {FORMAT_VERSION}, found {version!r}")
        if "robot" not in d:
            raise BagError(f"{source}: missing 'robot'; expected keys robot, kinematics, preprocessing, control_hz, topics")
        try:
            kin = KinematicsConfig.from_dict(d.get("kinematics", {}))
            pre = PreprocessConfig.from_dict(d.get("preprocessing", {}))
        except (KinematicsError, PreprocessError) as exc:
            raise BagError(f"{source}: {exc}") from None
        topics = d.get("topics", {})
        if not isinstance(topics, dict) or not all(isinstance(v, str) for v in topics.values()):
            raise BagError(f"{source}: 'topics' must map roles to topic names, found {topics!r}")
        return cls(
            robot=d["robot"], kinematics=kin, preprocessing=pre, control_hz=float(d.get("control_hz", 10.0)),
            topics=dict(topics), recorder=str(d.get("recorder", "")), started=str(d.get("started", "")),
        )

    def to_custom_data(self) -> dict[str, str]:
        """String key/values for rosbag2 metadata `custom_data` (which holds strings only)."""
        return {PREFIX + key: value if isinstance(value, str) else json.dumps(value, sort_keys=True) for key, value in self.to_dict().items()}

    @classmethod
    def from_custom_data(cls, custom: dict[str, str] | None, source: str = "bag metadata") -> RecordingInfo:
        ours = {k[len(PREFIX):]: v for k, v in (custom or {}).items() if k.startswith(PREFIX)}
        if not ours:
            raise BagError(f"{source}: custom_data holds no '{PREFIX}*' keys; expected a bag written by the redraw recorder")
        d: dict[str, Any] = {}
        for key, value in ours.items():
            if key in ("robot", "recorder", "started"):
                d[key] = value
                continue
            try:
                d[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise BagError(f"{source}: custom_data '{PREFIX}{key}' is not JSON ({exc}): {value[:80]!r}") from None
        return cls.from_dict(d, source)


def part_file(folder: str | Path, name: str, storage: str) -> Path:
    """Where a closed part's storage file lies: <recording>/<name>.mcap (or .db3)."""
    return Path(folder) / f"{name}{STORAGE_SUFFIX[storage]}"


def open_part_file(folder: str | Path, name: str, storage: str) -> Path:
    """Where a part's storage file lies while it is written: <recording>/.<name>/.<name>.mcap (or .db3)."""
    return Path(folder) / f".{name}" / f".{name}{STORAGE_SUFFIX[storage]}"


@dataclass
class PartEntry:
    name: str
    status: str = PART_OPEN
    messages: int = 0
    start_ns: int = 0
    end_ns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "messages": self.messages, "start_ns": self.start_ns, "end_ns": self.end_ns}


@dataclass
class Sidecar:
    """The content of `recording.json`."""

    info: RecordingInfo
    storage: str = "mcap"
    parts: list[PartEntry] = field(default_factory=list)
    type_hashes: dict[str, str] = field(default_factory=dict)  # msgtype -> RIHS01 hash
    state: str = "recording"   # recording | finished
    stop_reason: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "info": self.info.to_dict(),
            "storage": self.storage,
            "parts": [p.to_dict() for p in self.parts],
            "type_hashes": dict(self.type_hashes),
            "state": self.state,
            "stop_reason": self.stop_reason,
            "stats": dict(self.stats),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str) -> Sidecar:
        if not isinstance(d, dict) or "info" not in d or "parts" not in d:
            raise BagError(f"{source}: expected a recording sidecar with 'info' and 'parts', found keys {sorted(d) if isinstance(d, dict) else type(d).__name__}")
        try:
            parts = [PartEntry(**p) for p in d["parts"]]
        except TypeError as exc:
            raise BagError(f"{source}: malformed 'parts' entry ({exc})") from None
        return cls(
            info=RecordingInfo.from_dict(d["info"], f"{source} info"), storage=str(d.get("storage", "mcap")), parts=parts,
            type_hashes=dict(d.get("type_hashes", {})), state=str(d.get("state", "")), stop_reason=str(d.get("stop_reason", "")),
            stats=dict(d.get("stats", {})),
        )

    def write(self, folder: str | Path) -> Path:
        """Write `recording.json` atomically (temporary file + rename)."""
        return write_json(Path(folder) / SIDECAR, self.to_dict())

    @classmethod
    def read(cls, folder: str | Path) -> Sidecar:
        path = Path(folder) / SIDECAR
        return cls.from_dict(read_json_object(path, "recording sidecar", BagError), str(path))


_STAMP = struct.Struct("<iI")
_STAMP_BE = struct.Struct(">iI")


def cdr_header_stamp(raw: bytes | memoryview) -> int | None:
    """Header stamp (ns) of a CDR-serialised ROS 2 message whose first field is a std_msgs/Header, read
    without deserialising it. None if the buffer is too short or not CDR."""
    if len(raw) < 12:
        return None
    kind = bytes(raw[0:2])
    if kind == b"\x00\x01":
        sec, nsec = _STAMP.unpack_from(raw, 4)
    elif kind == b"\x00\x00":
        sec, nsec = _STAMP_BE.unpack_from(raw, 4)
    else:
        return None
    return sec * 1_000_000_000 + nsec
