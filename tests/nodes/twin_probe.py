"""Test node: listens to a robot (the digital twin and its driver) for --seconds of wall time, or with
--sim-seconds until the twin's ground truth has covered that much simulated time (--seconds is then the wall
limit: a slow, loaded machine gives the same data later), and writes what it saw as JSON: camera frames (count, decoded sizes, header stamps), ground truth (parsed rows), episode
events, DriveActions and wheel commands. Optionally publishes a wheel command sequence first
(--command 'seconds:left,right;...', e.g. to test the twin's command timeout), timed from the first ground
truth message (the twin is up). Exits 0.

    python twin_probe.py --robot db --seconds 8 --out probe.json
"""

from __future__ import annotations

import argparse
import json
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage

from redraw_common.preprocessing import decode_jpeg
from redraw_msgs.msg import DriveAction, EpisodeEvent, GroundTruth, WheelsCmdStamped
from redraw_sim import ground_truth


def ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class Probe(Node):
    def __init__(self, args):
        super().__init__("twin_probe", namespace=args.robot)
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(CompressedImage, "camera_node/image/compressed", self.on_frame, reliable)
        self.create_subscription(GroundTruth, "redraw_sim/ground_truth", self.on_truth, reliable)
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(EpisodeEvent, "redraw/episode", self.on_event, latched)   # the twin's START came before us
        self.create_subscription(DriveAction, "redraw/action", self.on_action, reliable)
        self.create_subscription(WheelsCmdStamped, "wheels_driver_node/wheels_cmd", self.on_wheels, reliable)
        self.wheels_pub = self.create_publisher(WheelsCmdStamped, "wheels_driver_node/wheels_cmd", reliable)
        self.commands = []
        for item in filter(None, (s.strip() for s in args.command.split(";"))):
            seconds, rest = item.split(":")
            left, right = rest.split(",")
            self.commands.append((float(seconds), float(left), float(right)))
        self.seen = {"frames": [], "truth": [], "events": [], "actions": [], "wheels": []}
        self.t0 = time.monotonic()
        self.command_t0 = None
        if self.commands:
            self.create_timer(0.1, self.on_command_tick)

    def on_command_tick(self):
        if self.command_t0 is None:
            return
        t = time.monotonic() - self.command_t0
        for seconds, left, right in self.commands:
            if t < seconds:
                msg = WheelsCmdStamped()
                msg.header.stamp = self.get_clock().now().to_msg()
                msg.vel_left, msg.vel_right = left, right
                self.wheels_pub.publish(msg)
                return
            t -= seconds

    def sim_span(self) -> float:
        """Simulated seconds between the first and the newest ground-truth message."""
        truth = self.seen["truth"]
        return truth[-1]["stamp_s"] - truth[0]["stamp_s"] if truth else 0.0

    def on_frame(self, msg):
        rgb = decode_jpeg(bytes(msg.data))
        self.seen["frames"].append({"t": time.monotonic() - self.t0, "stamp_ns": ns(msg.header.stamp), "shape": list(rgb.shape),
                                    "format": msg.format, "frame_id": msg.header.frame_id, "mean": float(rgb.mean())})

    def on_truth(self, msg):
        row = ground_truth.from_msg(msg)
        row["t"] = time.monotonic() - self.t0
        if self.command_t0 is None:
            self.command_t0 = time.monotonic()
        self.seen["truth"].append(row)

    def on_event(self, msg):
        self.seen["events"].append({"t": time.monotonic() - self.t0, "event": msg.event, "reason": msg.reason, "stamp_ns": ns(msg.header.stamp)})

    def on_action(self, msg):
        self.seen["actions"].append({"t": time.monotonic() - self.t0, "forward": msg.forward, "turn": msg.turn, "source": msg.source,
                                     "stamp_ns": ns(msg.header.stamp)})

    def on_wheels(self, msg):
        self.seen["wheels"].append({"t": time.monotonic() - self.t0, "left": msg.vel_left, "right": msg.vel_right,
                                    "stamp_ns": ns(msg.header.stamp)})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--robot", required=True)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--sim-seconds", type=float, default=0.0, help="stop after this much simulated time (ground-truth stamps)")
    p.add_argument("--out", required=True)
    p.add_argument("--command", default="", help="wheel commands to publish first: 'seconds:left,right;...'")
    args = p.parse_args()
    rclpy.init()
    node = Probe(args)
    try:
        while time.monotonic() - node.t0 < args.seconds and not (args.sim_seconds and node.sim_span() >= args.sim_seconds):
            rclpy.spin_once(node, timeout_sec=0.02)
    finally:
        with open(args.out, "w") as f:
            json.dump(node.seen, f)
        node.destroy_node()
        rclpy.try_shutdown()
    print("PROBE " + json.dumps({k: len(v) for k, v in node.seen.items()}), flush=True)


if __name__ == "__main__":
    main()
