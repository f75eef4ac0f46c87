"""Repair a recording whose recorder was killed (SIGKILL, power loss), like `ros2 bag reindex`.

The part that was being written when the recorder died is still in its hidden folder (.<name>_<k>/, see
redraw_common.recording), unlisted in metadata.yaml, and (mcap) without summary or footer; up to about its last
second of data is intact (the recorder flushes complete chunks every second). `repair_recording` makes the
recording one complete bag again:

    1. the MCAP file gets its missing message indexes, summary and footer (redraw_common.mcaprepair); bytes
       after the last complete record are kept in `<name>_<k>.mcap.tail` next to it, nothing is deleted
    2. the file moves next to the closed parts, and metadata.yaml is rewritten to list every part, with the
       recording's robot, kinematics and preprocessing in custom_data (from recording.json) and the type
       hashes the recorder stored

Command line:  repair_bag <recording>      (ros2 run redraw_recorder repair_bag ...)
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2 import Reader
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from redraw_common.cli import entry_point
from redraw_common.errors import BagError
from redraw_common.mcaprepair import is_complete, repair_mcap
from redraw_common.recording import PART_REPAIRED, SIDECAR, Sidecar, open_part_file, part_file

from .bagwriter import write_metadata


@dataclass(frozen=True)
class PartRepair:
    part: Path           # the part's storage file, where it lies after the repair
    action: str          # "ok" (nothing to do) | "repaired"
    messages: int
    tail_bytes: int
    note: str = ""


def _listed(folder: Path) -> list[str]:
    """The files metadata.yaml lists (none if there is no metadata.yaml yet)."""
    meta = folder / "metadata.yaml"
    if not meta.is_file():
        return []
    try:
        return list((YAML(typ="safe").load(meta.read_text()) or {})["rosbag2_bagfile_information"]["relative_file_paths"])
    except (YAMLError, KeyError, TypeError) as exc:
        raise BagError(f"{meta}: not a rosbag2 metadata file ({exc}); it is rewritten from the parts' files by repair") from None


def _complete_open_part(folder: Path, name: str, storage: str) -> PartRepair:
    """Make the part the recorder left open whole and move it next to the others."""
    working, closed = open_part_file(folder, name, storage), part_file(folder, name, storage)
    result = repair_mcap(working) if working.suffix == ".mcap" else None   # sqlite3 keeps what was committed
    working.replace(closed)
    if result is not None and result.tail_path is not None:
        result.tail_path.replace(closed.with_name(closed.name + ".tail"))
    shutil.rmtree(working.parent)
    return PartRepair(closed, "repaired", -1, result.tail_bytes if result else 0, result.problem if result else "")


def repair_recording(path: str | Path) -> list[PartRepair]:
    """Complete the part a killed recorder left open and list every part in metadata.yaml. Idempotent."""
    path = Path(path)
    if not path.is_dir():
        raise BagError(f"recording not found: {path} is not a folder")
    if not (path / SIDECAR).is_file():
        raise BagError(f"{path}: no {SIDECAR}; expected a recording written by the redraw recorder")
    sidecar = Sidecar.read(path)
    results = []
    for entry in sidecar.parts:
        closed = part_file(path, entry.name, sidecar.storage)
        if open_part_file(path, entry.name, sidecar.storage).is_file():
            result = _complete_open_part(path, entry.name, sidecar.storage)
            with Reader(result.part) as reader:
                entry.status, entry.messages = PART_REPAIRED, reader.message_count
            result = PartRepair(result.part, result.action, entry.messages, result.tail_bytes, result.note)
        elif closed.is_file():
            if closed.suffix == ".mcap" and not is_complete(closed):
                raise BagError(f"{closed}: a closed part without its summary; expected a complete MCAP file")
            result = PartRepair(closed, "ok", -1, 0)
        else:
            continue   # listed at a split, and the recorder died before its first message
        results.append(result)
    files = [r.part for r in results]
    if not files:
        raise BagError(f"{path}: the recording holds no part files (the recorder stopped before the first message)")
    if any(r.action == "repaired" for r in results) or _listed(path) != [f.name for f in files]:
        write_metadata(path, files, sidecar.info.to_custom_data(), sidecar.type_hashes)
        sidecar.write(path)
    return results


@entry_point("repair_bag")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="repair_bag", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="recording folder (with recording.json)")
    args = parser.parse_args(argv)
    results = repair_recording(args.path)
    for r in results:
        if r.action == "ok":
            print(f"{r.part.name}: complete, nothing to do")
        else:
            tail = f"; {r.tail_bytes} bytes of an unfinished record kept in {r.part.name}.tail" if r.tail_bytes else ""
            print(f"{r.part.name}: repaired, {r.messages} messages readable{tail}")
    print(f"{args.path}: metadata.yaml lists {len(results)} part(s); play it with `ros2 bag play {args.path}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
