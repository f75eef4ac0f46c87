"""The digital twin's ground truth on `redraw_sim/ground_truth` (twin only: evaluation and the explorer, never
calibration data), as a std_msgs/Float64MultiArray whose one layout dimension is labelled with the field
names below (comma-separated), so a reader can check it gets the fields it expects.

    stamp_s         twin time of the state (simulated seconds; = the /clock time when the twin publishes one)
    x_m, y_m        robot position in the map frame (x right, y up, origin at the map's bottom-left corner)
    yaw_rad         robot heading in the map frame (0 = +x, counter-clockwise positive)
    lane_offset_m   signed distance from the lane centre, + = left (towards the centre line)
    lane_heading_rad heading relative to the lane direction, + = pointing left
    s_m             arc length along the lane loop, [0, loop length)
    distance_m      distance travelled along the lane this episode (negative = backwards)
    laps            laps completed this episode
    lap_time_s      duration of the last completed lap (NaN before the first)
    speed_mps       forward speed of the motor model
    yaw_rate_rps    yaw rate of the motor model
    reward          the project's dense lane reward of this simulator step (duckietown_sim.RewardConfig)
    episode         episode index since the twin started (0-based)
    out_of_lane     1 on the step the robot left the lane (the episode ends there), else 0

No ROS import at module level: `to_msg` builds the message, `from_msg` checks the labels and parses.
"""

from __future__ import annotations

import math
from typing import Any

FIELDS = ("stamp_s", "x_m", "y_m", "yaw_rad", "lane_offset_m", "lane_heading_rad", "s_m", "distance_m", "laps",
          "lap_time_s", "speed_mps", "yaw_rate_rps", "reward", "episode", "out_of_lane")
LABEL = ",".join(FIELDS)


class GroundTruthError(ValueError):
    """A ground-truth message does not have the expected fields."""


def to_msg(values: dict[str, float]) -> Any:
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension

    missing = [f for f in FIELDS if f not in values]
    if missing:
        raise GroundTruthError(f"ground truth needs fields {missing}")
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=LABEL, size=len(FIELDS), stride=len(FIELDS))]
    msg.data = [float(values[f]) for f in FIELDS]
    return msg


def from_msg(msg: Any) -> dict[str, float]:
    dims = list(msg.layout.dim)
    label = dims[0].label if dims else ""
    if label != LABEL or len(msg.data) != len(FIELDS):
        raise GroundTruthError(f"expected a redraw_sim ground truth with fields '{LABEL}' ({len(FIELDS)} values), "
                               f"found label '{label}' with {len(msg.data)} values")
    return dict(zip(FIELDS, (float(v) for v in msg.data)))


def map_pose(sim: Any) -> tuple[float, float, float]:
    """(x, y, yaw) in the map frame of a gym_duckietown simulator's robot (its internal frame has z down the map)."""
    x, _, z = sim.cur_pos
    return float(x), float(sim.grid_height * sim.road_tile_size - z), float(math.atan2(math.sin(sim.cur_angle), math.cos(sim.cur_angle)))
