"""Camera frame -> model observation: the one preprocessing function of redraw.

The simulators, the bag -> dataset converter and the robot's policy node all call `preprocess` with the
settings recorded in a model's manifest, so training and deployment cannot disagree silently.

Modes:
    lane_mask  drop the top `horizon_crop` of the frame (sky, background), threshold yellow and white lane
               markings in HSV, and resize each mask to the model size with area averaging: a uint8
               (H, W, 2) array, channel 0 = yellow, channel 1 = white, 255 = fully covered by marking.
    rgb        drop the top `horizon_crop` and resize: a uint8 (H, W, 3) RGB array.

Deterministic: same input bytes, same output. A frame and its JPEG round trip (quality >= 90) give
observations within `JPEG_TOLERANCE` (see its docstring for what is measured). JPEG bytes are decoded at the
largest DCT reduction that still covers the model's size (`decode_for`; the converter and the policy node both go
through it), within `REDUCED_DECODE_TOLERANCE` of a full-size decode.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from .errors import PreprocessError

MODES = ("lane_mask", "rgb")

#: Stated tolerance between preprocess(frame) and preprocess(jpeg(frame, quality=90)), both uint8:
#: the mean absolute difference over all pixels and channels, in uint8 levels (0..255).
#: Measured on rendered Duckietown frames and on the synthetic road in the tests.
JPEG_TOLERANCE = 8.0


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of `preprocess`. Serialised into bags and model manifests with `to_dict`."""

    mode: str = "lane_mask"
    height: int = 64
    width: int = 64
    horizon_crop: float = 1.0 / 3.0   # fraction of rows removed from the top before resizing
    # OpenCV HSV ranges (H in [0, 180), S and V in [0, 255]), inclusive. Yellow stops at H 32: the
    # Duckietown simulator's grass starts at H 33 (its yellow line is H 25-30, S > 80, V > 150).
    yellow_low: tuple[int, int, int] = (15, 80, 100)
    yellow_high: tuple[int, int, int] = (32, 255, 255)
    white_low: tuple[int, int, int] = (0, 0, 150)
    white_high: tuple[int, int, int] = (180, 60, 255)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PreprocessError(f"preprocessing mode must be one of {MODES}, found {self.mode!r}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 8 <= value <= 1024:
                raise PreprocessError(f"preprocessing {name} must be an int in [8, 1024], found {value!r}")
        if not 0.0 <= float(self.horizon_crop) < 0.9:
            raise PreprocessError(f"horizon_crop must be in [0, 0.9), found {self.horizon_crop!r}")
        for name in ("yellow_low", "yellow_high", "white_low", "white_high"):
            value = tuple(getattr(self, name))
            if len(value) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in value):
                raise PreprocessError(f"{name} must be three ints in [0, 255], found {value!r}")
            object.__setattr__(self, name, tuple(int(v) for v in value))

    @property
    def channels(self) -> int:
        return 2 if self.mode == "lane_mask" else 3

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the observation `preprocess` returns: (height, width, channels)."""
        return (self.height, self.width, self.channels)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        return d

    @classmethod
    def for_shape(cls, shape: tuple[int, int, int]) -> PreprocessConfig:
        """What a model of observations `shape` (H, W, C) takes when nothing says otherwise: lane masks for 2
        channels, else RGB, at its size."""
        h, w, c = shape
        return cls(mode="lane_mask" if c == 2 else "rgb", height=int(h), width=int(w))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        if not isinstance(d, dict):
            raise PreprocessError(f"preprocessing settings must be a mapping, found {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PreprocessError(f"unknown preprocessing settings {unknown}; expected a subset of {sorted(known)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
# JPEG start-of-frame markers (they carry the image size): C0-CF except DHT (C4), JPG (C8) and DAC (CC)
_SOF = {m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)}

#: Stated tolerance between preprocess(jpeg) with the reduced decode it uses and with a full-size decode, both uint8:
#: the mean absolute difference in uint8 levels. Measured on 640x480 twin frames (JPEG q85, 40 frames): 1.0 (max
#: 1.3) for 64x64 lane masks, 1.5 (max 2.1) for 64x64 RGB; the 160x120 frames the twin renders for training are
#: nearer the reduced decode (0.6) than the full one (1.05). Tested on the synthetic road.
REDUCED_DECODE_TOLERANCE = 3.0


def jpeg_size(data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(height, width) from a JPEG's start-of-frame header, without decoding; None for anything else (PNG,
    truncated or corrupt headers: the decoder then says what is wrong)."""
    b = bytes(memoryview(data)[:65536])   # the headers come first; a frame's SOF is in its first few hundred bytes
    if b[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:          # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):   # markers without a length
            i += 2
            continue
        length = int.from_bytes(b[i + 2:i + 4], "big")
        if marker in _SOF:
            if i + 9 > len(b):
                return None
            height, width = int.from_bytes(b[i + 5:i + 7], "big"), int.from_bytes(b[i + 7:i + 9], "big")
            return (height, width) if height and width else None
        if marker == 0xDA or length < 2:          # scan data before any frame header: not a JPEG we can size
            return None
        i += 2 + length
    return None


def jpeg_reduction(size: tuple[int, int] | None, cfg: PreprocessConfig) -> int:
    """The largest DCT downscale (1, 2, 4 or 8) at which a frame of `size` (height, width), after the horizon crop,
    still has at least the model's rows and columns: the final INTER_AREA resize then still only shrinks."""
    if size is None:
        return 1
    height, width = size
    for r in (8, 4, 2):
        rows = height // r
        if rows - int(round(rows * cfg.horizon_crop)) >= cfg.height and width // r >= cfg.width:
            return r
    return 1


def decode_jpeg(data: bytes | bytearray | memoryview | np.ndarray, reduce: int = 1) -> np.ndarray:
    """JPEG (or PNG) bytes -> uint8 RGB array (H, W, 3), decoded at 1/`reduce` of its size (JPEG's DCT scaling,
    1, 2, 4 or 8; ignored for PNG). Raises PreprocessError if undecodable."""
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    if buf.size == 0:
        raise PreprocessError("expected JPEG bytes, found an empty buffer")
    bgr = cv2.imdecode(buf, _REDUCED[reduce])
    if bgr is None:
        head = bytes(buf[:4]).hex()
        raise PreprocessError(f"could not decode image: {buf.size} bytes starting with 0x{head} (expected JPEG, 0xffd8...)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_for(data: bytes | bytearray | memoryview, cfg: PreprocessConfig) -> tuple[np.ndarray, tuple[int, int] | None]:
    """A camera JPEG decoded for `preprocess` with `cfg`: at the largest reduction that still covers the model's
    size (a 640x480 Duckiebot frame for a 64x64 model: 160x120, 4x fewer decode and 16x fewer colour-threshold
    pixels). Returns (rgb, the JPEG's full (height, width) or None if its header gave none)."""
    size = jpeg_size(data)
    rgb = decode_jpeg(data, jpeg_reduction(size, cfg))
    return rgb, size


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """uint8 RGB array (H, W, 3) -> JPEG bytes."""
    check_rgb_frame(rgb)
    if not 1 <= int(quality) <= 100:
        raise PreprocessError(f"JPEG quality must be in [1, 100], found {quality}")
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise PreprocessError(f"OpenCV failed to encode a {rgb.shape} frame as JPEG")
    return buf.tobytes()


def check_rgb_frame(frame: Any) -> np.ndarray:
    """Validate a camera frame: uint8, (H, W, 3), at least 8x8. Returns it unchanged."""
    if not isinstance(frame, np.ndarray):
        raise PreprocessError(f"expected a numpy uint8 RGB frame (H, W, 3), found {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise PreprocessError(f"expected a uint8 RGB frame, found dtype {frame.dtype} with shape {frame.shape}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 8 or frame.shape[1] < 8:
        raise PreprocessError(f"expected an RGB frame of shape (H>=8, W>=8, 3), found {frame.shape}")
    return frame


def lane_masks(rgb: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution binary masks (uint8 0/255) of yellow and white markings of an RGB frame."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    yellow = cv2.inRange(hsv, np.array(cfg.yellow_low, np.uint8), np.array(cfg.yellow_high, np.uint8))
    white = cv2.inRange(hsv, np.array(cfg.white_low, np.uint8), np.array(cfg.white_high, np.uint8))
    return yellow, white


def preprocess(frame: np.ndarray | bytes | bytearray | memoryview, cfg: PreprocessConfig | None = None) -> np.ndarray:
    """Camera frame (uint8 RGB array or JPEG bytes) -> model observation of shape `cfg.shape`, uint8."""
    cfg = cfg or PreprocessConfig()
    rgb = decode_for(frame, cfg)[0] if isinstance(frame, (bytes, bytearray, memoryview)) else check_rgb_frame(frame)
    top = int(round(rgb.shape[0] * cfg.horizon_crop))
    rgb = rgb[top:]
    size = (cfg.width, cfg.height)
    if cfg.mode == "rgb":
        out = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    else:
        yellow, white = lane_masks(rgb, cfg)
        out = np.stack(
            [cv2.resize(yellow, size, interpolation=cv2.INTER_AREA), cv2.resize(white, size, interpolation=cv2.INTER_AREA)],
            axis=-1,
        )
    return np.ascontiguousarray(out, dtype=np.uint8)
