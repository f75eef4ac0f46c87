import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from redraw_common.errors import ImageConversionError
from redraw_common.imageconv import compressed_to_rgb, image_to_rgb, rgb_to_compressed, rgb_to_image


def test_compressed_round_trip(road_frame):
    msg = rgb_to_compressed(road_frame, frame_id="cam", quality=95)
    assert isinstance(msg, CompressedImage) and msg.format == "jpeg" and msg.header.frame_id == "cam"
    back = compressed_to_rgb(msg)
    assert back.shape == road_frame.shape
    assert np.abs(back.astype(int) - road_frame.astype(int)).mean() < 4


def test_raw_image_round_trip_and_encodings(road_frame):
    msg = rgb_to_image(road_frame)
    assert isinstance(msg, Image) and msg.encoding == "rgb8" and msg.step == 640 * 3
    assert np.array_equal(image_to_rgb(msg), road_frame)
    bgr = Image(height=2, width=3, encoding="bgr8", step=9, data=bytes(range(18)))
    out = image_to_rgb(bgr)
    assert out[0, 0].tolist() == [2, 1, 0]
    mono = Image(height=2, width=2, encoding="mono8", step=4, data=bytes([0, 50, 9, 9, 100, 150, 9, 9]))  # 2 bytes of padding per row
    assert image_to_rgb(mono)[1, 1].tolist() == [150, 150, 150]


def test_bad_messages_get_clear_errors():
    with pytest.raises(ImageConversionError, match="expected a CompressedImage in jpeg or png format, found format 'h264'"):
        compressed_to_rgb(CompressedImage(format="h264", data=b"\x00"))
    with pytest.raises(ImageConversionError, match="could not decode image"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b"\xff\xd8garbage"))
    with pytest.raises(ImageConversionError, match="unsupported image encoding '16UC1'"):
        image_to_rgb(Image(height=1, width=1, encoding="16UC1", step=2, data=b"\x00\x00"))
    with pytest.raises(ImageConversionError, match="inconsistent Image: 2x2 rgb8 with step 6 needs 12 bytes"):
        image_to_rgb(Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(10)))
    with pytest.raises(ImageConversionError, match="uint8"):
        rgb_to_image(np.zeros((8, 8, 3), np.float32))
