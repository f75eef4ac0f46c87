#!/usr/bin/env python3
"""redraw's DRAW and Dreamer train steps beside a published DreamerV3 that people use today (sheeprl), same run,
matched sizes.

    python bench/bench_peers.py                          # sizes XS and S, 1 and 2 threads (about 40 min on 2 cores)
    python bench/bench_peers.py --sizes XS --threads 2

The peer: sheeprl (PyPI, `PEER` below) installed into its own virtual environment under `--cache` (never the
project's venv), with the CPU torch the project pins; its train step (sheeprl.algos.dreamer_v3.dreamer_v3.train:
world model, then actor and critic in imagination from every posterior state) timed by bench/peers/sheeprl_dreamer_v3.py
in that environment. redraw: `Agent.train_step` (world model, then actor-critic in imagination from every posterior
state: imag_starts 0) of DRAW and of the Dreamer baseline, in the project's environment.

Matched sizes: for each sheeprl size preset (dreamer_v3_XS, _S), redraw uses the same CNN width (cnn_depth = sheeprl's
cnn_channels_multiplier) and the one MLP width (latent MLPs, heads, actor, critic) whose world-model parameter count
is nearest to sheeprl's; the row says both counts and refuses a pair more than 10 % apart. Same batch (16 x 64),
image (64 x 64 x 3), imagination horizon (15), continuous 2-dim actions, float32. Each (implementation, size,
threads) runs in its own process: the median wall and process-CPU seconds of `--repeats` updates after `--warmup`,
batches made before the timed region. Refuses to start when the 1-minute load average is above --max-load.

Writes bench/results/peers.json (each row as it completes: a run that stops keeps its rows, and a rerun with the
same settings on the same CPU model skips them) and peers.png, and prints the ratio peer / redraw per size and thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = {"name": "sheeprl", "version": "0.8.4", "torch": "2.13.0"}
HARNESS = ROOT / "bench" / "peers" / "sheeprl_dreamer_v3.py"
SETTINGS = {"batch": 16, "length": 64, "horizon": 15, "image": 64, "actions": 2}
MATCH_TOLERANCE = 0.10


def machine() -> dict:
    """The host, part of the settings: rows timed on another CPU are never mixed into one table."""
    info = [line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line]
    model = next((v.strip() for k, v in info if k.strip() == "model name"), platform.processor())
    flags = next((v.split() for k, v in info if k.strip() == "flags"), [])
    return {"cpu": model, "cpus": os.cpu_count(), "simd": sorted(f for f in flags if f.startswith(("avx", "amx")))}


def peer_python(cache: Path) -> Path:
    """The peer's own environment, made once: python -m venv + pip install of the pinned versions."""
    env = cache / f"{PEER['name']}-{PEER['version']}"
    python = env / "bin" / "python"
    if not (env / ".complete").is_file():
        print(f"installing {PEER['name']}=={PEER['version']} into {env} (its own venv) ...", flush=True)
        venv.create(env, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"torch=={PEER['torch']}", f"{PEER['name']}=={PEER['version']}"], check=True)
        (env / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
    return python


def run_json(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def redraw_overrides(model: str, cnn_depth: int, units: int) -> dict:
    widths = {"encoder.cnn_depth": cnn_depth, "decoder.cnn_depth": cnn_depth, "reward_head.units": units, "cont_head.units": units,
              "actor.units": units, "critic.units": units, "imag_horizon": SETTINGS["horizon"], "imag_starts": 0,
              "batch_size": SETTINGS["batch"], "batch_length": SETTINGS["length"], "model": model}
    if model == "draw":
        widths["rssm.units"] = units
    else:
        widths.update({"dreamer.deter": units, "dreamer.units": units})
    return widths


def _agent(overrides: dict, threads: int):
    import torch

    from redraw_training.agents import build_agent
    from redraw_training.config import load_config

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = load_config([], {k: v for k, v in overrides.items()})
    size = SETTINGS["image"]
    return build_agent(config, (size, size, 3), SETTINGS["actions"]), config


def redraw_params(overrides: dict) -> int:
    agent, _ = _agent(overrides, 1)
    return sum(p.numel() for p in agent.wm.parameters())


def match_units(model: str, cnn_depth: int, target: int) -> tuple[int, int]:
    """The MLP width (a multiple of 32) whose world-model parameter count is nearest the target."""
    best = None
    lo, hi = 64, 4096
    while hi - lo > 32:   # parameters grow with the width: bisect, then look at the two neighbours
        mid = (lo + hi) // 64 * 32
        if redraw_params(redraw_overrides(model, cnn_depth, mid)) < target:
            lo = mid
        else:
            hi = mid
    for units in (lo, hi):
        n = redraw_params(redraw_overrides(model, cnn_depth, units))
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (units, n)
    return best


def random_batches(count: int) -> list[dict]:
    """`count` random training batches of SETTINGS' shape (uint8 images, actions in [-1, 1], episode starts at t=0)."""
    import torch

    b, t, size = SETTINGS["batch"], SETTINGS["length"], SETTINGS["image"]
    g = torch.Generator().manual_seed(0)

    def batch():
        is_first = torch.zeros(b, t, dtype=torch.bool)
        is_first[:, 0] = True
        return {"image": torch.randint(0, 256, (b, t, size, size, 3), generator=g, dtype=torch.uint8),
                "action": torch.rand(b, t, SETTINGS["actions"], generator=g) * 2 - 1, "reward": torch.rand(b, t, generator=g),
                "is_first": is_first, "is_last": torch.zeros(b, t, dtype=torch.bool), "is_terminal": torch.zeros(b, t, dtype=torch.bool)}

    return [batch() for _ in range(count)]


def redraw_worker(overrides: dict, threads: int, warmup: int, repeats: int) -> dict:
    """One process: time Agent.train_step on random batches made before the timed region."""
    import torch

    agent, _ = _agent(overrides, threads)
    batches = random_batches(warmup + repeats)
    load_before = os.getloadavg()
    walls, cpus = [], []
    for i, data in enumerate(batches):
        start, cpu = time.perf_counter(), time.process_time()
        agent.train_step(data)
        if i >= warmup:
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
    return {"wm_params": sum(p.numel() for p in agent.wm.parameters()), "threads": threads, "update_s": statistics.median(walls),
            "update_cpu_s": statistics.median(cpus), "updates": len(walls), "warmup": warmup, "load_before": load_before,
            "load_after": os.getloadavg(), "torch": torch.__version__}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(r["size"], r["threads"]) for r in rows})
    impls = ["sheeprl DreamerV3", "redraw Dreamer", "redraw DRAW"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for j, impl in enumerate(impls):
        values = [next((r["update_s"] for r in rows if r["impl"] == impl and (r["size"], r["threads"]) == k), 0.0) for k in keys]
        ax.bar([i + 0.27 * (j - 1) for i in range(len(keys))], values, 0.27, label=impl)
    ax.set_xticks(range(len(keys)), [f"{s} ({next(r['wm_params'] for r in rows if r['size'] == s) / 1e6:.1f}M), {t} thr" for s, t in keys], fontsize=8)
    ax.set_ylabel("s per train step (median)")
    ax.set_title(f"train step, batch {SETTINGS['batch']}x{SETTINGS['length']}, {SETTINGS['image']}px, horizon {SETTINGS['horizon']}, CPU", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="*", default=["XS", "S"], help="sheeprl dreamer_v3 size presets")
    p.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--max-load", type=float, default=0.5)
    p.add_argument("--cache", default=str(ROOT / "bench" / ".cache" / "peers"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "peers.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: JSON of (overrides, threads, warmup, repeats)
    args = p.parse_args()
    if args.worker:
        sys.path.insert(0, str(ROOT / "src" / "redraw_training"))
        print(json.dumps(redraw_worker(*json.loads(args.worker))))
        return 0
    if os.getloadavg()[0] > args.max_load:
        print(f"bench_peers: the 1-minute load average is {os.getloadavg()[0]:.2f}, above --max-load {args.max_load}; a "
              "shared core would time the wait, not the work: run it on a quiet machine", file=sys.stderr)
        return 2
    python = peer_python(Path(args.cache))
    out = Path(args.out)
    settings = {**SETTINGS, "warmup": args.warmup, "repeats": args.repeats, "peer": PEER, "machine": machine()}
    result = json.loads(out.read_text()) if out.is_file() else {}
    if result.get("settings") != settings:
        result = {"benchmark": "peers", "settings": settings, "rows": []}
    result.update({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "platform": platform.platform()})
    rows = result["rows"]
    done = {(r["impl"], r["size"], r["threads"]) for r in rows}
    common = ["--batch", str(SETTINGS["batch"]), "--length", str(SETTINGS["length"]), "--horizon", str(SETTINGS["horizon"]),
              "--image", str(SETTINGS["image"]), "--actions", str(SETTINGS["actions"])]
    for size in args.sizes:
        peer = run_json([str(python), str(HARNESS), "--size", size, "--params-only"])
        impls = {"sheeprl DreamerV3": None}
        for model in ("dreamer", "draw"):
            units, n = match_units(model, peer["cnn_channels"], peer["wm_params"])
            if abs(n - peer["wm_params"]) > MATCH_TOLERANCE * peer["wm_params"]:
                raise RuntimeError(f"no redraw {model} within 10 % of sheeprl {size}'s {peer['wm_params']} world-model parameters (nearest {n})")
            impls[f"redraw {model.capitalize() if model == 'dreamer' else 'DRAW'}"] = redraw_overrides(model, peer["cnn_channels"], units)
        for threads in args.threads:
            for impl, overrides in impls.items():
                if (impl, size, threads) in done:
                    continue
                print(f"timing {impl} at sheeprl size {size}, {threads} thread(s) ...", flush=True)
                if overrides is None:
                    row = run_json([str(python), str(HARNESS), "--size", size, "--threads", str(threads), "--warmup", str(args.warmup),
                                    "--repeats", str(args.repeats), *common])
                    row["config"] = {"algo": f"dreamer_v3_{size}", "cnn_channels": peer["cnn_channels"], "dense_units": peer["dense_units"],
                                     "recurrent_state": peer["recurrent_state"]}
                else:
                    row = run_json([sys.executable, __file__, "--worker", json.dumps([overrides, threads, args.warmup, args.repeats])])
                    row["config"] = overrides
                row.update({"impl": impl, "size": size, "peer_wm_params": peer["wm_params"]})
                rows.append(row)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(result, indent=1) + "\n")
                print(f"  {row['update_s']:.3f} s per step (CPU {row['update_cpu_s']:.3f} s), {row['wm_params'] / 1e6:.2f}M world-model "
                      f"parameters, load {row['load_before'][0]:.2f}", flush=True)
    result["ratios"] = {}   # every (size, threads) in the file, also those of earlier runs with these settings
    for size, threads in sorted({(r["size"], r["threads"]) for r in rows}):
        t = {r["impl"]: r["update_s"] for r in rows if r["size"] == size and r["threads"] == threads}
        if "sheeprl DreamerV3" in t:
            result["ratios"][f"{size}/{threads}"] = {k: round(t["sheeprl DreamerV3"] / v, 2) for k, v in t.items() if k != "sheeprl DreamerV3"}
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(rows, out.with_suffix(".png"))
    print("peer seconds / redraw seconds per train step (above 1: redraw is faster):")
    for key, ratios in result["ratios"].items():
        print(f"  size {key.split('/')[0]}, {key.split('/')[1]} thread(s): " + ", ".join(f"{k} {v}x" for k, v in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
