"""What every driver node (explorer, scripted teleop, joystick teleop) publishes per control tick: the
policy-space action (redraw/action, DriveAction) and the wheel command it becomes through the robot's
kinematics, in the robot profile's type on its topic (redraw_common.robot_profile), with one stamp, so a
recording holds the action exactly as a policy would emit it. `run_driver` is such a node's main(): it sends a
last zero command before the node exits."""

from __future__ import annotations

import time
from typing import Any

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from redraw_msgs.msg import DriveAction

from . import topics
from .kinematics import KinematicsConfig, action_to_wheels
from .robot_profile import RobotProfile, message_class
from .rosinit import run_node


class ActionOut:
    def __init__(self, node: Any, kinematics: KinematicsConfig, source: int, profile: RobotProfile):
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node, self.kinematics, self.source = node, kinematics, source
        self.wheels_type = message_class(profile.wheels_cmd.type)
        self.action_pub = node.create_publisher(DriveAction, topics.ACTION, reliable)
        self.wheels_pub = node.create_publisher(self.wheels_type, profile.wheels_cmd.topic, reliable)
        self.frame_id = node.get_namespace().strip("/")
        self.sent = 0

    def publish(self, forward: float, turn: float) -> tuple[float, float]:
        """Publish the action and its wheel command (actions outside [-1, 1] are clipped). Returns the wheels."""
        stamp = self.node.get_clock().now().to_msg()
        forward, turn = max(-1.0, min(1.0, float(forward))), max(-1.0, min(1.0, float(turn)))
        wheels = action_to_wheels(forward, turn, self.kinematics, strict=False)
        act = DriveAction()
        act.header.stamp = stamp
        act.header.frame_id = self.frame_id
        act.forward, act.turn, act.source = forward, turn, self.source
        cmd = self.wheels_type()
        cmd.header.stamp = stamp
        cmd.header.frame_id = self.frame_id
        cmd.vel_left, cmd.vel_right = float(wheels.left), float(wheels.right)
        self.action_pub.publish(act)
        self.wheels_pub.publish(cmd)
        self.sent += 1
        return cmd.vel_left, cmd.vel_right


def run_driver(node_factory, name: str, args: list[str] | None = None) -> int:
    """main() of a driver node (it has `out`, an ActionOut): run_node with a last zero command before exiting."""
    import rclpy

    def stop_wheels(node, reason: str) -> None:
        if rclpy.ok():
            node.out.publish(0.0, 0.0)
            node.get_logger().info(f"stopping ({reason}) after {node.out.sent} commands: wheels to zero")
            time.sleep(0.05)

    return run_node(name, node_factory, args, on_exit=stop_wheels, explain=lambda exc: f"bad configuration: {exc}")
