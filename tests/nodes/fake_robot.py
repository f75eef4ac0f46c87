"""Test node: a synthetic robot driver under /<robot>: JPEG camera frames, DriveAction + wheel commands at
the control rate, EpisodeEvent START/END every `--episode-every` seconds; with --odometry also the measured
velocity with every frame (frame i: forward (i % 100) / 100 m/s, yaw rate -(i % 100) / 50 rad/s). The camera,
wheel-command and odometry topics and types are those of the robot profile --profile (default twin). Prints 'PUBLISHED <counts json>'
every second and on exit.

Frames are a synthetic road (grey asphalt, a yellow dashed centre line, a white edge line) whose lines
shift with time, pre-encoded in `--variants` versions so publishing costs nothing but the copy.

    python fake_robot.py --robot db --camera-hz 30 --control-hz 10 --width 160 --height 120
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import cv2
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage

from redraw_common.kinematics import KinematicsConfig, action_to_wheels
from redraw_common.preprocessing import encode_jpeg
from redraw_common.robot_profile import ODOMETRY, load, message_class
from redraw_msgs.msg import DriveAction, EpisodeEvent


def road(width: int, height: int, shift: float, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    horizon = height // 3
    img[:horizon] = (150, 180, 220)
    img[horizon:] = (70, 70, 75)
    s = width / 640.0
    cx = width * (0.45 + 0.1 * shift)
    for y0 in range(horizon + 5, height, max(4, height // 8)):
        y1 = min(y0 + height // 14, height - 1)
        x0, x1 = int(cx - (y0 - horizon) * 0.5), int(cx - (y1 - horizon) * 0.5)
        cv2.line(img, (x0, y0), (x1, y1), (240, 200, 20), max(1, int(12 * s)))
    cv2.line(img, (int(cx + 40 * s), horizon), (int(width - 10 * s + 20 * s * shift), height - 1), (245, 245, 245), max(1, int(14 * s)))
    noise = rng.integers(-6, 7, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


class FakeRobot(Node):
    def __init__(self, args):
        super().__init__("fake_robot", namespace=args.robot)
        rng = np.random.default_rng(0)
        self.frames = [encode_jpeg(road(args.width, args.height, math.sin(2 * math.pi * i / args.variants), rng), args.quality)
                       for i in range(args.variants)]
        if args.wrong_size_every:
            self.bad = encode_jpeg(road(args.width // 2, args.height // 2, 0.0, rng), 85)
        self.args = args
        self.kin = KinematicsConfig()
        profile = load(args.profile)
        self.wheels_type = message_class(profile.wheels_cmd.type)
        self.cam = self.create_publisher(CompressedImage, profile.camera.topic, 10)
        self.act = self.create_publisher(DriveAction, "redraw/action", 10)
        self.wheels = self.create_publisher(self.wheels_type, profile.wheels_cmd.topic, 10)
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)   # as the twin and the teleop publish events
        self.episode = self.create_publisher(EpisodeEvent, "redraw/episode", latched)
        self.counts = {"camera": 0, "action": 0, "wheels_cmd": 0, "episode": 0}
        if args.odometry:
            self.odom_type, self.odom_is_odometry = message_class(profile.odometry.type), profile.odometry.type == ODOMETRY
            self.odom = self.create_publisher(self.odom_type, profile.odometry.topic, 10)
            self.counts["odometry"] = 0
        self.i = 0
        self.k = 0
        self.t0 = time.monotonic()
        self.last_episode = self.t0
        self.create_timer(1.0 / args.camera_hz, self.camera_tick)
        self.create_timer(1.0 / args.control_hz, self.control_tick)
        self.create_timer(1.0, self.report)
        self.started = False

    def camera_tick(self):
        msg = CompressedImage()
        msg.header.stamp = self.get_clock().now().to_msg()
        n = self.i
        msg.header.frame_id = f"{self.args.robot}:{n}"  # sequence number: lets a benchmark count lost frames exactly
        msg.format = "jpeg"
        if self.args.wrong_size_every and n % self.args.wrong_size_every == self.args.wrong_size_every - 1:
            msg.data = self.bad
        else:
            msg.data = self.frames[n % len(self.frames)]
        self.cam.publish(msg)
        self.i += 1
        self.counts["camera"] += 1
        if self.args.odometry:
            odom = self.odom_type()
            odom.header.stamp = msg.header.stamp
            twist = odom.twist.twist if self.odom_is_odometry else odom.twist
            twist.linear.x, twist.angular.z = (n % 100) / 100, -(n % 100) / 50
            self.odom.publish(odom)
            self.counts["odometry"] += 1

    def control_tick(self):
        now = self.get_clock().now()
        if not self.started:
            self.publish_event(EpisodeEvent.EVENT_START, EpisodeEvent.REASON_NONE)
            self.started = True
        if self.args.episode_every and time.monotonic() - self.last_episode >= self.args.episode_every:
            self.publish_event(EpisodeEvent.EVENT_END, EpisodeEvent.REASON_LEFT_LANE)
            self.publish_event(EpisodeEvent.EVENT_START, EpisodeEvent.REASON_NONE)
            self.last_episode = time.monotonic()
        forward = 0.5 + 0.3 * math.sin(self.k / 7.0)
        turn = 0.8 * math.sin(self.k / 5.0)
        self.k += 1
        if not self.args.no_action:
            a = DriveAction()
            a.header.stamp = now.to_msg()
            a.forward, a.turn, a.source = float(forward), float(turn), DriveAction.SOURCE_EXPLORE
            self.act.publish(a)
            self.counts["action"] += 1
        w = action_to_wheels(forward, turn, self.kin)
        cmd = self.wheels_type()
        cmd.header.stamp = now.to_msg()
        cmd.vel_left, cmd.vel_right = float(w.left), float(w.right)
        self.wheels.publish(cmd)
        self.counts["wheels_cmd"] += 1

    def publish_event(self, event, reason):
        e = EpisodeEvent()
        e.header.stamp = self.get_clock().now().to_msg()
        e.event, e.reason = event, reason
        self.episode.publish(e)
        self.counts["episode"] += 1

    def report(self):
        print("PUBLISHED " + json.dumps(self.counts), flush=True)
        if self.args.duration and time.monotonic() - self.t0 >= self.args.duration:
            raise SystemExit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--robot", default="testbot")
    p.add_argument("--profile", default="twin", help="robot profile: the drivers' topics and types to publish")
    p.add_argument("--odometry", action="store_true", help="publish the measured velocity with every frame")
    p.add_argument("--camera-hz", type=float, default=30.0)
    p.add_argument("--control-hz", type=float, default=10.0)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--variants", type=int, default=24)
    p.add_argument("--episode-every", type=float, default=0.0)
    p.add_argument("--duration", type=float, default=0.0)
    p.add_argument("--no-action", action="store_true")
    p.add_argument("--wrong-size-every", type=int, default=0)
    p.add_argument("--quality", type=int, default=85)
    args = p.parse_args()
    rclpy.init()
    node = FakeRobot(args)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException, SystemExit):
        pass
    finally:
        print("PUBLISHED " + json.dumps(node.counts), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
