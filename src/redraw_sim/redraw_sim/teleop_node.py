"""Scripted teleop: plays a fixed sequence of (forward, turn) commands as an operator would, with no keyboard
or joystick (a gamepad on a real robot: redraw_teleop's joy_teleop), published exactly like a teleop: redraw/action (DriveAction, source TELEOP) and the wheel
command through the robot's kinematics on wheels_driver_node/wheels_cmd, at `control_hz`.

    ros2 run redraw_sim teleop_node --ros-args -r __ns:=/db1 -p script:="2.0:0.5,0.0; 1.5:0.4,0.6; 1.0:0.0,0.0"

`script`: segments "seconds:forward,turn" separated by ';' (times in ROS time: simulated with use_sim_time).
With `loop` the script repeats; otherwise the node holds zero after the last segment.
"""

from __future__ import annotations

import math
import sys
from functools import partial

from rclpy.node import Node

from redraw_common.action_out import ActionOut, run_driver
from redraw_common.kinematics import KinematicsConfig
from redraw_common.nodeparams import declare_config, declare_param
from redraw_common.robot_profile import load
from redraw_msgs.msg import DriveAction

from .drivers import DriverInputError


def parse_script(text: str) -> list[tuple[float, float, float]]:
    """"2.0:0.5,0.0; 1.0:0,0" -> [(2.0, 0.5, 0.0), (1.0, 0.0, 0.0)], checked."""
    segments = []
    for raw in text.split(";"):
        item = raw.strip()
        if not item:
            continue
        try:
            seconds, rest = item.split(":")
            forward, turn = rest.split(",")
            seg = (float(seconds), float(forward), float(turn))
        except ValueError:
            raise DriverInputError(f"teleop script segment {item!r} is not 'seconds:forward,turn' (e.g. '2.0:0.5,-0.1')") from None
        if not all(math.isfinite(v) for v in seg) or seg[0] <= 0 or abs(seg[1]) > 1 or abs(seg[2]) > 1:
            raise DriverInputError(f"teleop script segment {item!r}: need seconds > 0 and forward, turn in [-1, 1]")
        segments.append(seg)
    if not segments:
        raise DriverInputError(f"teleop script is empty ({text!r}); expected segments 'seconds:forward,turn; ...'")
    return segments


def script_command(script: list[tuple[float, float, float]], t: float, loop: bool) -> tuple[float, float]:
    """(forward, turn) of the script at time t (s since the start); zero after the end unless looping."""
    if loop:
        t = t % sum(seg[0] for seg in script)
    for seconds, forward, turn in script:
        if t < seconds:
            return forward, turn
        t -= seconds
    return 0.0, 0.0


class ScriptedTeleopNode(Node):
    def __init__(self):
        super().__init__("teleop")

        param = partial(declare_param, self)

        self.script = parse_script(param("script", "3.0:0.5,0.0; 1.5:0.4,0.5; 3.0:0.5,0.0; 1.5:0.4,-0.5; 1.0:0.0,0.0",
                                         "segments 'seconds:forward,turn' separated by ';'"))
        self.loop = bool(param("loop", True, "repeat the script"))
        control_hz = float(param("control_hz", 10.0, "command rate, Hz"))
        if control_hz <= 0:
            raise DriverInputError(f"control_hz must be > 0, found {control_hz}")
        self.kinematics = declare_config(self, "kinematics", KinematicsConfig, "wheel kinematics of this robot:")
        self.out = ActionOut(self, self.kinematics, DriveAction.SOURCE_TELEOP, load("twin"))
        self.total = sum(seg[0] for seg in self.script)
        self.start_ns = None
        self.create_timer(1.0 / control_hz, self.on_tick)
        self.get_logger().info(f"scripted teleop: {len(self.script)} segments, {self.total:g} s{' (looping)' if self.loop else ''}")

    def on_tick(self) -> None:
        now = self.get_clock().now().nanoseconds
        if self.start_ns is None:
            self.start_ns = now
        self.out.publish(*script_command(self.script, (now - self.start_ns) / 1e9, self.loop))


def main(args: list[str] | None = None) -> int:
    return run_driver(ScriptedTeleopNode, "teleop_node", args)


if __name__ == "__main__":
    sys.exit(main())
