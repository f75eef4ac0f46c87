"""Test node: plays a camera and an e-stop for the policy node, following a script of phases, and records
every wheel command (monotonic receive time, left, right, header stamp ns, ROS receive time ns) and policy
status (monotonic receive time, watchdog state, end-to-end ms, inference ms, model id, header stamp ns) it
receives; with --camera-listen also every camera frame on the topic (monotonic receive time, header stamp ns,
ROS receive time ns), e.g. the twin's. Writes JSON and exits 0.

    python policy_probe.py --robot db --out probe.json --script '[{"mode": "road", "seconds": 2},
        {"mode": "none", "seconds": 1.5}, {"mode": "road", "seconds": 2}]'

Topics and types are those of the robot profile --profile (redraw_common.robot_profile; default twin): the
camera, the odometry, the e-stop and the wheel commands in the profile's types.

Phase modes: road (synthetic road frames), white (all-white frames), black (all-black frames), none (no frames); "estop": true
publishes e-stop = true at the phase start and false at its end; "stall_node": S stops the process group
--node-pid with SIGSTOP at the phase start and resumes it S seconds later (frames go on: the node's process was
not scheduled, as on a loaded machine). "published" in the JSON lists every frame's header stamp (ns).
Odometry: with every camera tick the probe publishes the measured velocity [forward m/s, yaw rate rad/s] on the profile's odometry
(TwistStamped twist or nav_msgs/Odometry twist.twist) - the phase's "odom" ([v, w], or null = silent), else --odom (default null);
each phase records the time of the last odometry message before it; odom_subscribers in the JSON counts
the subscribers of that topic at the end. Before the script, a warm-up phase of
road frames (and --odom) lasts until the first non-zero wheel command (--warmup-until moving) or the first
policy status (--warmup-until status: the node is up), or --warmup-timeout seconds: then the JSON says
warmed_up = false. With --script '[]' it only listens for --listen seconds (a refused model; a twin).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time

import numpy as np
import rclpy
from fake_robot import road  # tests/nodes is the script folder, on sys.path
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage

from redraw_common.preprocessing import encode_jpeg
from redraw_common.robot_profile import ODOMETRY, load, message_class
from redraw_msgs.msg import PolicyStatus


class Probe(Node):
    def __init__(self, args):
        super().__init__("policy_probe", namespace=args.robot)
        rng = np.random.default_rng(1)
        self.frames = {"road": encode_jpeg(road(args.width, args.height, 0.0, rng), args.quality),
                       "white": encode_jpeg(np.full((args.height, args.width, 3), 255, np.uint8), 90),
                       "black": encode_jpeg(np.zeros((args.height, args.width, 3), np.uint8), 90)}
        self.script = json.loads(args.script)
        self.args = args
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        profile = load(args.profile)
        self.estop_type, self.odom_type = message_class(profile.estop.type), message_class(profile.odometry.type)
        self.odom_is_odometry = profile.odometry.type == ODOMETRY
        self.wheels_type = profile.wheels_cmd.type
        self.cam = self.create_publisher(CompressedImage, profile.camera.topic, 10)
        self.estop = self.create_publisher(self.estop_type, profile.estop.topic, reliable)
        self.create_subscription(message_class(profile.wheels_cmd.type), profile.wheels_cmd.topic, self.on_wheels, reliable)
        self.create_subscription(PolicyStatus, "redraw/policy_status", self.on_status, reliable)
        self.odom = self.create_publisher(self.odom_type, profile.odometry.topic, 10)
        self.default_odom = json.loads(args.odom)
        self.wheels_types = set()
        if args.camera_listen:
            self.create_subscription(CompressedImage, profile.camera.topic, self.on_camera,
                                     QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.wheels, self.status, self.phases, self.camera, self.published = [], [], [], [], []
        self.last_odom_t = None
        self.t0 = time.monotonic()
        self.phase = -1  # warm-up
        self.phase_start = self.t0
        self.warmed_up = False
        self.done = False
        self.last_frame_t = None
        self.create_timer(1.0 / args.camera_hz, self.tick)

    def mode(self):
        if not self.script:
            return "none"
        return "road" if self.phase < 0 else self.script[self.phase]["mode"]

    def velocity(self):
        if self.phase < 0 or "odom" not in self.script[self.phase]:
            return self.default_odom
        return self.script[self.phase]["odom"]

    def tick(self):
        now = time.monotonic()
        if not self.script:
            self.done = now - self.t0 >= self.args.listen
            return
        if self.phase < 0:
            if self.warmed_up or now - self.t0 > self.args.warmup_timeout:
                self.next_phase(now)
        elif now - self.phase_start >= self.script[self.phase]["seconds"]:
            self.next_phase(now)
        if self.done:
            return
        mode = self.mode()
        if mode in self.frames:
            msg = CompressedImage()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.format = "jpeg"
            msg.data = self.frames[mode]
            self.cam.publish(msg)
            self.last_frame_t = time.monotonic()
            self.published.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
        velocity = self.velocity()
        if velocity is not None:
            odom = self.odom_type()
            odom.header.stamp = self.get_clock().now().to_msg()
            twist = odom.twist.twist if self.odom_is_odometry else odom.twist
            twist.linear.x, twist.angular.z = float(velocity[0]), float(velocity[1])
            self.odom.publish(odom)
            self.last_odom_t = time.monotonic()

    def next_phase(self, now):
        if self.phase >= 0:
            ph = self.phases[-1]
            ph["t_end"] = now
            if self.script[self.phase].get("estop"):
                self.estop.publish(self.estop_type(data=False))
        self.phase += 1
        if self.phase >= len(self.script):
            self.done = True
            return
        self.phase_start = now
        spec = self.script[self.phase]
        self.phases.append({**spec, "t_start": now, "last_frame_before": self.last_frame_t, "last_odom_before": self.last_odom_t})
        if spec.get("estop"):
            self.estop.publish(self.estop_type(data=True))
            self.phases[-1]["t_start"] = time.monotonic()
        if spec.get("stall_node"):
            os.killpg(self.args.node_pid, signal.SIGSTOP)
            self.phases[-1]["stall_start_ns"] = self.get_clock().now().nanoseconds
            threading.Timer(spec["stall_node"], self.resume_node, (self.phases[-1],)).start()

    def resume_node(self, phase=None):
        try:
            os.killpg(self.args.node_pid, signal.SIGCONT)
        except ProcessLookupError:  # the node has exited
            return
        if phase is not None:
            phase["stall_end_ns"] = self.get_clock().now().nanoseconds

    def on_wheels(self, msg):
        recv = self.get_clock().now().nanoseconds
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.wheels.append((time.monotonic(), msg.vel_left, msg.vel_right, stamp, recv))
        self.wheels_types.add(f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}")
        if self.args.warmup_until == "moving" and (msg.vel_left != 0.0 or msg.vel_right != 0.0):
            self.warmed_up = True

    def on_status(self, msg):
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.status.append((time.monotonic(), int(msg.watchdog_state), float(msg.end_to_end_latency_ms), float(msg.inference_ms), msg.model_id, stamp,
                            float(msg.preprocess_ms), float(msg.frame_age_ms)))
        if self.args.warmup_until == "status":
            self.warmed_up = True

    def on_camera(self, msg):
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.camera.append((time.monotonic(), stamp, self.get_clock().now().nanoseconds))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--robot", default="testbot")
    p.add_argument("--profile", default="twin", help="robot profile: the topics and types to play and listen on")
    p.add_argument("--out", required=True)
    p.add_argument("--script", default="[]")
    p.add_argument("--camera-hz", type=float, default=30.0)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--warmup-timeout", type=float, default=15.0)
    p.add_argument("--listen", type=float, default=3.0)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--odom", default="null", help="velocity [v, w] published with every camera tick (JSON; null = none)")
    p.add_argument("--warmup-until", choices=("moving", "status"), default="moving")
    p.add_argument("--node-pid", type=int, help="process group that a phase's stall_node stops and resumes")
    p.add_argument("--camera-listen", action="store_true", help="record the camera frames on the topic (receive times, stamps)")
    args = p.parse_args()
    rclpy.init()
    node = Probe(args)
    try:
        while rclpy.ok() and not node.done:
            rclpy.spin_once(node, timeout_sec=0.01)
        end = time.monotonic() + 0.3  # late messages
        while rclpy.ok() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
    finally:
        if args.node_pid:
            node.resume_node()  # never leave the node stopped
        with open(args.out, "w") as f:
            json.dump({"warmed_up": node.warmed_up, "phases": node.phases, "wheels": node.wheels, "status": node.status,
                       "camera": node.camera, "published": node.published, "odom_subscribers": node.odom.get_subscription_count(),
                       "wheels_types": sorted(node.wheels_types), "profile": args.profile}, f)
        node.destroy_node()
        rclpy.try_shutdown()
    print("PROBE DONE", flush=True)


if __name__ == "__main__":
    main()
