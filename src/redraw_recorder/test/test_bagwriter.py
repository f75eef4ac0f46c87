"""RecordingWriter (one bag of split files with their QoS, flush, refusals), repair after a crash, and the node's
counters, without ROS."""

import json

import pytest
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader
from ruamel.yaml import YAML

from redraw_common.errors import BagError
from redraw_common.kinematics import KinematicsConfig
from redraw_common.recording import RecordingInfo, Sidecar
from redraw_recorder.bagwriter import RecordingWriter, redraw_typestore, write_metadata
from redraw_recorder.recorder_node import DropEstimator
from redraw_recorder.repair import main as repair_main
from redraw_recorder.repair import repair_recording

NS = 1_000_000_000
TS = redraw_typestore()
INFO = RecordingInfo(robot="db", kinematics=KinematicsConfig(trim=0.02), topics={"action": "/db/redraw/action"})


def action_bytes(i: int) -> bytes:
    A, H, T = (TS.types[x] for x in ("redraw_msgs/msg/DriveAction", "std_msgs/msg/Header", "builtin_interfaces/msg/Time"))
    return TS.serialize_cdr(A(header=H(stamp=T(sec=i, nanosec=0), frame_id=""), forward=0.5, turn=-0.25, source=2), A.__msgtype__)


LATCHED = Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, QosTime(0, 0), QosTime(0, 0),
              QosLiveliness.AUTOMATIC, QosTime(2**31 - 1, 2**32 - 1), False)


def record(folder, seconds, hz=50, storage="mcap", close=True, **kw):
    w = RecordingWriter(folder, INFO, storage=storage, typestore=TS, offered_qos=lambda topic: [LATCHED], **kw)
    w.open()
    key = w.add_topic("/db/redraw/action", "redraw_msgs/msg/DriveAction")
    for i in range(int(seconds * hz)):
        w.write(key, 5 * NS + i * NS // hz, action_bytes(i))
        if i % hz == hz - 1:
            w.flush()
    if close:
        w.close("test done", {"n": int(seconds * hz)})
    return w


def listed(folder):
    return YAML(typ="safe").load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]["relative_file_paths"]


def read_part(part):
    with Reader(part) as r:
        msgs = [(t, TS.deserialize_cdr(d, c.msgtype)) for c, t, d in r.messages()]
        return r.storage.metadata.custom, msgs, {c.topic: c.digest for c in r.connections}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_split_parts_are_files_of_one_bag_that_carries_the_offered_qos(tmp_path, storage):
    """As rosbag2 splits: one bag folder, one metadata.yaml listing every file; rosbags reads the recording as one
    bag with each topic's offered QoS; every file is a complete bag of its own too."""
    w = record(tmp_path / "rec", seconds=3.5, split_duration=1.0, storage=storage)
    side = Sidecar.read(tmp_path / "rec")
    suffix = ".mcap" if storage == "mcap" else ".db3"
    assert [p.name for p in side.parts] == [f"rec_{i}" for i in range(4)]
    assert all(p.status == "closed" for p in side.parts) and side.state == "finished" and side.stop_reason == "test done"
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == sorted(["metadata.yaml", "recording.json", *(f"rec_{i}{suffix}" for i in range(4))])
    custom, msgs, digests = read_part(tmp_path / "rec")
    assert RecordingInfo.from_custom_data(custom) == INFO and len(msgs) == w.messages == 175
    assert digests["/db/redraw/action"] == side.type_hashes["redraw_msgs/msg/DriveAction"]
    assert [m[1].header.stamp.sec for m in msgs] == list(range(175))
    with Reader(tmp_path / "rec") as r:
        assert r.message_count == 175
    assert listed(tmp_path / "rec") == [f"rec_{i}{suffix}" for i in range(4)]
    with Reader(tmp_path / "rec") as r:
        (conn,) = r.connections
        assert conn.msgcount == 175 and list(conn.ext.offered_qos_profiles) == [LATCHED]
    total = 0
    for i, p in enumerate(side.parts):
        custom, msgs, digests = read_part(tmp_path / "rec" / f"{p.name}{suffix}")
        if storage == "mcap":   # the file embeds its rosbag2 metadata, custom_data with it (rosbags reads it from metadata.yaml only)
            assert f"redraw.part: '{i}'".encode() in (tmp_path / "rec" / f"{p.name}{suffix}").read_bytes()
        assert msgs[0][1].turn == -0.25
        total += len(msgs)
    assert total == 175
    # the writer read each closed file once (its listings cache) and listed what a fresh reading of all four lists
    assert sorted(f.name for f in w._listings) == [f"rec_{i}{suffix}" for i in range(4)]
    cached = (tmp_path / "rec" / "metadata.yaml").read_text()
    files = [tmp_path / "rec" / f"rec_{i}{suffix}" for i in range(4)]
    assert write_metadata(tmp_path / "rec", files, side.info.to_custom_data(), side.type_hashes) == 175
    assert (tmp_path / "rec" / "metadata.yaml").read_text() == cached


