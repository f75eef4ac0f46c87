"""The digital twin's ground truth on `redraw_sim/ground_truth` (twin only: evaluation and the explorer, never
calibration data), as redraw_msgs/GroundTruth (field units and conventions in its .msg file).

Code in redraw_sim works with plain dicts keyed by FIELDS (SI units, the suffix names the unit):
`to_msg(dict) -> GroundTruth` and `from_msg(GroundTruth) -> dict`. No ROS import at module level.
"""

from __future__ import annotations

import math
from typing import Any

from redraw_common.errors import RedrawInputError

FIELDS = ("stamp_s", "x_m", "y_m", "yaw_rad", "lane_offset_m", "lane_heading_rad", "s_m", "distance_m", "laps",
          "lap_time_s", "speed_mps", "yaw_rate_rps", "reward", "episode", "out_of_lane")
# dict field -> message field
_MSG_FIELD = {"x_m": "x", "y_m": "y", "yaw_rad": "yaw", "lane_offset_m": "lane_offset", "lane_heading_rad": "lane_heading",
              "s_m": "s", "distance_m": "distance", "laps": "laps", "lap_time_s": "lap_time", "speed_mps": "speed",
              "yaw_rate_rps": "yaw_rate", "reward": "reward", "episode": "episode", "out_of_lane": "out_of_lane"}
_INTS = {"laps", "episode"}


class GroundTruthError(RedrawInputError):
    """A ground-truth message does not have the expected fields."""


def to_msg(values: dict[str, float]) -> Any:
    from redraw_msgs.msg import GroundTruth

    missing = [f for f in FIELDS if f not in values]
    if missing:
        raise GroundTruthError(f"ground truth needs fields {missing}")
    msg = GroundTruth()
    stamp = float(values["stamp_s"])
    msg.header.stamp.sec = int(math.floor(stamp))
    msg.header.stamp.nanosec = int(round((stamp - math.floor(stamp)) * 1e9)) % 1_000_000_000
    for key, name in _MSG_FIELD.items():
        value = values[key]
        if key in _INTS:
            value = int(value)
        elif key == "out_of_lane":
            value = bool(value)
        else:
            value = float(value)
        setattr(msg, name, value)
    return msg


def from_msg(msg: Any) -> dict[str, float]:
    if not all(hasattr(msg, name) for name in _MSG_FIELD.values()) or not hasattr(msg, "header"):
        raise GroundTruthError(f"expected a redraw_msgs/GroundTruth, found {type(msg).__name__}")
    out = {"stamp_s": msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9}
    out.update({key: float(getattr(msg, name)) for key, name in _MSG_FIELD.items()})
    return out


def map_pose(sim: Any) -> tuple[float, float, float]:
    """(x, y, yaw) in the map frame of a gym_duckietown simulator's robot (its internal frame has z down the map)."""
    x, _, z = sim.cur_pos
    return float(x), float(sim.grid_height * sim.road_tile_size - z), float(math.atan2(math.sin(sim.cur_angle), math.cos(sim.cur_angle)))
