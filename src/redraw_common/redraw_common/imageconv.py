"""sensor_msgs Image / CompressedImage <-> numpy, with numpy + OpenCV only (no cv_bridge).

Message classes are imported lazily, so this module imports without ROS; the converters accept any object
with the message's fields (the ROS message, or a rosbags-deserialised one).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .errors import ImageConversionError, PreprocessError
from .preprocessing import check_rgb_frame, decode_jpeg, encode_jpeg

# encoding -> (channels, OpenCV conversion to RGB or None)
_ENCODINGS = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """CompressedImage (format 'jpeg'/'png', possibly 'rgb8; jpeg compressed bgr8') -> uint8 RGB (H, W, 3)."""
    fmt = str(getattr(msg, "format", "")).lower()
    if fmt and not any(tag in fmt for tag in ("jpeg", "jpg", "png")):
        raise ImageConversionError(f"expected a CompressedImage in jpeg or png format, found format {fmt!r}")
    try:
        return decode_jpeg(bytes(msg.data))
    except PreprocessError as exc:
        raise ImageConversionError(str(exc)) from None


def rgb_to_compressed(rgb: np.ndarray, *, stamp: Any = None, frame_id: str = "", quality: int = 90) -> Any:
    """uint8 RGB (H, W, 3) -> sensor_msgs/CompressedImage with JPEG data."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.format = "jpeg"
    msg.data = encode_jpeg(rgb, quality)
    return msg


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> uint8 RGB (H, W, 3)."""
    encoding = str(msg.encoding).lower()
    if encoding not in _ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {msg.encoding!r}; expected one of {sorted(_ENCODINGS)}")
    channels, conversion = _ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if height <= 0 or width <= 0 or step < width * channels or data.size != height * step:
        raise ImageConversionError(
            f"inconsistent Image: {height}x{width} {encoding} with step {step} needs {height * step} bytes "
            f"and step >= {width * channels}, found {data.size} bytes"
        )
    img = data.reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if conversion is not None:
        img = cv2.cvtColor(img, conversion)
    return np.ascontiguousarray(img)


def rgb_to_image(rgb: np.ndarray, *, stamp: Any = None, frame_id: str = "") -> Any:
    """uint8 RGB (H, W, 3) -> sensor_msgs/Image with encoding rgb8."""
    from sensor_msgs.msg import Image

    try:
        check_rgb_frame(rgb)
    except PreprocessError as exc:
        raise ImageConversionError(str(exc)) from None
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(rgb.shape[1] * 3)
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg
