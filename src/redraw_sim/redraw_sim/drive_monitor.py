"""drive_monitor: measure a policy driving the digital twin, from the twin's ground truth (evaluation only).

    drive_monitor --robot db1 --duration 150 --out drive.json

Listens under /<robot>: redraw_sim/ground_truth (every simulator step), redraw/episode (lane departures) and
redraw/policy_status (the policy node's watchdog). The measurement window opens at the policy node's first
command with watchdog OK and covers --duration seconds of the twin's simulated time (its stamps), whatever
the real-time factor. Metrics: redraw_sim.drive_metrics. Every second it prints one line
`PROGRESS {json}` (for sim2real's progress bar); at the end it writes --out (metrics, a 10 Hz trace,
the policy's watchdog states) and exits 0, or 3 when the policy never drove within --wait wall seconds,
or 4 when the twin's ground truth stopped for --stall wall seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

EXIT_OK, EXIT_NEVER_DROVE, EXIT_STALLED = 0, 3, 4


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="drive_monitor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", required=True, help="robot namespace")
    p.add_argument("--duration", type=float, required=True, help="simulated seconds to measure after the policy's first command")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--control-hz", type=float, default=10.0, help="the policy's control rate (dense reward is per control step)")
    p.add_argument("--wait", type=float, default=120.0, help="wall seconds to wait for the policy's first OK command")
    p.add_argument("--stall", type=float, default=30.0, help="wall seconds without ground truth that count as a stalled twin")
    p.add_argument("--label", default="", help="name recorded in the output")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if not (args.duration > 0 and math.isfinite(args.duration)):
        print(f"drive_monitor: error: --duration must be > 0 s, found {args.duration}", file=sys.stderr)
        return 2

    import rclpy
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    from redraw_common import topics
    from redraw_common.rosinit import init_stoppable
    from redraw_msgs.msg import EpisodeEvent, GroundTruth, PolicyStatus

    from . import ground_truth
    from .drive_metrics import DriveMetrics

    class DriveMonitor(Node):
        def __init__(self):
            super().__init__("drive_monitor", namespace=args.robot)
            deep = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
            self.metrics = DriveMetrics(duration_s=args.duration, control_hz=args.control_hz)
            self.states: Counter = Counter()       # watchdog states in the window
            self.states_before: Counter = Counter()
            self.model_id = ""
            self.inference_ms: list[float] = []
            self.last_truth_wall = None
            self.create_subscription(GroundTruth, topics.GROUND_TRUTH, self.on_truth, deep)
            self.create_subscription(EpisodeEvent, topics.EPISODE, self.on_event, deep)
            self.create_subscription(PolicyStatus, topics.POLICY_STATUS, self.on_status, deep)

        def on_truth(self, msg) -> None:
            self.last_truth_wall = time.monotonic()
            self.metrics.add_truth(ground_truth.from_msg(msg))

        def on_event(self, msg) -> None:
            if msg.event == EpisodeEvent.EVENT_END and msg.reason == EpisodeEvent.REASON_LEFT_LANE:
                self.metrics.add_departure(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)

        def on_status(self, msg) -> None:
            t = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            state = int(msg.watchdog_state)
            self.model_id = msg.model_id
            if not self.metrics.is_open and state == PolicyStatus.WATCHDOG_OK:
                self.metrics.open(t)
            if self.metrics.in_window(t):
                self.states[state] += 1
                self.inference_ms.append(float(msg.inference_ms))
            elif not self.metrics.is_open:
                self.states_before[state] += 1

    stop = init_stoppable()
    node = DriveMonitor()
    t0 = time.monotonic()
    last_print = 0.0
    code, error = EXIT_OK, ""
    try:
        while rclpy.ok() and not stop and not node.metrics.done:
            rclpy.spin_once(node, timeout_sec=0.05)
            now = time.monotonic()
            if now - last_print >= 1.0:
                last_print = now
                print("PROGRESS " + json.dumps({**node.metrics.progress(), "open": node.metrics.is_open,
                                                "wall_s": round(now - t0, 1)}), flush=True)
            if not node.metrics.is_open and now - t0 > args.wait:
                code, error = EXIT_NEVER_DROVE, (f"the policy sent no command with watchdog OK within {args.wait:g} s "
                                                 f"(watchdog states seen: {dict(node.states_before) or 'none'}; 0 OK, 1 stale camera, "
                                                 "2 bad output, 3 model error, 4 e-stop, 5 waiting, 6 stale odometry)")
                break
            if node.last_truth_wall is not None and now - node.last_truth_wall > args.stall:
                code, error = EXIT_STALLED, f"no ground truth from the twin for {args.stall:g} s"
                break
        if stop and not error:
            code, error = 1, f"interrupted by {stop.name}"
        wall = time.monotonic() - t0
        result = {"label": args.label, "robot": args.robot, "model_id": node.model_id, "complete": node.metrics.done, "error": error,
                  "wall_seconds": wall}
        if node.metrics.is_open and node.metrics.steps:
            n = sum(node.states.values())
            result.update({
                "metrics": node.metrics.summary(),
                "policy": {"status_messages": n, "watchdog_ok_fraction": node.states.get(0, 0) / max(n, 1),
                           "watchdog_states": {str(k): v for k, v in sorted(node.states.items())},
                           "command_rate_hz": n / max(node.metrics.elapsed_s, 1e-9),
                           "inference_ms_p50": float(_percentile(node.inference_ms, 50)),
                           "inference_ms_p99": float(_percentile(node.inference_ms, 99))},
                "trace": node.metrics.trace,
            })
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")
        print(f"drive_monitor: {'done' if not error else 'error: ' + error}; wrote {args.out}", flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return code


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    import numpy as np

    return float(np.percentile(values, q))


if __name__ == "__main__":
    sys.exit(main())
