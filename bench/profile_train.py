#!/usr/bin/env python3
"""Where one redraw train step spends its time: torch.profiler over a few `Agent.train_step` calls at a size of
bench_peers.py (matched to a sheeprl preset), with the step's phases annotated.

    python bench/profile_train.py --model draw --size XS --threads 2

Phases (record_function around the agent's own methods, wrapped here, not in the library): the world-model loss
forward, its backward + Adam (`Optimizer.step`), imagination (the actor rolled in the model, no gradient), the
actor and critic losses' backward + Adam. Prints the phases' share of the step and the top ops by self CPU time,
and writes bench/results/profile_<model>_<size>_<threads>t.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import bench_peers

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("wm.loss_forward", "wm.backward_adam", "ac.imagine", "ac.actor_backward_adam", "ac.critic_backward_adam")
PARTS = ("wm.encoder_forward", "wm.latent_forward", "wm.decoder_forward")   # inside wm.loss_forward


def annotate(obj, name: str, label: str) -> None:
    import torch

    fn = getattr(obj, name)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with torch.profiler.record_function(label):
            return fn(*args, **kwargs)

    setattr(obj, name, wrapped)


def matched_overrides(model: str, size: str, units: int | None) -> dict:
    """The widths bench_peers.py matched to the sheeprl preset `size` (read from its results; `units` overrides the
    MLP width)."""
    impl = "redraw DRAW" if model == "draw" else "redraw Dreamer"
    path = ROOT / "bench" / "results" / "peers.json"
    rows = json.loads(path.read_text())["rows"] if path.is_file() else []
    config = next((r["config"] for r in rows if r["impl"] == impl and r["size"] == size), None)
    if config is None:
        raise SystemExit(f"profile_train: {path} has no {impl} row at size {size}; run bench/bench_peers.py --sizes {size} first")
    overrides = dict(config)
    if units:
        overrides = bench_peers.redraw_overrides(model, config["encoder.cnn_depth"], units)
    return overrides


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["draw", "dreamer"], default="draw")
    p.add_argument("--size", default="XS", help="a sheeprl preset that bench_peers.py matched (its widths come from peers.json)")
    p.add_argument("--units", type=int, help="the MLP width (default: the bench's match for --size)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", help="JSON path (default bench/results/profile_<model>_<size>_<threads>t.json)")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "src" / "redraw_training"))
    import torch
    from torch.profiler import ProfilerActivity, profile

    overrides = matched_overrides(args.model, args.size, args.units)
    units = overrides["rssm.units" if args.model == "draw" else "dreamer.units"]
    cnn = overrides["encoder.cnn_depth"]
    agent, _ = bench_peers._agent(overrides, args.threads)
    annotate(agent.wm, "loss", "wm.loss_forward")
    annotate(agent.wm.opt, "step", "wm.backward_adam")
    annotate(agent.wm.encoder, "forward", "wm.encoder_forward")
    latent = agent.wm.draw if args.model == "draw" else agent.wm.rssm
    annotate(latent, "observe", "wm.latent_forward")
    annotate(agent.wm.decoder, "forward", "wm.decoder_forward")
    annotate(agent.task if args.model == "draw" else latent, "imagine", "ac.imagine")
    annotate(agent.task.actor_opt, "step", "ac.actor_backward_adam")
    annotate(agent.task.critic_opt, "step", "ac.critic_backward_adam")
    batches = bench_peers.random_batches(args.warmup + args.steps)
    for data in batches[: args.warmup]:
        agent.train_step(data)
    load = os.getloadavg()
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for data in batches[args.warmup:]:
            agent.train_step(data)
    wall = (time.perf_counter() - start) / args.steps
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / args.steps / 1e6
    phases = {e.key: e.cpu_time_total / args.steps / 1e6 for e in events if e.key in PHASES + PARTS}
    ops = sorted((e for e in events if e.key not in PHASES + PARTS), key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
    top = [{"op": e.key, "self_s": e.self_cpu_time_total / args.steps / 1e6, "calls": e.count // args.steps} for e in ops]
    result = {"model": args.model, "size": args.size, "units": units, "cnn_depth": cnn, "threads": args.threads, "steps": args.steps,
              "wall_s_per_step_profiled": wall, "self_cpu_s_per_step": total, "phases_s": phases, "top_ops": top,
              "load_before": load, "torch": torch.__version__, "settings": bench_peers.SETTINGS, "machine": bench_peers.machine()}
    out = Path(args.out or ROOT / "bench" / "results" / f"profile_{args.model}_{args.size}_{args.threads}t.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{args.model} {args.size} ({units} units), {args.threads} thread(s): {wall:.3f} s per step under the profiler, load {load[0]:.2f}")
    for k in PHASES + PARTS:
        print(f"  {k:26s} {phases.get(k, 0.0):7.3f} s  {100 * phases.get(k, 0.0) / wall:5.1f} %")
    print("top ops by self CPU time per step:")
    for row in top:
        print(f"  {row['op']:45s} {row['self_s']:7.3f} s  {row['calls']:6d} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
