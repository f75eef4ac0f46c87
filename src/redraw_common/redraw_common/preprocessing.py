"""Camera frame -> model observation: the one preprocessing function of redraw.

The simulators, the bag -> dataset converter and the robot's policy node all call `preprocess` with the
settings recorded in a model's manifest, so training and deployment cannot disagree silently.

Modes:
    lane_mask  drop the top `horizon_crop` of the frame (sky, background), threshold yellow and white lane
               markings in HSV, and resize each mask to the model size with area averaging: a uint8
               (H, W, 2) array, channel 0 = yellow, channel 1 = white, 255 = fully covered by marking.
    rgb        drop the top `horizon_crop` and resize: a uint8 (H, W, 3) RGB array.

Deterministic: same input bytes, same output. A frame and its JPEG round trip (quality >= 90) give
observations within `JPEG_TOLERANCE` (see its docstring for what is measured).
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


def decode_jpeg(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """JPEG (or PNG) bytes -> uint8 RGB array (H, W, 3). Raises PreprocessError if undecodable."""
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    if buf.size == 0:
        raise PreprocessError("expected JPEG bytes, found an empty buffer")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        head = bytes(buf[:4]).hex()
        raise PreprocessError(f"could not decode image: {buf.size} bytes starting with 0x{head} (expected JPEG, 0xffd8...)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
    rgb = decode_jpeg(frame) if isinstance(frame, (bytes, bytearray, memoryview)) else check_rgb_frame(frame)
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
