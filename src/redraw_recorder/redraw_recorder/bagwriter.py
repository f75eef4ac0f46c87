"""Write a recording folder: one rosbag2 bag whose storage files ("parts") are written with rosbags, split by
size or duration, flushed often enough that a killed recorder loses at most about the last second.

    writer = RecordingWriter(folder, info, storage="mcap", split_size=512 << 20, split_duration=300.0,
                             offered_qos=lambda topic: [...])   # the publishers' QoS, asked at each part's start
    writer.open()                                  # refuses an existing folder
    cam = writer.add_topic("/db/camera_node/image/compressed", "sensor_msgs/msg/CompressedImage")
    writer.write(cam, stamp_ns, raw_cdr_bytes)     # rotates to a new part when a limit is reached
    writer.flush()                                 # every second: complete chunk + file flush (mcap) / commit
    writer.close("done")

Each part is written by a rosbags Writer in its own hidden folder; when it closes, its storage file moves next to
the others and the recording's metadata.yaml is rewritten (atomically) to list every closed part
(`write_metadata`, also used by repair_bag). Layout and sidecar: redraw_common.recording. No ROS imports here:
the node owns the subscriptions and asks the graph for the publishers' QoS.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from rosbags.interfaces import Qos
from rosbags.rosbag2 import Reader, ReaderError, Writer, WriterError
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.rosbag2.metadata import dump_qos_v9
from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore
from ruamel.yaml import YAML

from redraw_common.errors import BagError
from redraw_common.paths import out_dir_problem
from redraw_common.recording import PART_CLOSED, PartEntry, RecordingInfo, Sidecar, open_part_file, part_file

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 9
MIN_PART_SECONDS = 1.0


MSG_PACKAGES = ("redraw_msgs", "duckietown_msgs")   # this workspace's message packages (the robot profiles' types)


def redraw_typestore() -> Typestore:
    """ROS 2 kilted types + this workspace's message packages, registered from the .msg files they install."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for package in MSG_PACKAGES:
        try:
            msg_dir = Path(get_package_share_directory(package)) / "msg"
        except PackageNotFoundError:
            raise BagError(f"package {package} is not installed (no share/{package} in AMENT_PREFIX_PATH); source the workspace") from None
        files = sorted(msg_dir.glob("*.msg"))
        if not files:
            raise BagError(f"no .msg files in {msg_dir}; expected {package}' message definitions")
        for f in files:
            types.update(get_types_from_msg(f.read_text(), f"{package}/msg/{f.stem}"))
    store.register(types)
    return store


def _type_hash(msgtype: str, msgdef: str, known: dict[str, str]) -> str:
    if msgtype in known:
        return known[msgtype]
    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(msgdef, msgtype))
    return store.hash_rihs01(msgtype)


def list_storage_file(file: Path, type_hashes: dict[str, str]) -> dict:
    """One complete storage file's listing for metadata.yaml: its entry (span, count) and each connection's topic
    metadata with its count and offered QoS."""
    try:
        with Reader(file) as reader:
            count = reader.message_count
            first = reader.start_time if count else 0
            span = max(0, reader.duration - 1) if count else 0
            connections = [{"name": c.topic, "type": c.msgtype, "serialization_format": c.ext.serialization_format,
                            "type_description_hash": c.digest or _type_hash(c.msgtype, c.msgdef.data, type_hashes),
                            "count": c.msgcount, "qos": dump_qos_v9(list(c.ext.offered_qos_profiles))}
                           for c in reader.connections]
    except ReaderError as exc:
        raise BagError(f"{file}: cannot be listed in {file.parent / 'metadata.yaml'}: unreadable ({exc})") from None
    return {"entry": {"path": file.name, "starting_time": {"nanoseconds_since_epoch": first}, "duration": {"nanoseconds": span},
                      "message_count": count}, "connections": connections}


