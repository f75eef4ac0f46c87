"""Repair a recording whose recorder was killed (SIGKILL, power loss), like `ros2 bag reindex`.

A part that was being written when the recorder died has no metadata.yaml, and (mcap) no summary or
footer; up to about its last second of data is intact (the recorder flushes complete chunks every
second). `repair_recording` makes every such part a complete rosbag2 bag again:

    1. the MCAP file gets its missing message indexes, summary and footer (redraw_common.mcaprepair);
       bytes after the last complete record are moved to `<file>.tail`, nothing is deleted
    2. metadata.yaml is written from what the file holds, with the recording's robot, kinematics and
       preprocessing in custom_data (from recording.json) and the type hashes the recorder stored

Command line:  repair_bag <recording or part folder>      (ros2 run redraw_recorder repair_bag ...)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from rosbags.rosbag2 import Reader, ReaderError
from rosbags.rosbag2.metadata import dump_qos_v9
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from ruamel.yaml import YAML

from redraw_common.cli import entry_point
from redraw_common.errors import BagError
from redraw_common.mcaprepair import is_complete, repair_mcap
from redraw_common.recording import PART_REPAIRED, SIDECAR, Sidecar

from .bagwriter import BAG_VERSION


@dataclass(frozen=True)
class PartRepair:
    part: Path
    action: str          # "ok" (nothing to do) | "repaired"
    messages: int
    tail_bytes: int
    note: str = ""


def _storage_file(part: Path) -> Path:
    files = sorted([*part.glob("*.mcap"), *part.glob("*.db3")])
    if len(files) != 1:
        raise BagError(f"{part}: expected exactly one .mcap or .db3 storage file, found {[f.name for f in files]}")
    return files[0]


def _type_hash(msgtype: str, msgdef: str, known: dict[str, str]) -> str:
    if msgtype in known:
        return known[msgtype]
    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(msgdef, msgtype))
    return store.hash_rihs01(msgtype)


def write_metadata(part: Path, custom: dict[str, str], type_hashes: dict[str, str]) -> int:
    """Write part/metadata.yaml (rosbag2 v9) for the single complete storage file in `part`."""
    file = _storage_file(part)
    storage = "mcap" if file.suffix == ".mcap" else "sqlite3"
    try:
        with Reader(file) as reader:
            conns = reader.connections
            count = reader.message_count
            start = reader.start_time if count else 0
            duration = reader.duration - 1 if count else 0
            topics = [
                {
                    "topic_metadata": {
                        "name": c.topic,
                        "type": c.msgtype,
                        "serialization_format": c.ext.serialization_format,
                        "offered_qos_profiles": dump_qos_v9(list(c.ext.offered_qos_profiles)),
                        "type_description_hash": c.digest or _type_hash(c.msgtype, c.msgdef.data, type_hashes),
                    },
                    "message_count": c.msgcount,
                }
                for c in conns
            ]
    except ReaderError as exc:
        raise BagError(f"{file}: unreadable after repair ({exc})") from None
    info = {
        "version": BAG_VERSION,
        "storage_identifier": storage,
        "relative_file_paths": [file.name],
        "duration": {"nanoseconds": max(0, duration)},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": count,
        "topics_with_message_count": topics,
        "compression_format": "",
        "compression_mode": "",
        "files": [{"path": file.name, "starting_time": {"nanoseconds_since_epoch": start}, "duration": {"nanoseconds": max(0, duration)}, "message_count": count}],
        "custom_data": custom or None,
        "ros_distro": "rosbags",
    }
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    text = StringIO()
    yaml.dump({"rosbag2_bagfile_information": info}, text)
    tmp = part / "metadata.yaml.tmp"
    tmp.write_text(text.getvalue())
    tmp.replace(part / "metadata.yaml")
    return count


def repair_part(part: Path, custom: dict[str, str], type_hashes: dict[str, str]) -> PartRepair:
    part = Path(part)
    file = _storage_file(part)
    complete = file.suffix != ".mcap" or is_complete(file)
    if complete and (part / "metadata.yaml").is_file():
        return PartRepair(part, "ok", -1, 0)
    result = repair_mcap(file) if file.suffix == ".mcap" else None
    count = write_metadata(part, custom, type_hashes)
    tail = result.tail_bytes if result else 0
    note = result.problem if result else ""
    return PartRepair(part, "repaired", count, tail, note)


def repair_recording(path: str | Path) -> list[PartRepair]:
    """Repair every unfinished part of a recording folder (or one part folder). Idempotent."""
    path = Path(path)
    if not path.is_dir():
        raise BagError(f"recording not found: {path} is not a folder")
    if (path / SIDECAR).is_file():
        sidecar = Sidecar.read(path)
        parts = [path / p.name for p in sidecar.parts if (path / p.name).is_dir()]
        root = path
    elif (path.parent / SIDECAR).is_file():
        sidecar = Sidecar.read(path.parent)
        parts, root = [path], path.parent
    else:
        raise BagError(f"{path}: no {SIDECAR} here or in the parent folder; expected a recording written by the redraw recorder")
    results = []
    for index, part in enumerate(parts):
        custom = sidecar.info.to_custom_data()
        custom["redraw.part"] = str(next((i for i, p in enumerate(sidecar.parts) if p.name == part.name), index))
        result = repair_part(part, custom, sidecar.type_hashes)
        results.append(result)
        if result.action == "repaired":
            for entry in sidecar.parts:
                if entry.name == part.name:
                    entry.status = PART_REPAIRED
                    entry.messages = result.messages
    if any(r.action == "repaired" for r in results):
        sidecar.write(root)
    return results


@entry_point("repair_bag")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="repair_bag", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="recording folder (with recording.json) or one part folder")
    args = parser.parse_args(argv)
    results = repair_recording(args.path)
    for r in results:
        if r.action == "ok":
            print(f"{r.part}: complete, nothing to do")
        else:
            tail = f"; {r.tail_bytes} bytes of an unfinished record kept in a .tail file" if r.tail_bytes else ""
            print(f"{r.part}: repaired, {r.messages} messages readable{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
