"""Read and repair MCAP files that were never closed (a recorder killed with SIGKILL, a power loss).

An MCAP file is a header, a data section of records (chunks of messages, each followed by its message
index records) and, written only at close, a summary (schemas, channels, chunk indexes, statistics) and a
footer. A recorder that flushes a complete chunk every second leaves, when killed, a file whose data
section is intact up to about the last second, with no summary and no footer, and possibly half a record
at its end. Readers that start from the footer (rosbags, rosbag2) refuse such a file.

    scan_mcap(path)       walk the data section, stop at the first incomplete or damaged record
    iter_messages(path)   yield (channel, log_time_ns, data) of every complete message, in file order
    repair_mcap(path)     make the file a complete, indexed MCAP: cut the damaged tail (kept next to it as
                          `<file>.tail`, so nothing is lost), add missing message indexes, the summary and
                          the footer. A complete file is left untouched.

Stdlib only (zstd and lz4 chunk compression are supported when those modules are installed).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BagError

MAGIC = b"\x89MCAP0\r\n"
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
OP_MESSAGE_INDEX, OP_CHUNK_INDEX, OP_STATISTICS, OP_SUMMARY_OFFSET, OP_DATA_END = 0x07, 0x08, 0x0B, 0x0E, 0x0F
_KNOWN_OPS = set(range(0x01, 0x10))
_DATA_OPS = {OP_HEADER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_MESSAGE_INDEX, 0x09, 0x0C}  # + attachment, metadata
_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_MSG_HEAD = struct.Struct("<HIQQ")       # channel id, sequence, log time, publish time
_CHUNK_HEAD = struct.Struct("<QQQI")     # start time, end time, uncompressed size, uncompressed crc


@dataclass(frozen=True)
class Schema:
    id: int
    name: str
    encoding: str
    data: bytes


@dataclass(frozen=True)
class Channel:
    id: int
    schema_id: int
    topic: str
    message_encoding: str
    metadata: dict[str, str]


@dataclass
class ChunkInfo:
    offset: int            # of the chunk record's opcode
    length: int            # of the whole chunk record
    start_time: int
    end_time: int
    compression: str
    compressed_size: int
    uncompressed_size: int
    index_offsets: dict[int, int] = field(default_factory=dict)  # channel id -> offset of its message index record
    index_length: int = 0
    entries: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # channel id -> [(log time, offset in chunk)]


@dataclass
class Scan:
    path: Path
    file_size: int
    complete: bool                     # the file already has a valid footer (nothing to repair)
    data_end: int                      # offset just after the last complete data-section record
    schemas: dict[int, Schema] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    chunks: list[ChunkInfo] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)   # channel id -> messages
    start_time: int = 0
    end_time: int = 0
    problem: str = ""                  # why the walk stopped early, "" if it reached the end cleanly

    @property
    def message_count(self) -> int:
        return sum(self.counts.values())

    @property
    def tail_bytes(self) -> int:
        return 0 if self.complete else self.file_size - self.data_end


@dataclass(frozen=True)
class RepairResult:
    path: Path
    repaired: bool        # False if the file was already complete
    messages: int
    chunks: int
    tail_bytes: int       # bytes cut off the end (kept in tail_path)
    tail_path: Path | None
    problem: str


def _string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    if pos + n > len(buf):
        raise ValueError(f"string of {n} bytes runs past its record")
    return bytes(buf[pos:pos + n]).decode(), pos + n


def _bytes(buf: memoryview, pos: int, prefix: struct.Struct = _U32) -> tuple[bytes, int]:
    (n,) = prefix.unpack_from(buf, pos)
    pos += prefix.size
    if pos + n > len(buf):
        raise ValueError(f"byte array of {n} bytes runs past its record")
    return bytes(buf[pos:pos + n]), pos + n


def _parse_schema(body: memoryview) -> Schema:
    (sid,) = _U16.unpack_from(body, 0)
    name, pos = _string(body, 2)
    encoding, pos = _string(body, pos)
    data, _ = _bytes(body, pos)
    return Schema(sid, name, encoding, data)


def _parse_channel(body: memoryview) -> Channel:
    cid, sid = struct.unpack_from("<HH", body, 0)
    topic, pos = _string(body, 4)
    encoding, pos = _string(body, pos)
    (n,) = _U32.unpack_from(body, pos)
    pos += 4
    end = pos + n
    metadata = {}
    while pos < end:
        key, pos = _string(body, pos)
        value, pos = _string(body, pos)
        metadata[key] = value
    return Channel(cid, sid, topic, encoding, metadata)


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    if compression == "":
        return data
    if compression == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
        except ImportError:
            try:
                from backports import zstd  # type: ignore[import-not-found,no-redef]
            except ImportError:
                raise BagError("MCAP chunk is zstd-compressed, but no zstd module is installed (backports.zstd)") from None
        return zstd.decompress(data)
    if compression == "lz4":
        try:
            import lz4.frame
        except ImportError:
            raise BagError("MCAP chunk is lz4-compressed, but the lz4 module is not installed") from None
        return lz4.frame.decompress(data)
    raise BagError(f"unsupported MCAP chunk compression {compression!r}; expected '', 'zstd' or 'lz4'")


def _chunk_records(body: memoryview) -> tuple[tuple[int, int, int, int, str, int], bytes]:
    start, end, usize, crc = _CHUNK_HEAD.unpack_from(body, 0)
    compression, pos = _string(body, _CHUNK_HEAD.size)
    data, _ = _bytes(body, pos, _U64)
    records = _decompress(data, compression, usize)
    if len(records) != usize:
        raise ValueError(f"chunk holds {len(records)} bytes after decompression, its header says {usize}")
    if crc and zlib.crc32(records) != crc:
        raise ValueError("chunk CRC mismatch")
    return (start, end, usize, crc, compression, len(data)), records


def _inner(records: bytes) -> Iterator[tuple[int, int, memoryview]]:
    """(opcode, offset in chunk, body) of the records inside a chunk."""
    buf = memoryview(records)
    pos = 0
    while pos < len(buf):
        if pos + 9 > len(buf):
            raise ValueError("truncated record inside a chunk")
        op = buf[pos]
        (n,) = _U64.unpack_from(buf, pos + 1)
        if pos + 9 + n > len(buf):
            raise ValueError("record inside a chunk runs past the chunk")
        yield op, pos, buf[pos + 9:pos + 9 + n]
        pos += 9 + n


def _open_checked(path: Path):
    if not path.is_file():
        raise BagError(f"MCAP file not found: {path}")
    f = open(path, "rb")
    head = f.read(8)
    if head != MAGIC:
        f.close()
        raise BagError(f"{path} is not an MCAP file: it starts with 0x{head.hex() or '(empty)'}, expected 0x{MAGIC.hex()}")
    return f


def _has_footer(f, size: int) -> bool:
    if size < 8 + 9 + 29 + 8:
        return False
    f.seek(size - 37)
    tail = f.read(37)
    return tail[-8:] == MAGIC and tail[0] == OP_FOOTER and _U64.unpack_from(tail, 1)[0] == 20


def _walk(f, size: int, scan: Scan) -> Iterator[tuple[int, int, memoryview]]:
    """Complete top-level records of the data section: (opcode, offset, body). Updates scan.data_end and
    scan.problem; stops at the data end, the summary, or the first incomplete or damaged record."""
    pos = 8
    f.seek(pos)
    while True:
        head = f.read(9)
        if len(head) == 0:
            return
        if len(head) < 9:
            scan.problem = f"incomplete record header at byte {pos}"
            return
        op = head[0]
        (n,) = _U64.unpack_from(head, 1)
        if op not in _KNOWN_OPS:
            scan.problem = f"unknown record opcode 0x{op:02x} at byte {pos} (damaged data)"
            return
        if op not in _DATA_OPS:
            return  # data end, summary or footer: the data section ends here
        if pos + 9 + n > size:
            scan.problem = f"record 0x{op:02x} at byte {pos} needs {n} bytes, only {size - pos - 9} remain (cut short)"
            return
        body = memoryview(f.read(n))
        yield op, pos, body
        pos += 9 + n
        scan.data_end = pos


def _parse_chunk(body: memoryview, offset: int) -> tuple[ChunkInfo, list[Schema], list[Channel], list[tuple[int, int, memoryview]]]:
    """A chunk record -> its info, schemas, channels and messages [(channel id, log time, data)].
    Raises ValueError if any part of it is damaged (then none of it is used)."""
    (cstart, cend, usize, _, compression, csize), records = _chunk_records(body)
    chunk = ChunkInfo(offset, 9 + len(body), cstart, cend, compression, csize, usize)
    schemas, channels, msgs = [], [], []
    entries: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for op, pos, inner in _inner(records):
        if op == OP_SCHEMA:
            schemas.append(_parse_schema(inner))
        elif op == OP_CHANNEL:
            channels.append(_parse_channel(inner))
        elif op == OP_MESSAGE:
            cid, _, log_time, _ = _MSG_HEAD.unpack_from(inner, 0)
            entries[cid].append((log_time, pos))
            msgs.append((cid, log_time, inner[_MSG_HEAD.size:]))
    chunk.entries = dict(entries)
    return chunk, schemas, channels, msgs


def _scan(path: Path, scan_only: bool) -> Iterator[tuple[Scan, int, int, memoryview]]:
    """Walk the file; yield (scan, channel id, log time, data) per complete message (unless scan_only),
    then once (scan, -1, 0, b"") when the walk is over and `scan` is final."""
    size = path.stat().st_size if path.exists() else 0
    with _open_checked(path) as f:
        scan = Scan(path=path, file_size=size, complete=_has_footer(f, size), data_end=8)
        counts: dict[int, int] = defaultdict(int)
        start, end = 2**63 - 1, 0
        last_chunk: ChunkInfo | None = None
        for op, offset, body in _walk(f, size, scan):
            try:
                msgs: list[tuple[int, int, memoryview]] = []
                if op == OP_HEADER:
                    profile, _ = _string(body, 0)
                    if profile not in ("ros2", ""):
                        raise BagError(f"{path}: MCAP profile is {profile!r}, expected 'ros2'")
                elif op == OP_SCHEMA:
                    sch = _parse_schema(body)
                    scan.schemas[sch.id] = sch
                elif op == OP_CHANNEL:
                    ch = _parse_channel(body)
                    scan.channels[ch.id] = ch
                elif op == OP_MESSAGE:
                    cid, _, log_time, _ = _MSG_HEAD.unpack_from(body, 0)
                    msgs.append((cid, log_time, body[_MSG_HEAD.size:]))
                elif op == OP_CHUNK:
                    chunk, schemas, channels, msgs = _parse_chunk(body, offset)
                    scan.schemas.update({x.id: x for x in schemas})
                    scan.channels.update({x.id: x for x in channels})
                    scan.chunks.append(chunk)
                elif op == OP_MESSAGE_INDEX and last_chunk is not None:
                    (cid,) = _U16.unpack_from(body, 0)
                    last_chunk.index_offsets[cid] = offset
                    last_chunk.index_length = offset + 9 + len(body) - (last_chunk.offset + last_chunk.length)
            except (ValueError, struct.error, UnicodeDecodeError) as exc:
                # a damaged record: everything before it stays readable
                scan.problem = f"damaged record 0x{op:02x} at byte {offset}: {exc}"
                scan.data_end = offset
                break
            if op == OP_CHUNK:
                last_chunk = scan.chunks[-1]
            elif op != OP_MESSAGE_INDEX:
                last_chunk = None
            for cid, log_time, data in msgs:
                counts[cid] += 1
                start, end = min(start, log_time), max(end, log_time)
                if not scan_only:
                    yield scan, cid, log_time, data
        if not scan.complete and last_chunk is not None and set(last_chunk.index_offsets) != set(last_chunk.entries):
            # the final chunk's message indexes were cut off (or only partly written): drop them, they
            # are rebuilt by repair_mcap from the chunk itself
            scan.data_end = last_chunk.offset + last_chunk.length
            last_chunk.index_offsets, last_chunk.index_length = {}, 0
        scan.counts = dict(counts)
        scan.start_time, scan.end_time = (start, end) if counts else (0, 0)
    if not scan.complete and not scan.channels:
        raise BagError(f"{path}: no complete channel records in the file ({scan.problem or 'empty data section'}); nothing can be recovered")
    yield scan, -1, 0, memoryview(b"")


def scan_mcap(path: str | Path) -> Scan:
    """Walk the data section of an MCAP file (complete or not) and index what is readable."""
    *_, (scan, _, _, _) = _scan(Path(path), scan_only=True)
    return scan


def iter_messages(path: str | Path) -> Iterator[tuple[Channel, Schema | None, int, bytes]]:
    """Every complete message of an MCAP file, in file order: (channel, schema, log time ns, data).
    Reads one chunk at a time; works on files without summary or footer."""
    path = Path(path)
    for scan, cid, log_time, data in _scan(path, scan_only=False):
        if cid < 0:
            return
        channel = scan.channels.get(cid)
        if channel is None:
            raise BagError(f"{path}: message on channel {cid}, which has no channel record before it")
        yield channel, scan.schemas.get(channel.schema_id), log_time, bytes(data)


def is_complete(path: str | Path) -> bool:
    """True if the file is an MCAP file with a footer (it was closed)."""
    path = Path(path)
    with _open_checked(path) as f:
        return _has_footer(f, path.stat().st_size)


def _record(op: int, body: bytes) -> bytes:
    return bytes([op]) + _U64.pack(len(body)) + body


def _str(s: str) -> bytes:
    b = s.encode()
    return _U32.pack(len(b)) + b


def _schema_record(s: Schema) -> bytes:
    return _record(OP_SCHEMA, _U16.pack(s.id) + _str(s.name) + _str(s.encoding) + _U32.pack(len(s.data)) + s.data)


def _channel_record(c: Channel) -> bytes:
    meta = b"".join(_str(k) + _str(v) for k, v in c.metadata.items())
    return _record(OP_CHANNEL, struct.pack("<HH", c.id, c.schema_id) + _str(c.topic) + _str(c.message_encoding) + _U32.pack(len(meta)) + meta)


def _unique(path: Path) -> Path:
    if not path.exists():
        return path
    n = 1
    while path.with_name(f"{path.name}.{n}").exists():
        n += 1
    return path.with_name(f"{path.name}.{n}")


def repair_mcap(path: str | Path) -> RepairResult:
    """Make an unfinished MCAP file complete and indexed, in place. Bytes after the last complete record
    are moved to `<file>.tail` (nothing is deleted). A file that already has a footer is left as it is."""
    path = Path(path)
    scan = scan_mcap(path)
    if scan.complete:
        return RepairResult(path, False, scan.message_count, len(scan.chunks), 0, None, "")
    tail_path = None
    with open(path, "r+b") as f:
        if scan.tail_bytes:
            tail_path = _unique(path.with_name(path.name + ".tail"))
            f.seek(scan.data_end)
            with open(tail_path, "wb") as t:
                while block := f.read(1 << 20):
                    t.write(block)
                t.flush()
                os.fsync(t.fileno())
        f.truncate(scan.data_end)
        f.seek(scan.data_end)
        out = io.BytesIO()
        pos = scan.data_end
        # message indexes of a final chunk that was written without them
        for chunk in scan.chunks:
            if chunk.index_offsets or not chunk.entries or chunk.offset + chunk.length != scan.data_end:
                continue  # only the final chunk can lack its indexes (see scan_mcap)
            for cid, entries in sorted(chunk.entries.items()):
                chunk.index_offsets[cid] = pos + out.tell()
                body = _U16.pack(cid) + _U32.pack(16 * len(entries)) + b"".join(struct.pack("<QQ", t, o) for t, o in entries)
                out.write(_record(OP_MESSAGE_INDEX, body))
            chunk.index_length = out.tell()
        out.write(_record(OP_DATA_END, _U32.pack(0)))
        summary_start = pos + out.tell()
        groups = []
        group_start = out.tell()
        for s in sorted(scan.schemas.values(), key=lambda s: s.id):
            out.write(_schema_record(s))
        groups.append((OP_SCHEMA, group_start, out.tell()))
        group_start = out.tell()
        for c in sorted(scan.channels.values(), key=lambda c: c.id):
            out.write(_channel_record(c))
        groups.append((OP_CHANNEL, group_start, out.tell()))
        group_start = out.tell()
        for chunk in scan.chunks:
            offsets = b"".join(struct.pack("<HQ", cid, off) for cid, off in sorted(chunk.index_offsets.items()))
            body = (
                struct.pack("<QQQQ", chunk.start_time, chunk.end_time, chunk.offset, chunk.length)
                + _U32.pack(len(offsets)) + offsets + _U64.pack(chunk.index_length)
                + _str(chunk.compression) + _U64.pack(chunk.compressed_size) + _U64.pack(chunk.uncompressed_size)
            )
            out.write(_record(OP_CHUNK_INDEX, body))
        groups.append((OP_CHUNK_INDEX, group_start, out.tell()))
        group_start = out.tell()
        counts = b"".join(struct.pack("<HQ", cid, n) for cid, n in sorted(scan.counts.items()))
        stats = (
            _U64.pack(scan.message_count) + _U16.pack(len(scan.schemas)) + _U32.pack(len(scan.channels))
            + _U32.pack(0) + _U32.pack(0) + _U32.pack(len(scan.chunks))
            + _U64.pack(scan.start_time) + _U64.pack(scan.end_time) + _U32.pack(len(counts)) + counts
        )
        out.write(_record(OP_STATISTICS, stats))
        groups.append((OP_STATISTICS, group_start, out.tell()))
        summary_offset_start = pos + out.tell()
        for op, g0, g1 in groups:
            if g1 > g0:
                out.write(_record(OP_SUMMARY_OFFSET, bytes([op]) + _U64.pack(pos + g0) + _U64.pack(g1 - g0)))
        out.write(_record(OP_FOOTER, _U64.pack(summary_start) + _U64.pack(summary_offset_start) + _U32.pack(0)))
        out.write(MAGIC)
        f.write(out.getvalue())
        f.flush()
        os.fsync(f.fileno())
    return RepairResult(path, True, scan.message_count, len(scan.chunks), scan.tail_bytes, tail_path, scan.problem)