def write_metadata(folder: str | Path, files: Sequence[Path], custom: dict[str, str], type_hashes: dict[str, str],
                   listings: dict[Path, dict] | None = None) -> int:
    """Write <folder>/metadata.yaml (rosbag2 v9) for these complete storage files, in order: the files, each topic
    with its message count over all of them and the QoS its publishers offered (the union over the files), the
    bag's span. Atomic (temporary file + rename). Returns the number of messages.

    `listings` caches each file's listing (list_storage_file) across calls: a recorder that rewrites metadata.yaml
    at every part close reads each closed file once, not once per later part."""
    folder = Path(folder)
    listings = {} if listings is None else listings
    topics: dict[str, dict] = {}
    entries = []
    start, end, total = None, 0, 0
    for file in files:
        if file not in listings:
            listings[file] = list_storage_file(file, type_hashes)
        listing = listings[file]
        for c in listing["connections"]:
            topic = topics.setdefault(c["name"], {"topic_metadata": {
                "name": c["name"], "type": c["type"], "serialization_format": c["serialization_format"],
                "offered_qos_profiles": [], "type_description_hash": c["type_description_hash"]}, "message_count": 0})
            topic["message_count"] += c["count"]
            offered = topic["topic_metadata"]["offered_qos_profiles"]
            offered += [q for q in c["qos"] if q not in offered]
        entry = listing["entry"]
        entries.append(entry)
        count, first, span = entry["message_count"], entry["starting_time"]["nanoseconds_since_epoch"], entry["duration"]["nanoseconds"]
        total += count
        if count:
            start = first if start is None else min(start, first)
            end = max(end, first + span)
    info = {
        "version": BAG_VERSION,
        "storage_identifier": "mcap" if all(f.suffix == ".mcap" for f in files) else "sqlite3",
        "relative_file_paths": [f.name for f in files],
        "duration": {"nanoseconds": end - start if start is not None else 0},
        "starting_time": {"nanoseconds_since_epoch": start or 0},
        "message_count": total,
        "topics_with_message_count": list(topics.values()),
        "compression_format": "",
        "compression_mode": "",
        "files": entries,
        "custom_data": custom or None,
        "ros_distro": "rosbags",
    }
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    text = StringIO()
    yaml.dump({"rosbag2_bagfile_information": info}, text)
    tmp = folder / "metadata.yaml.tmp"
    tmp.write_text(text.getvalue())
    tmp.replace(folder / "metadata.yaml")
    return total


