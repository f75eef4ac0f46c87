"""Test node: plays a gamepad (sensor_msgs/Joy on joy, 20 Hz like joy_node's autorepeat) and a camera (road frames
at 30 Hz on the robot profile's camera topic) following a script of phases, and records every wheel command (in
the profile's type), action and episode event it receives (monotonic receive time first). Writes JSON, exits 0.

    python joy_probe.py --robot db --profile duckietown-ros2 --out probe.json --script '[{"seconds": 1},
        {"seconds": 2, "axes": [0, 0.5, 0, -0.25], "buttons": [0, 0, 0, 0, 1]}, {"seconds": 1, "silent": true}]'

A phase without "axes" sends zeros on 4 axes and no button pressed; "silent": true sends no Joy at all.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import rclpy
from fake_robot import road  # tests/nodes is the script folder, on sys.path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Joy

from redraw_common.preprocessing import encode_jpeg
from redraw_common.robot_profile import load, message_class
from redraw_msgs.msg import DriveAction, EpisodeEvent


class JoyProbe(Node):
    def __init__(self, args):
        super().__init__("joy_probe", namespace=args.robot)
        profile = load(args.profile)
        self.script, self.args = json.loads(args.script), args
        self.frame = encode_jpeg(road(160, 120, 0.0, np.random.default_rng(1)), 90)
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.joy = self.create_publisher(Joy, "joy", 10)
        self.cam = self.create_publisher(CompressedImage, profile.camera.topic, 10)
        self.create_subscription(message_class(profile.wheels_cmd.type), profile.wheels_cmd.topic, self.on_wheels, reliable)
        self.create_subscription(DriveAction, "redraw/action", self.on_action, reliable)
        self.create_subscription(EpisodeEvent, "redraw/episode", self.on_episode, latched)
        self.wheels, self.actions, self.events, self.phases = [], [], [], []
        self.wheels_types = set()
        self.phase, self.phase_start, self.done = -1, time.monotonic(), False
        self.create_timer(1.0 / 20.0, self.joy_tick)
        self.create_timer(1.0 / 30.0, self.camera_tick)

    def joy_tick(self):
        now = time.monotonic()
        if self.phase < 0 and self.count_subscribers("joy") == 0:   # wait for the teleop
            return
        if self.phase < 0 or now - self.phase_start >= self.script[self.phase]["seconds"]:
            if self.phases:
                self.phases[-1]["t_end"] = now
            self.phase += 1
            if self.phase >= len(self.script):
                self.done = True
                return
            self.phase_start = now
            self.phases.append({**self.script[self.phase], "t_start": now})
        spec = self.script[self.phase]
        if spec.get("silent"):
            return
        msg = Joy()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.axes = [float(a) for a in spec.get("axes", [0.0] * 4)]
        msg.buttons = [int(b) for b in spec.get("buttons", [0] * 8)]
        self.joy.publish(msg)
        self.phases[-1]["last_joy"] = time.monotonic()

    def camera_tick(self):
        msg = CompressedImage()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.format, msg.data = "jpeg", self.frame
        self.cam.publish(msg)

    def on_wheels(self, msg):
        self.wheels.append((time.monotonic(), msg.vel_left, msg.vel_right))
        self.wheels_types.add(f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}")

    def on_action(self, msg):
        self.actions.append((time.monotonic(), msg.forward, msg.turn, int(msg.source)))

    def on_episode(self, msg):
        self.events.append((time.monotonic(), int(msg.event), int(msg.reason)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--robot", default="testbot")
    p.add_argument("--profile", default="twin")
    p.add_argument("--out", required=True)
    p.add_argument("--script", required=True)
    args = p.parse_args()
    rclpy.init()
    node = JoyProbe(args)
    try:
        deadline = time.monotonic() + 60.0
        while rclpy.ok() and not node.done and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.01)
        end = time.monotonic() + 0.3  # late messages
        while rclpy.ok() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
    finally:
        with open(args.out, "w") as f:
            json.dump({"phases": node.phases, "wheels": node.wheels, "actions": node.actions, "events": node.events,
                       "wheels_types": sorted(node.wheels_types)}, f)
        node.destroy_node()
        rclpy.try_shutdown()
    print("PROBE DONE", flush=True)


if __name__ == "__main__":
    main()
