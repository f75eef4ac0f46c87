"""ROS-free parts of the twin, explorer and teleop nodes: the ground-truth message and the teleop script."""

import math

import pytest

from redraw_sim import ground_truth
from redraw_sim.teleop_node import parse_script, script_command


def test_ground_truth_round_trip_and_type_check():
    values = {f: float(i) for i, f in enumerate(ground_truth.FIELDS)}
    values["lap_time_s"] = math.nan
    values["stamp_s"] = 12.25
    values["out_of_lane"] = 1.0
    msg = ground_truth.to_msg(values)
    assert msg.header.stamp.sec == 12 and msg.header.stamp.nanosec == 250_000_000 and msg.out_of_lane is True
    back = ground_truth.from_msg(msg)
    assert math.isnan(back.pop("lap_time_s")) and back == {k: v for k, v in values.items() if k != "lap_time_s"}
    with pytest.raises(ground_truth.GroundTruthError, match="expected a redraw_msgs/GroundTruth, found WheelsCmdStamped"):
        from redraw_msgs.msg import WheelsCmdStamped

        ground_truth.from_msg(WheelsCmdStamped())
    with pytest.raises(ground_truth.GroundTruthError, match=r"needs fields \['reward'\]"):
        ground_truth.to_msg({k: v for k, v in values.items() if k != "reward"})


def test_teleop_script():
    script = parse_script("2.0:0.5,0.0; 1.0 : 0.3,-0.5;")
    assert script == [(2.0, 0.5, 0.0), (1.0, 0.3, -0.5)]
    assert script_command(script, 0.5, loop=False) == (0.5, 0.0)
    assert script_command(script, 2.5, loop=False) == (0.3, -0.5)
    assert script_command(script, 3.5, loop=False) == (0.0, 0.0)
    assert script_command(script, 3.5, loop=True) == (0.5, 0.0)
    for bad, message in (("", "script is empty"), ("2:0.5", "is not 'seconds:forward,turn'"), ("0:0,0", "need seconds > 0"),
                         ("1:2,0", "forward, turn in"), ("1:nan,0", "need seconds")):
        with pytest.raises(ValueError, match=message):
            parse_script(bad)