def free_bytes(path: str | Path) -> int:
    """Free bytes on the file system that holds `path` (or its nearest existing ancestor)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


@dataclass
class _Topic:
    topic: str
    msgtype: str
    msgdef: str
    digest: str


class RecordingWriter:
    def __init__(
        self,
        folder: str | Path,
        info: RecordingInfo,
        *,
        storage: str = "mcap",
        split_size: int = 512 << 20,
        split_duration: float = 300.0,
        min_free: int = 256 << 20,
        typestore: Typestore | None = None,
        offered_qos: Callable[[str], list[Qos]] = lambda topic: [],
    ):
        if storage not in STORAGES:
            raise BagError(f"storage must be one of {sorted(STORAGES)}, found {storage!r}")
        if split_size < 0 or split_duration < 0:
            raise BagError(f"split_size and split_duration must be >= 0 (0 = no split), found {split_size}, {split_duration}")
        self.folder = Path(folder)
        self.name = self.folder.name
        self.info = info
        self.storage = storage
        self.split_size = int(split_size)
        self.split_ns = int(split_duration * 1e9)
        self.min_free = int(min_free)
        self.typestore = typestore or redraw_typestore()
        self.offered_qos = offered_qos
        self.sidecar = Sidecar(info=info, storage=storage)
        self.topics: list[_Topic] = []
        self._writer: Writer | None = None
        self._conns: list = []
        self._part: PartEntry | None = None
        self._part_bytes = 0
        self._listings: dict[Path, dict] = {}   # closed files' metadata.yaml listings, each read once
        self._last_ns = 0
        self.messages = 0
        self.bytes = 0
        self.closed = False

    # ---------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Create the folder and the first part. Refuses an existing output or a nearly full disk."""
        if self.folder.exists():
            raise BagError(f"output {self.folder} exists already; the recorder never overwrites or appends: choose a new output")
        problem = out_dir_problem(self.folder, "output")
        if problem:
            raise BagError(problem)
        free = free_bytes(self.folder.parent)
        if free < self.min_free:
            raise BagError(
                f"disk nearly full: {free / 2**20:.0f} MiB free where {self.folder} would go, "
                f"the recorder needs at least {self.min_free / 2**20:.0f} MiB (parameter min_free_mb)"
            )
        self.folder.mkdir(parents=True)
        self._write_sidecar()

    def add_topic(self, topic: str, msgtype: str) -> int:
        """Register a topic; returns the key for write(). Must be called before the first write."""
        if self._writer is not None:
            raise BagError(f"add_topic({topic!r}) after the first write; register every topic first")
        try:
            msgdef, _ = self.typestore.generate_msgdef(msgtype, ros_version=2)
            digest = self.typestore.hash_rihs01(msgtype)
        except (KeyError, TypesysError):
            raise BagError(f"unknown message type {msgtype!r} for topic {topic}; expected a ROS 2 kilted or redraw_msgs type") from None
        self.topics.append(_Topic(topic, msgtype, msgdef, digest))
        self.sidecar.type_hashes[msgtype] = digest
        return len(self.topics) - 1

    def write(self, key: int, stamp_ns: int, data: bytes | memoryview) -> None:
        """Write one serialized message. Timestamps are made non-decreasing (rosbag2 readers expect it)."""
        if self.closed:
            raise BagError("write() on a closed recording")
        stamp_ns = max(int(stamp_ns), self._last_ns)
        if self._writer is None:
            self._open_part(stamp_ns)
        elif self._should_split(stamp_ns):
            self._close_part()
            self._open_part(stamp_ns)
        assert self._writer is not None and self._part is not None
        self._writer.write(self._conns[key], stamp_ns, data)
        self._last_ns = stamp_ns
        self._part.messages += 1
        self._part.end_ns = stamp_ns
        self._part_bytes += len(data)
        self.messages += 1
        self.bytes += len(data)

    def flush(self) -> None:
        """Put everything written so far on disk as complete records (mcap: close the pending chunk and
        flush the file; sqlite3: commit). After a SIGKILL the part reads up to the last flush."""
        if self._writer is None or self._writer.storage is None:
            return
        storage = self._writer.storage
        if self.storage == "mcap":
            if storage.chunk.bio.tell():
                storage.close_chunk()
            storage.bio.flush()
        else:
            storage.conn.commit()

    def close(self, reason: str = "", stats: dict | None = None) -> None:
        if self.closed:
            return
        if self._writer is not None:
            self._close_part()
        self.closed = True
        self.sidecar.state = "finished"
        self.sidecar.stop_reason = reason
        if stats is not None:
            self.sidecar.stats = stats
        if self.folder.exists():
            self._write_sidecar()

    # ---------------------------------------------------------------------------------------------
    @property
    def parts(self) -> list[PartEntry]:
        return list(self.sidecar.parts)

    def _should_split(self, stamp_ns: int) -> bool:
        assert self._part is not None
        age = stamp_ns - self._part.start_ns
        if age < MIN_PART_SECONDS * 1e9:
            return False
        return bool((self.split_size and self._part_bytes >= self.split_size) or (self.split_ns and age >= self.split_ns))

    def _open_part(self, stamp_ns: int) -> None:
        name = f"{self.name}_{len(self.sidecar.parts)}"     # rosbag2's names for split files
        writer = Writer(open_part_file(self.folder, name, self.storage).parent, version=BAG_VERSION, storage_plugin=STORAGES[self.storage])
        for key, value in self.info.to_custom_data().items():
            writer.set_custom_data(key, value)
        writer.set_custom_data("redraw.part", str(len(self.sidecar.parts)))
        try:
            writer.open()
        except WriterError as exc:
            raise BagError(f"cannot create bag part {name} in {self.folder}: {exc}") from None
        self._check_storage_api(writer)
        self._conns = [writer.add_connection(t.topic, t.msgtype, msgdef=t.msgdef, rihs01=t.digest, offered_qos_profiles=self.offered_qos(t.topic))
                       for t in self.topics]
        self._writer = writer
        self._part = PartEntry(name=name, start_ns=stamp_ns, end_ns=stamp_ns)
        self._part_bytes = 0
        self.sidecar.parts.append(self._part)
        self._write_sidecar()
        self.flush()  # schemas and channels on disk at once

    def _close_part(self) -> None:
        """Close the part's file, move it next to the others and list it in metadata.yaml."""
        assert self._writer is not None and self._part is not None
        self._writer.close()
        self._writer = None
        working = open_part_file(self.folder, self._part.name, self.storage)
        working.replace(part_file(self.folder, self._part.name, self.storage))
        shutil.rmtree(working.parent)   # what is left: the part's own metadata.yaml, superseded by the recording's
        self._part.status = PART_CLOSED
        files = [part_file(self.folder, p.name, self.storage) for p in self.sidecar.parts if p.status == PART_CLOSED]
        write_metadata(self.folder, files, self.info.to_custom_data(), self.sidecar.type_hashes, self._listings)
        self._write_sidecar()

    def _check_storage_api(self, writer: Writer) -> None:
        """flush() uses the rosbags storage writer's chunk and file objects (rosbags 0.11): fail early and
        clearly if a different rosbags version lacks them, rather than losing data on a crash."""
        storage = writer.storage
        need = ("chunk", "close_chunk", "bio") if self.storage == "mcap" else ("conn",)
        missing = [a for a in need if not hasattr(storage, a)]
        if missing:
            writer.abort()
            raise BagError(f"this rosbags version's {type(storage).__name__} lacks {missing}; the recorder needs rosbags 0.11.x")

    def _write_sidecar(self) -> None:
        self.sidecar.write(self.folder)
        # the folder entry itself must survive a crash too
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
