#!/usr/bin/env python3
"""Throughput of the learning core (redraw_training) per size preset: world-model update, imagination +
actor-critic update, ReDRAW residual update on cached posteriors, on CPU (1 and 2 threads) or a GPU.

    python bench/bench_training.py                                  # all presets, CPU, 1 and 2 threads
    python bench/bench_training.py --presets small --threads 2
    python bench/bench_training.py --device cuda --precision bfloat16 --compile

Each (preset, threads) pair runs in its own process (clean thread setting and peak memory). Batches are
random (uint8 images at the preset's size, B x T from the preset); timings are the median of `--repeats`
updates after `--warmup` updates. The actor-critic update is timed with the preset's imagination start count
and with 1024 starts (PLATFORM.md's reference figures use 1024). Writes JSON (default
bench/results/training.json) and prints a table. Imports only torch, numpy, yaml and redraw_training's model
modules (no gymnasium, no ROS), so it runs on a bare GPU machine from a checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench_peers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src" / "redraw_training"))

IMAGE = {"paper": 64, "small": 64, "tiny": 32}


def _batch(config, size, device, torch):
    b, t = config.batch_size, config.batch_length
    g = torch.Generator().manual_seed(0)
    is_first = torch.zeros(b, t, dtype=torch.bool)
    is_first[:, 0] = True
    batch = {
        "image": torch.randint(0, 256, (b, t, size, size, 3), generator=g, dtype=torch.uint8),
        "action": torch.rand(b, t, 2, generator=g) * 2 - 1,
        "reward": torch.rand(b, t, generator=g),
        "is_first": is_first,
        "is_last": torch.zeros(b, t, dtype=torch.bool),
        "is_terminal": torch.zeros(b, t, dtype=torch.bool),
    }
    return {k: v.to(device) for k, v in batch.items()}


def _time(fn, warmup, repeats, sync):
    """(median wall seconds, median process CPU seconds) per call. On a shared machine the CPU time of a
    1-thread run is the better estimate of the work (wall time includes waiting for a core)."""
    for _ in range(warmup):
        fn()
    sync()
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        sync()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def worker(preset: str, threads: int, device: str, precision: str, compile_: bool, warmup: int, repeats: int) -> dict:
    import torch

    from redraw_training.config import load_config
    from redraw_training.draw_agent import Agent

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    config = load_config([preset], {"device": device, "precision": precision, "compile": compile_})
    size = IMAGE[preset]
    torch.manual_seed(0)
    with torch.device(dev):
        agent = Agent(config, (size, size, 3), 2)
    if compile_:
        agent.compile()
    batch = _batch(config, size, dev, torch)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    result = {"preset": preset, "threads": threads, "device": device, "precision": precision, "compile": compile_,
              "image": size, "batch": [config.batch_size, config.batch_length], "horizon": config.imag_horizon,
              "latents": [config.rssm.stoch, config.rssm.classes], "units": config.rssm.units,
              "wm_params": sum(p.numel() for p in agent.wm.parameters())}

    states = {}

    def wm_update():
        out, _ = agent.wm.train_step(batch)
        states["out"] = out

    result["wm_update_s"], result["wm_update_cpu_s"] = _time(wm_update, warmup, repeats, sync)
    frames = config.batch_size * config.batch_length
    result["wm_frames_per_s"] = frames / result["wm_update_s"]

    for label, count in (("ac_update_s", config.imag_starts or frames), ("ac_update_1024_s", 1024)):
        start = agent._starts(states["out"], batch, count)

        def ac_update(start=start):
            agent.task.train_step(agent.wm, start)

        result[label], result[label.replace("_s", "_cpu_s")] = _time(ac_update, warmup, repeats, sync)
    result["imag_starts"] = config.imag_starts or frames

    # ReDRAW: residual update on cached posteriors, then the full calibration step (residual + AC on 1/3 starts)
    with torch.no_grad():
        post = agent.wm.posterior_logits(batch)
    agent.start_calibration(config)
    cal_batch = {"post_logit": post, "action": batch["action"], "is_first": batch["is_first"], "is_terminal": batch["is_terminal"]}

    def residual_update():
        z, z_prev, a_prev, base, raw = agent.filter_with_residual(post, batch["action"], batch["is_first"])
        agent.res_opt.step(agent.residual_loss(post, z_prev, a_prev, base, batch["is_first"]))

    result["residual_update_s"], result["residual_update_cpu_s"] = _time(residual_update, warmup, repeats, sync)
    result["calibrate_step_s"], result["calibrate_step_cpu_s"] = _time(lambda: agent.calibrate_step(cal_batch), warmup, repeats, sync)
    result["load_average"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result["residual_params"] = sum(p.numel() for p in agent.residual.parameters())
    if dev.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["gpu"] = torch.cuda.get_device_name()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["torch"] = torch.__version__
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "paper"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="CPU threads (ignored for cuda: 0 = default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the per-step prior and the conv nets")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-load", type=float, default=0.5, help="refuse to start above this 1-minute load average (CPU)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "training.json"))
    parser.add_argument("--worker", nargs=2, metavar=("PRESET", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        preset, threads = args.worker[0], int(args.worker[1])
        print(json.dumps(worker(preset, threads, args.device, args.precision, args.compile, args.warmup, args.repeats)))
        return 0

    threads_list = [0] if args.device.startswith("cuda") else args.threads
    load = os.getloadavg()[0]
    if not args.device.startswith("cuda") and load > args.max_load:
        print(f"bench_training: the 1-minute load average is {load:.2f}, above --max-load {args.max_load}: CPU timings would "
              "measure the other work; wait for an idle machine", file=sys.stderr)
        return 2
    results = []
    for preset in args.presets:
        for threads in threads_list:
            cmd = [sys.executable, __file__, "--worker", preset, str(threads), "--device", args.device, "--precision", args.precision,
                   "--warmup", str(args.warmup), "--repeats", str(args.repeats)] + (["--compile"] if args.compile else [])
            env = dict(os.environ, OMP_NUM_THREADS=str(threads or os.cpu_count()))
            print(f"bench: {preset} threads={threads or 'default'} device={args.device} ...", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    header = (f"{'preset':7} {'thr':>3} {'dev':5} {'WM update':>10} {'(cpu)':>8} {'frames/s':>9} {'AC update':>10} {'starts':>6} "
              f"{'AC 1024':>9} {'(cpu)':>8} {'residual':>9} {'calib step':>10} {'RSS MB':>7} {'WM params':>10} {'load':>5}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['preset']:7} {r['threads'] or '-':>3} {r['device'][:5]:5} {r['wm_update_s']:>9.3f}s {r['wm_update_cpu_s']:>7.3f}s "
              f"{r['wm_frames_per_s']:>9.0f} {r['ac_update_s']:>9.3f}s {r['imag_starts']:>6} {r['ac_update_1024_s']:>8.3f}s "
              f"{r['ac_update_1024_cpu_s']:>7.3f}s {r['residual_update_s']:>8.4f}s {r['calibrate_step_s']:>9.3f}s "
              f"{r['peak_rss_mb']:>7.0f} {r['wm_params'] / 1e6:>9.2f}M {r['load_average'] or 0:>5.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": dict(bench_peers.machine(), platform=platform.platform(), python=platform.python_version()),
           "settings": {"device": args.device, "precision": args.precision, "compile": args.compile, "warmup": args.warmup,
                        "repeats": args.repeats}, "results": results}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    png = _plot(results, out.with_suffix(".png"))
    if png:
        print(f"wrote {png}")
    return 0


def _plot(results: list[dict], path: Path) -> Path | None:
    """Seconds per update by preset and setting (log scale); skipped where matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = [("wm_update_s", "WM update"), ("ac_update_1024_s", "AC update (1024 starts)"), ("residual_update_s", "residual update"),
            ("calibrate_step_s", "calibration step")]
    labels = [f"{r['preset']}\n{r['device']}" + (f" {r['threads']}t" if r["threads"] else "") for r in results]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(results)), 4), dpi=100)
    width = 0.8 / len(keys)
    for i, (key, name) in enumerate(keys):
        ax.bar([j + i * width for j in range(len(results))], [r[key] for r in results], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(results))], labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per update (median wall time)")
    ax.set_title("redraw_training throughput (lower is better)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
