"""Test node: plays a camera and an e-stop for the policy node, following a script of phases, and records
every wheel command (monotonic receive time, left, right, header stamp ns, ROS receive time ns) and policy
status (monotonic receive time, watchdog state, end-to-end ms, inference ms, model id, header stamp ns) it
receives. Writes JSON and exits 0.

    python policy_probe.py --robot db --out probe.json --script '[{"mode": "road", "seconds": 2},
        {"mode": "none", "seconds": 1.5}, {"mode": "road", "seconds": 2}]'

Phase modes: road (synthetic road frames), white (all-white frames), black (all-black frames), none (no frames); "estop": true
publishes redraw/estop = true at the phase start and false at its end. Before the script, a warm-up phase
of road frames lasts until the first non-zero wheel command (or --warmup-timeout seconds: then the JSON
says warmed_up = false). With --script '[]' it only listens for --listen seconds (a refused model).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import rclpy
from fake_robot import road  # tests/nodes is the script folder, on sys.path
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Bool

from redraw_common.preprocessing import encode_jpeg
from redraw_msgs.msg import PolicyStatus, WheelsCmdStamped


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
        self.cam = self.create_publisher(CompressedImage, "camera_node/image/compressed", 10)
        self.estop = self.create_publisher(Bool, "redraw/estop", reliable)
        self.create_subscription(WheelsCmdStamped, "wheels_driver_node/wheels_cmd", self.on_wheels, reliable)
        self.create_subscription(PolicyStatus, "redraw/policy_status", self.on_status, reliable)
        self.wheels, self.status, self.phases = [], [], []
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

    def next_phase(self, now):
        if self.phase >= 0:
            ph = self.phases[-1]
            ph["t_end"] = now
            if self.script[self.phase].get("estop"):
                self.estop.publish(Bool(data=False))
        self.phase += 1
        if self.phase >= len(self.script):
            self.done = True
            return
        self.phase_start = now
        spec = self.script[self.phase]
        self.phases.append({**spec, "t_start": now, "last_frame_before": self.last_frame_t})
        if spec.get("estop"):
            self.estop.publish(Bool(data=True))
            self.phases[-1]["t_start"] = time.monotonic()

    def on_wheels(self, msg):
        recv = self.get_clock().now().nanoseconds
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.wheels.append((time.monotonic(), msg.vel_left, msg.vel_right, stamp, recv))
        if msg.vel_left != 0.0 or msg.vel_right != 0.0:
            self.warmed_up = True

    def on_status(self, msg):
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.status.append((time.monotonic(), int(msg.watchdog_state), float(msg.end_to_end_latency_ms), float(msg.inference_ms), msg.model_id, stamp))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--robot", default="testbot")
    p.add_argument("--out", required=True)
    p.add_argument("--script", default="[]")
    p.add_argument("--camera-hz", type=float, default=30.0)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--warmup-timeout", type=float, default=15.0)
    p.add_argument("--listen", type=float, default=3.0)
    p.add_argument("--quality", type=int, default=90)
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
        with open(args.out, "w") as f:
            json.dump({"warmed_up": node.warmed_up, "phases": node.phases, "wheels": node.wheels, "status": node.status}, f)
        node.destroy_node()
        rclpy.try_shutdown()
    print("PROBE DONE", flush=True)


if __name__ == "__main__":
    main()
