import numpy as np
import pytest

from redraw_common.errors import PreprocessError
from redraw_common.preprocessing import (
    JPEG_TOLERANCE,
    REDUCED_DECODE_TOLERANCE,
    PreprocessConfig,
    decode_for,
    decode_jpeg,
    encode_jpeg,
    jpeg_reduction,
    jpeg_size,
    preprocess,
)


def test_lane_mask_shape_channels_and_content(road_frame):
    obs = preprocess(road_frame)
    assert obs.shape == (64, 64, 2) and obs.dtype == np.uint8
    yellow, white = obs[..., 0].astype(float), obs[..., 1].astype(float)
    # the yellow line is left of the white one, and both are present
    cols = np.arange(64)
    assert yellow.sum() > 2000 and white.sum() > 2000
    assert (yellow.sum(0) * cols).sum() / yellow.sum() < (white.sum(0) * cols).sum() / white.sum()
    # asphalt is neither
    assert obs[-1, 20:28].max() <= 5


def test_horizon_crop_removes_sky(road_frame):
    sky_white = road_frame.copy()
    sky_white[:150] = 255  # a white sky would be all "white marking" without the crop
    obs = preprocess(sky_white, PreprocessConfig(horizon_crop=1 / 3))
    assert obs[:2, :, 1].mean() < 50
    uncropped = preprocess(sky_white, PreprocessConfig(horizon_crop=0.0))
    assert uncropped[:5, :, 1].mean() > 200


def test_rgb_mode_and_custom_size(road_frame):
    cfg = PreprocessConfig(mode="rgb", height=32, width=48)
    obs = preprocess(road_frame, cfg)
    assert obs.shape == cfg.shape == (32, 48, 3)
    assert obs[-1, 0, 0] < 100  # asphalt is dark


def test_deterministic_and_jpeg_round_trip_within_tolerance(road_frame):
    for cfg in (PreprocessConfig(), PreprocessConfig(mode="rgb")):
        a = preprocess(road_frame, cfg)
        assert np.array_equal(a, preprocess(road_frame, cfg))
        jpeg = encode_jpeg(road_frame, quality=90)
        b = preprocess(jpeg, cfg)
        assert np.array_equal(b, preprocess(jpeg, cfg))
        diff = np.abs(a.astype(float) - b.astype(float)).mean()
        assert diff <= JPEG_TOLERANCE, (cfg.mode, diff)


def test_config_round_trip_and_validation():
    cfg = PreprocessConfig(mode="rgb", height=48, width=48, horizon_crop=0.25)
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(PreprocessError, match="mode must be one of"):
        PreprocessConfig(mode="depth")
    with pytest.raises(PreprocessError, match="height must be an int"):
        PreprocessConfig(height=4)
    with pytest.raises(PreprocessError, match="horizon_crop"):
        PreprocessConfig(horizon_crop=0.95)
    with pytest.raises(PreprocessError, match="unknown preprocessing settings"):
        PreprocessConfig.from_dict({"mode": "rgb", "blur": 3})
    with pytest.raises(PreprocessError, match="yellow_low"):
        PreprocessConfig(yellow_low=(0, 0, 300))


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.zeros((64, 64, 3), np.float32), "expected a uint8 RGB frame, found dtype float32"),
        (np.zeros((64, 64), np.uint8), r"shape \(H>=8, W>=8, 3\), found \(64, 64\)"),
        (np.zeros((64, 64, 4), np.uint8), r"found \(64, 64, 4\)"),
        (np.full((64, 64, 3), np.nan), "found dtype float64"),
        ([[1, 2, 3]], "found list"),
        (b"", "empty buffer"),
        (b"not a jpeg at all", "could not decode image: 17 bytes"),
    ],
)
def test_bad_frames_get_clear_errors(frame, message):
    with pytest.raises(PreprocessError, match=message):
        preprocess(frame)


def test_truncated_jpeg_is_rejected_or_decodes_partially(road_frame):
    jpeg = encode_jpeg(road_frame)
    with pytest.raises(PreprocessError, match="could not decode"):
        decode_jpeg(jpeg[:100])


def test_jpeg_bytes_are_decoded_reduced_where_the_model_size_allows_within_tolerance_of_a_full_decode(road_frame):
    jpeg = encode_jpeg(road_frame, quality=85)
    assert jpeg_size(jpeg) == (480, 640)
    cases = {PreprocessConfig(): 4, PreprocessConfig(mode="rgb"): 4, PreprocessConfig(height=96, width=96): 2,
             PreprocessConfig(height=32, width=32, horizon_crop=0.0): 8, PreprocessConfig(height=200, width=200): 1}
    for cfg, reduction in cases.items():
        assert jpeg_reduction(jpeg_size(jpeg), cfg) == reduction, cfg
        rgb, size = decode_for(jpeg, cfg)
        assert size == (480, 640) and rgb.shape == (480 // reduction, 640 // reduction, 3)
        reduced = preprocess(jpeg, cfg)
        full = preprocess(decode_jpeg(jpeg), cfg)
        assert reduced.shape == full.shape == cfg.shape
        diff = np.abs(reduced.astype(float) - full.astype(float)).mean()
        assert diff <= REDUCED_DECODE_TOLERANCE, (cfg, diff)
    # a frame already near the model's size decodes in full: 160x120 (the twin's camera) for a 64x64 model
    small = encode_jpeg(road_frame[::4, ::4].copy(), quality=90)
    assert jpeg_reduction(jpeg_size(small), PreprocessConfig()) == 1
    assert np.array_equal(preprocess(small), preprocess(decode_jpeg(small)))


def test_jpeg_size_reads_only_a_jpeg_header():
    import cv2

    png = cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))[1].tobytes()
    jpeg = encode_jpeg(np.full((20, 30, 3), 90, np.uint8))
    progressive = cv2.imencode(".jpg", np.full((50, 70, 3), 90, np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert jpeg_size(jpeg) == (20, 30) and jpeg_size(progressive) == (50, 70)
    assert jpeg_size(png) is None and jpeg_size(b"") is None and jpeg_size(b"\xff\xd8\xff") is None
    assert jpeg_size(jpeg[:6]) is None
    # a PNG goes through the full decode (no reduction applies), and a header without a frame is an error of the decoder
    assert preprocess(png, PreprocessConfig(height=8, width=8)).shape == (8, 8, 2)
    with pytest.raises(PreprocessError, match="could not decode"):
        preprocess(b"\xff\xd8\xff\xe0\x00\x10JFIF")
