import struct

import pytest

from redraw_common.errors import BagError
from redraw_common.kinematics import KinematicsConfig
from redraw_common.preprocessing import PreprocessConfig
from redraw_common.recording import PartEntry, RecordingInfo, Sidecar, cdr_header_stamp


def test_info_round_trips_through_custom_data_and_sidecar(tmp_path):
    info = RecordingInfo(robot="db7", kinematics=KinematicsConfig(trim=0.05), preprocessing=PreprocessConfig(mode="rgb", height=32, width=32),
                         control_hz=15.0, topics={"camera": "/db7/camera_node/image/compressed"}, recorder="r 1", started="t")
    custom = info.to_custom_data()
    assert all(isinstance(v, str) for v in custom.values()) and custom["redraw.robot"] == "db7"
    assert RecordingInfo.from_custom_data(custom) == info
    side = Sidecar(info=info, parts=[PartEntry("x_0000", messages=3)], type_hashes={"a/msg/B": "RIHS01_00"})
    side.write(tmp_path)
    back = Sidecar.read(tmp_path)
    assert back.info == info and back.parts[0].messages == 3 and back.type_hashes == {"a/msg/B": "RIHS01_00"}
    assert (tmp_path / "recording.json").stat().st_mode & 0o777 == 0o644


def test_bad_info_gets_clear_errors(tmp_path):
    with pytest.raises(BagError, match="custom_data holds no 'redraw.\\*' keys"):
        RecordingInfo.from_custom_data({"other": "1"})
    custom = RecordingInfo(robot="db").to_custom_data()
    custom["redraw.kinematics"] = '{"gain": -1}'
    with pytest.raises(BagError, match="kinematics gain must be > 0"):
        RecordingInfo.from_custom_data(custom)
    with pytest.raises(BagError, match="robot name must be a non-empty string"):
        RecordingInfo(robot="/")
    with pytest.raises(BagError, match="recording sidecar not found"):
        Sidecar.read(tmp_path)
    (tmp_path / "recording.json").write_text("{")
    with pytest.raises(BagError, match="not valid JSON"):
        Sidecar.read(tmp_path)


def test_cdr_header_stamp():
    raw = b"\x00\x01\x00\x00" + struct.pack("<iI", 12, 345) + b"\x00" * 8
    assert cdr_header_stamp(raw) == 12_000_000_345
    assert cdr_header_stamp(b"\x00\x00\x00\x00" + struct.pack(">iI", 1, 2) + b"x") == 1_000_000_002
    assert cdr_header_stamp(b"\x00\x01") is None and cdr_header_stamp(b"\x07\x07" + b"\x00" * 20) is None
