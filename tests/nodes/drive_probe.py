"""Test node: listens to a robot driven by the policy node (the digital twin) for --duration seconds after its
first camera frame and writes JSON: wheel commands [t, left, right, header stamp ns], policy statuses
[t, state], ground truth [t, {field: value}], camera frame count (t = monotonic receive time). Exits 0;
warmed_up = false if no frame came within --wait seconds."""

from __future__ import annotations

import argparse
import json
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage

from redraw_msgs.msg import GroundTruth, PolicyStatus, WheelsCmdStamped
from redraw_sim import ground_truth


class DriveProbe(Node):
    def __init__(self, robot: str):
        super().__init__("drive_probe", namespace=robot)
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        best = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.create_subscription(WheelsCmdStamped, "wheels_driver_node/wheels_cmd", self.on_wheels, reliable)
        self.create_subscription(PolicyStatus, "redraw/policy_status", self.on_status, reliable)
        self.create_subscription(GroundTruth, "redraw_sim/ground_truth", self.on_truth, best)
        self.create_subscription(CompressedImage, "camera_node/image/compressed", self.on_frame, best)
        self.wheels, self.status, self.truth = [], [], []
        self.frames = 0
        self.first_frame = None

    def on_wheels(self, msg):
        self.wheels.append((time.monotonic(), msg.vel_left, msg.vel_right, msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec))

    def on_status(self, msg):
        self.status.append((time.monotonic(), int(msg.watchdog_state)))

    def on_truth(self, msg):
        self.truth.append((time.monotonic(), ground_truth.from_msg(msg)))

    def on_frame(self, _msg):
        self.frames += 1
        if self.first_frame is None:
            self.first_frame = time.monotonic()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--robot", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--wait", type=float, default=60.0)
    args = p.parse_args()
    rclpy.init()
    node = DriveProbe(args.robot)
    t0 = time.monotonic()
    try:
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.02)
            now = time.monotonic()
            if node.first_frame is None and now - t0 > args.wait:
                break
            if node.first_frame is not None and now - node.first_frame > args.duration:
                break
    finally:
        with open(args.out, "w") as f:
            json.dump({"warmed_up": node.first_frame is not None, "t_first_frame": node.first_frame, "frames": node.frames,
                       "wheels": node.wheels, "status": node.status, "truth": node.truth}, f)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
