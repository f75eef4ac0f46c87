"""Recorder benchmark: CPU use and lost frames while recording a 30 Hz 640x480 JPEG camera (plus actions and
wheel commands at 10 Hz) for several minutes, over DDS on loopback.

    python bench/bench_recorder.py --duration 180            # writes bench/results/recorder.json (+ .png)

A synthetic robot (tests/nodes/fake_robot.py) publishes frames numbered in their header frame_id, so lost
frames are counted exactly: (last - first + 1) - recorded, within the recorded span. The recorder runs as
record.launch.py declares it, with `max_duration` set, and its process CPU (user + system) is sampled every
second with psutil. Both processes share the machine's cores (2 on the project's CI machines).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.launchstart import start_launch  # noqa: E402
from helpers.rosproc import NodeGroup, wait_for  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=180.0, help="seconds of recording")
    p.add_argument("--camera-hz", type=float, default=30.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--quality", type=int, default=85, help="JPEG quality of the synthetic frames (85: ~32 KiB at 640x480)")
    p.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"))
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "recorder.json"))
    p.add_argument("--run-dir", default=str(REPO / ".run" / "bench" / f"recorder-{time.strftime('%Y%m%d-%H%M%S')}"))
    args = p.parse_args()

    from rosbags.rosbag2 import Reader

    from redraw_common.recording import Sidecar, part_file
    from redraw_recorder.bagwriter import redraw_typestore
    from redraw_training.bagalign import estimate_camera_drops

    run = Path(args.run_dir)
    bag = run / "recording"
    robot = "benchbot"
    samples = []
    with NodeGroup(run) as group:
        pub = group.start_python(REPO / "tests" / "nodes" / "fake_robot.py", [
            "--robot", robot, "--camera-hz", str(args.camera_hz), "--width", str(args.width), "--height", str(args.height),
            "--quality", str(args.quality), "--variants", "30"])
        rec = start_launch(group, REPO / "src" / "redraw_recorder" / "launch" / "record.launch.py",
                           {"robot": robot, "output": str(bag), "max_duration": float(args.duration)},
                           overrides={"recorder": {"storage": args.storage, "progress_period": 10.0}})["recorder"]
        proc, pub_proc = psutil.Process(rec.pid), psutil.Process(pub.pid)
        wait_for(lambda: bag.exists() and any(bag.glob(".*_0")), 30, what="the first part")
        t0 = time.monotonic()
        c0, p0 = proc.cpu_times(), pub_proc.cpu_times()
        last, last_t = c0, t0
        print(f"recording {args.duration:.0f} s of {args.width}x{args.height} JPEG at {args.camera_hz:g} Hz ...", flush=True)
        while rec.alive():
            time.sleep(1.0)
            try:
                now_c, now_t = proc.cpu_times(), time.monotonic()
                rss = proc.memory_info().rss
            except psutil.NoSuchProcess:
                break
            samples.append((now_t - t0, 100.0 * (now_c.user + now_c.system - last.user - last.system) / (now_t - last_t), rss / 2**20))
            last, last_t = now_c, now_t
        rec.wait(30)
        elapsed = last_t - t0
        cpu_total = 100.0 * (last.user + last.system - c0.user - c0.system) / elapsed
        p1 = pub_proc.cpu_times()
        pub_cpu = 100.0 * (p1.user + p1.system - p0.user - p0.system) / (time.monotonic() - t0)
        log = rec.output()

    side = Sidecar.read(bag)
    store = redraw_typestore()
    seqs, sizes, stamps, cmd = [], [], [], 0
    with Reader(bag) as reader:   # the recording is one bag of split files
        for conn, _, raw in reader.messages():
            if conn.msgtype == "sensor_msgs/msg/CompressedImage":
                msg = store.deserialize_cdr(raw, conn.msgtype)
                seqs.append(int(msg.header.frame_id.rsplit(":", 1)[1]))
                stamps.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
                sizes.append(len(msg.data))
            elif conn.msgtype == "redraw_msgs/msg/DriveAction":
                cmd += 1
    seqs = np.array(sorted(seqs))
    expected = int(seqs[-1] - seqs[0] + 1)
    lost = expected - len(np.unique(seqs))
    bytes_total = sum(part_file(bag, p.name, args.storage).stat().st_size for p in side.parts)
    span = side.parts[-1].end_ns / 1e9 - side.parts[0].start_ns / 1e9
    cpu = np.array([s[1] for s in samples])
    result = {
        "benchmark": "recorder",
        "machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "camera": {"hz": args.camera_hz, "width": args.width, "height": args.height, "jpeg_kib_mean": round(float(np.mean(sizes)) / 1024, 1)},
        "storage": args.storage,
        "duration_s": round(elapsed, 1),
        "recorded_span_s": round(span, 1),
        "frames_recorded": int(len(seqs)),
        "frames_published_in_span": expected,
        "frames_lost": int(lost),
        "loss_percent": round(100.0 * lost / expected, 4),
        # gaps in the camera stamps, as the recorder and the converter see them: frames lost in transport plus
        # camera slots the (loaded) publisher never filled; the latter = this - frames_lost
        "recorder_estimated_drops": side.stats.get("camera_drops_estimated"),
        "stamp_gap_drops_in_bag": estimate_camera_drops(np.array(sorted(stamps)))[0],
        "actions_recorded": cmd,
        "recorder_cpu_percent_of_one_core": {"mean": round(cpu_total, 1), "p50": round(float(np.percentile(cpu, 50)), 1),
                                             "p95": round(float(np.percentile(cpu, 95)), 1), "max": round(float(cpu.max()), 1)},
        "recorder_rss_mib_max": round(max(s[2] for s in samples), 1),
        "publisher_cpu_percent_of_one_core": round(pub_cpu, 1),
        "write_mib_per_s": round(bytes_total / 2**20 / span, 2),
        "bag_mib": round(bytes_total / 2**20, 1),
        "parts": len(side.parts),
        "stop_reason": side.stop_reason,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    _plot(samples, out.with_suffix(".png"), result)
    print(json.dumps(result, indent=2))
    if "closed" not in log:
        print("warning: the recorder did not log a clean close:\n" + log[-2000:], file=sys.stderr)
    return 0


def _plot(samples, path: Path, result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, cpu, rss = (np.array(x) for x in zip(*samples))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(t, cpu, lw=1, label="recorder CPU (% of one core)")
    ax.set_xlabel("s")
    ax.set_ylabel("CPU %")
    ax2 = ax.twinx()
    ax2.plot(t, rss, color="tab:orange", lw=1, label="RSS MiB")
    ax2.set_ylabel("RSS MiB")
    cam = result["camera"]
    ax.set_title(f"recorder, {cam['width']}x{cam['height']} JPEG {cam['hz']:g} Hz: {result['frames_lost']} of "
                 f"{result['frames_published_in_span']} frames lost", fontsize=9)
    fig.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