def test_parts_split_by_size(tmp_path):
    record(tmp_path / "rec", seconds=4.0, split_size=1000, split_duration=0)
    # 1000 bytes are ~30 messages (0.6 s), but a part lasts at least 1 s
    assert len(Sidecar.read(tmp_path / "rec").parts) == 4


def test_refuses_existing_output_and_a_full_disk(tmp_path):
    (tmp_path / "rec").mkdir()
    with pytest.raises(BagError, match=r"rec exists already; the recorder never overwrites"):
        RecordingWriter(tmp_path / "rec", INFO, typestore=TS).open()
    with pytest.raises(BagError, match=r"disk nearly full: \d+ MiB free .* needs at least \d+ MiB"):
        RecordingWriter(tmp_path / "new", INFO, typestore=TS, min_free=1 << 62).open()
    assert not (tmp_path / "new").exists()


def test_a_crashed_recording_repairs_up_to_the_last_flush(tmp_path, capsys):
    record(tmp_path / "rec", seconds=3.5, split_duration=2.0, close=False)  # never closed: like a SIGKILL
    rec = tmp_path / "rec"
    # the closed part is listed and readable as it is; the open one waits in its hidden folder
    with Reader(rec) as r:
        assert listed(rec) == ["rec_0.mcap"] and r.message_count == 100
    assert (rec / ".rec_1" / ".rec_1.mcap").is_file() and not (rec / "rec_1.mcap").exists()
    assert repair_main([str(rec)]) == 0
    out = capsys.readouterr().out
    assert "rec_0.mcap: complete, nothing to do" in out and "rec_1.mcap: repaired, 50 messages readable" in out, out
    assert not (rec / ".rec_1").exists()
    with Reader(rec) as r:
        assert listed(rec) == ["rec_0.mcap", "rec_1.mcap"] and r.message_count == 150
        assert list(r.connections[0].ext.offered_qos_profiles) == [LATCHED]
    _, msgs, _ = read_part(rec / "rec_1.mcap")
    # part 1 started at 2.0 s; flushed at 3.0 s (messages 100..149); the last 25 were never flushed
    assert len(msgs) == 50 and msgs[0][1].header.stamp.sec == 100
    custom, msgs, digests = read_part(rec)
    assert RecordingInfo.from_custom_data(custom) == INFO and len(msgs) == 150
    assert digests["/db/redraw/action"] == Sidecar.read(tmp_path / "rec").type_hashes["redraw_msgs/msg/DriveAction"]
    assert [p.status for p in Sidecar.read(tmp_path / "rec").parts] == ["closed", "repaired"]
    assert all(r.action == "ok" for r in repair_recording(tmp_path / "rec"))
    assert repair_main([str(tmp_path / "nothing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_drop_estimator():
    d = DropEstimator()
    stamps = [i * 33_333_333 for i in range(60) if i not in (20, 21, 40)]
    for s in stamps:
        d.stamp(s)
    d.stamp(stamps[-5])
    assert d.drops == 3 and d.out_of_order == 1
    # a publisher whose timer fires late now and then (on schedule after): jitter, not drops
    jitter = DropEstimator()
    for i in range(300):
        jitter.stamp(i * 33_333_333 + (22_000_000 if i % 25 == 7 else 0))
    assert jitter.drops == 0


def test_sidecar_is_valid_json_while_recording(tmp_path):
    w = RecordingWriter(tmp_path / "rec", INFO, typestore=TS)
    w.open()
    key = w.add_topic("/db/redraw/action", "redraw_msgs/msg/DriveAction")
    w.write(key, NS, action_bytes(0))
    d = json.loads((tmp_path / "rec" / "recording.json").read_text())
    assert d["state"] == "recording" and d["parts"][0]["status"] == "open" and d["info"]["robot"] == "db"
    with pytest.raises(BagError, match="unknown message type"):
        RecordingWriter(tmp_path / "r2", INFO, typestore=TS).add_topic("/x", "nope_msgs/msg/X")
    w.close()
