"""Joystick teleop for recording on a real robot: sensor_msgs/Joy (from the `joy` package's joy_node) -> the
action (redraw/action, DriveAction source TELEOP) and its wheel command in the robot profile's type, at the
control rate - what the explorer does on the twin, with a person driving. The recorder records it like any
other driver.

    ros2 launch redraw_teleop teleop.launch.py robot:=db1 robot_profile:=duckietown-ros2     # joy_node + this node

Hold the dead-man button (`enable_button`) and steer: the forward axis times `max_forward`, the turn axis times
`max_turn` (policy space, [-1, 1]; the kinematics turn them into wheel commands as for a policy). Releasing
the button, a Joy message that lacks the configured axis or button or holds a non-finite value, or no Joy
message for `joy_timeout` (joy_node repeats the state at its autorepeat_rate, 20 Hz) sends one zero command and
then nothing, as ROS teleops do; the wheels driver holds that zero. Each hold of the button is an episode:
redraw/episode START when it engages, END when it stops (REASON_OPERATOR), so the converter cuts the recording
where the operator let go.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from functools import partial

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Joy

from redraw_common import topics
from redraw_common.action_out import ActionOut, run_driver
from redraw_common.errors import RedrawInputError
from redraw_common.kinematics import KinematicsConfig
from redraw_common.nodeparams import declare_config, declare_param
from redraw_common.robot_profile import DEFAULT, load
from redraw_msgs.msg import DriveAction, EpisodeEvent


@dataclass(frozen=True)
class JoyMapping:
    """Which axes and button drive, and how far."""

    axis_forward: int = 1      # joy_node, Xbox-style pad: left stick up = +1
    axis_turn: int = 3         # right stick, left = +1 (turn > 0 is counter-clockwise)
    enable_button: int = 4     # left shoulder (LB): the dead-man button
    max_forward: float = 0.6   # |forward| at full stick, policy space
    max_turn: float = 1.0      # |turn| at full stick

    def command(self, axes, buttons) -> tuple[float, float] | str:
        """(forward, turn) while the dead-man button is held; otherwise why not (a sentence)."""
        need_axes = max(self.axis_forward, self.axis_turn) + 1
        if len(axes) < need_axes or len(buttons) <= self.enable_button:
            return (f"the Joy message has {len(axes)} axes and {len(buttons)} buttons; expected at least {need_axes} axes "
                    f"(axis_forward {self.axis_forward}, axis_turn {self.axis_turn}) and {self.enable_button + 1} buttons "
                    f"(enable_button {self.enable_button})")
        if not buttons[self.enable_button]:
            return "dead-man button released"
        forward, turn = float(axes[self.axis_forward]), float(axes[self.axis_turn])
        if not (math.isfinite(forward) and math.isfinite(turn)):
            return f"non-finite joystick axes ({forward}, {turn})"
        clip = lambda x: max(-1.0, min(1.0, x))  # noqa: E731
        return clip(forward) * self.max_forward, clip(turn) * self.max_turn


class JoyTeleop(Node):
    def __init__(self):
        super().__init__("joy_teleop")

        param = partial(declare_param, self)

        profile = load(str(param("robot_profile", DEFAULT, "robot stack whose wheel command to send: twin, duckietown-ros2, "
                                 "duckietown-ros1-bridge or a profile YAML")))
        self.mapping = JoyMapping(
            axis_forward=int(param("axis_forward", JoyMapping.axis_forward, "Joy axis of the forward command", low=0)),
            axis_turn=int(param("axis_turn", JoyMapping.axis_turn, "Joy axis of the turn command (left = +1)", low=0)),
            enable_button=int(param("enable_button", JoyMapping.enable_button, "Joy button to hold while driving (dead man)", low=0)),
            max_forward=float(param("max_forward", JoyMapping.max_forward, "forward command at full stick (speed limit, [0, 1])", low=0.0, high=1.0)),
            max_turn=float(param("max_turn", JoyMapping.max_turn, "turn command at full stick (limit, [0, 1])", low=0.0, high=1.0)),
        )
        control_hz = float(param("control_hz", 10.0, "command rate, Hz (the rate the models act at)", low=0.1, high=100.0))
        self.joy_timeout = float(param("joy_timeout", 0.5, "seconds without a Joy message before the wheels stop", low=0.01))
        kinematics = declare_config(self, "kinematics", KinematicsConfig, "wheel kinematics of this robot:")
        if self.mapping.axis_forward == self.mapping.axis_turn:
            raise RedrawInputError(f"axis_forward and axis_turn must differ, both are {self.mapping.axis_turn}")

        self.out = ActionOut(self, kinematics, DriveAction.SOURCE_TELEOP, profile)
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.episode_pub = self.create_publisher(EpisodeEvent, topics.EPISODE, latched)
        self.create_subscription(Joy, "joy", self.on_joy, QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                                                     reliability=ReliabilityPolicy.RELIABLE))
        self.command: tuple[float, float] | str = "no Joy message yet"
        self.joy_time: float | None = None    # steady time of the last Joy message
        self.engaged = False
        self.episodes = 0
        self.create_timer(1.0 / control_hz, self.on_tick)
        m = self.mapping
        self.get_logger().info(
            f"joystick teleop at {control_hz:g} Hz: hold button {m.enable_button}, forward = axis {m.axis_forward} x {m.max_forward:g}, "
            f"turn = axis {m.axis_turn} x {m.max_turn:g}; wheels {profile.wheels_cmd.topic} ({profile.wheels_cmd.type}, profile "
            f"{profile.name}); stop after {self.joy_timeout:g} s without {self.resolve_topic_name('joy')}")

    def on_joy(self, msg: Joy) -> None:
        self.command = self.mapping.command(msg.axes, msg.buttons)
        self.joy_time = time.monotonic()

    def on_tick(self) -> None:
        command = self.command
        if self.joy_time is not None and time.monotonic() - self.joy_time > self.joy_timeout:
            command = f"no Joy message for {time.monotonic() - self.joy_time:.2f} s (joy_timeout {self.joy_timeout:g} s)"
        if isinstance(command, tuple):
            if not self.engaged:
                self.engaged = True
                self.episodes += 1
                self.episode(EpisodeEvent.EVENT_START)
                self.get_logger().info(f"driving (episode {self.episodes})")
            self.out.publish(*command)
        elif not self.engaged:
            if command.startswith("the Joy message has"):   # a mapping that does not fit this joystick: say so
                self.get_logger().warning(command, throttle_duration_sec=5.0)
        else:
            self.engaged = False
            self.out.publish(0.0, 0.0)
            self.episode(EpisodeEvent.EVENT_END)
            line = f"{command}: wheels to zero (episode {self.episodes} ended)"
            if command == "dead-man button released":   # rclpy: one severity per call site
                self.get_logger().info(line)
            else:
                self.get_logger().warning(line)

    def episode(self, event: int) -> None:
        msg = EpisodeEvent()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.out.frame_id
        msg.event, msg.reason = event, EpisodeEvent.REASON_OPERATOR
        self.episode_pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_driver(JoyTeleop, "joy_teleop", args)


if __name__ == "__main__":
    sys.exit(main())
