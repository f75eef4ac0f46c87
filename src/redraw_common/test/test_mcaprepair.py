"""Unfinished MCAP files (a recorder killed mid-write) are read up to their last complete record and repaired
into complete, indexed files that rosbags reads; nothing is deleted."""

import os

import pytest
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.typesys import Stores, get_typestore

from redraw_common.errors import BagError
from redraw_common.mcaprepair import is_complete, iter_messages, repair_mcap, scan_mcap

TS = get_typestore(Stores.ROS2_KILTED)
STR = "std_msgs/msg/String"


def write(path, n=120, flush_every=20, close=True):
    """n messages on two topics; a complete chunk is flushed every `flush_every` messages."""
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    w.open()
    a = w.add_connection("/a", STR, typestore=TS)
    b = w.add_connection("/b", STR, typestore=TS)
    for i in range(n):
        w.write(a if i % 3 else b, 1000 + i, TS.serialize_cdr(TS.types[STR](data=f"m{i}" * 50), STR))
        if (i + 1) % flush_every == 0:
            w.storage.close_chunk()
            w.storage.bio.flush()
    if close:
        w.close()
        return path / f"{path.name}.mcap"
    w.storage.bio.flush()
    w.storage.bio.close()
    return path / f"{path.name}.mcap"


def rosbags_read(file):
    r = McapReader(file)
    r.open()
    try:
        return [(c.topic, t, TS.deserialize_cdr(d, STR).data) for c, t, d in r.messages(r.connections)]
    finally:
        r.close()


def test_complete_file_is_left_alone(tmp_path):
    f = write(tmp_path / "bag")
    before = f.read_bytes()
    assert is_complete(f)
    result = repair_mcap(f)
    assert not result.repaired and result.messages == 120 and f.read_bytes() == before


@pytest.mark.parametrize("cut", ["mid_chunk", "mid_index", "clean_boundary"])
def test_killed_file_reads_and_repairs_up_to_the_last_complete_chunk(tmp_path, cut):
    f = write(tmp_path / "bag", n=120, flush_every=20, close=False)
    scan = scan_mcap(f)
    assert not scan.complete and scan.message_count == 120 and len(scan.chunks) >= 6
    last = scan.chunks[-1]
    if cut == "mid_chunk":        # died while writing the last chunk: its 20 messages are lost
        os.truncate(f, last.offset + last.length // 2)
        expect = 100
    elif cut == "mid_index":      # the chunk is complete, its message indexes are not: rebuilt from the chunk
        os.truncate(f, last.offset + last.length + 5)
        expect = 120
    else:
        expect = 120
    size = f.stat().st_size
    readable_end = scan_mcap(f).data_end
    got = [(ch.topic, t) for ch, _, t, _ in iter_messages(f)]
    assert len(got) == expect and got[0] == ("/b", 1000)
    result = repair_mcap(f)
    assert result.repaired and result.messages == expect
    assert is_complete(f)
    messages = rosbags_read(f)
    assert len(messages) == expect
    assert [m[1] for m in messages] == list(range(1000, 1000 + expect))
    assert messages[7] == ("/a", 1007, "m7" * 50)
    if result.tail_bytes:  # the cut-off bytes are kept, not deleted
        assert result.tail_path.stat().st_size == result.tail_bytes == size - readable_end > 0
    assert not repair_mcap(f).repaired  # idempotent


def test_garbage_is_refused_with_a_clear_error(tmp_path):
    f = tmp_path / "x.mcap"
    f.write_bytes(b"hello world, not mcap")
    with pytest.raises(BagError, match=r"x.mcap is not an MCAP file: it starts with 0x68656c6c6f20776f, expected 0x894d434150300d0a"):
        scan_mcap(f)
    with pytest.raises(BagError, match="MCAP file not found"):
        scan_mcap(tmp_path / "missing.mcap")


def test_damage_inside_the_data_stops_the_walk_there(tmp_path):
    f = write(tmp_path / "bag", n=120, flush_every=20, close=False)
    scan = scan_mcap(f)
    third = scan.chunks[2]
    data = bytearray(f.read_bytes())
    data[third.offset] = 0x7F  # not an MCAP opcode
    f.write_bytes(bytes(data))
    scan = scan_mcap(f)
    assert scan.message_count == 40 and "unknown record opcode 0x7f" in scan.problem
