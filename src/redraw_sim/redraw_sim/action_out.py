"""What every driver node publishes per control tick: the policy-space action (redraw/action, DriveAction) and
the wheel command it becomes through the robot's kinematics (wheels_driver_node/wheels_cmd), with one stamp,
so a recording holds the action exactly as a policy would emit it."""

from __future__ import annotations

from typing import Any

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from redraw_common import topics
from redraw_common.kinematics import KinematicsConfig, action_to_wheels
from redraw_msgs.msg import DriveAction, WheelsCmdStamped


class ActionOut:
    def __init__(self, node: Any, kinematics: KinematicsConfig, source: int):
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node, self.kinematics, self.source = node, kinematics, source
        self.action_pub = node.create_publisher(DriveAction, topics.ACTION, reliable)
        self.wheels_pub = node.create_publisher(WheelsCmdStamped, topics.WHEELS_CMD, reliable)
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
        cmd = WheelsCmdStamped()
        cmd.header.stamp = stamp
        cmd.header.frame_id = self.frame_id
        cmd.vel_left, cmd.vel_right = float(wheels.left), float(wheels.right)
        self.action_pub.publish(act)
        self.wheels_pub.publish(cmd)
        self.sent += 1
        return cmd.vel_left, cmd.vel_right
