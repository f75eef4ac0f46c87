import cv2
import numpy as np
import pytest


@pytest.fixture
def road_frame():
    """A synthetic 480x640 camera frame of a Duckietown road: sky, grey asphalt, a dashed yellow centre
    line and a solid white edge line in perspective, with mild noise (JPEG sees texture, as on a robot)."""
    rng = np.random.default_rng(0)
    img = np.zeros((480, 640, 3), np.uint8)
    img[:160] = (150, 180, 220)       # sky
    img[160:] = (70, 70, 75)          # asphalt
    for y0 in range(170, 480, 60):    # dashed yellow centre line, converging to the horizon
        y1 = min(y0 + 35, 479)
        x0, x1 = int(300 - (y0 - 160) * 0.5), int(300 - (y1 - 160) * 0.5)
        cv2.line(img, (x0, y0), (x1, y1), (240, 200, 20), 12)
    cv2.line(img, (340, 160), (630, 479), (245, 245, 245), 14)   # white edge
    noise = rng.integers(-6, 7, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)
