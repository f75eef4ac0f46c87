#!/usr/bin/env python3
"""Wall time of one small comparison: the Ray task graph (compare now) against the process pool over seeds that
`compare --jobs` was before it (commit --old, run from a git worktree of this repository), each with 1 and 2 CPUs.

    python bench/bench_compare.py                       # 4 runs of 0.5-1.2 min each on 2 cores
    python bench/bench_compare.py --seeds 3 --cpus 2 --out bench/results/compare_ray_3seeds.json

The comparison (COMPARE below, the same arguments for both): the synthetic PointGoal env, tiny preset, pretraining
per seed, --seeds seeds (2) x (DRAW zero-shot, DRAW finetune, ReDRAW) x 1 condition, one dataset size. With N CPUs the Ray
graph runs on a local instance of N CPUs (`--jobs N`: any cell whose inputs exist); the old pool ran min(N, seeds)
processes, each one seed's stages in order. Each run is a fresh --out in its own process, one torch thread per
cell. Refuses to start when the 1-minute load average is above --max-load.

Writes bench/results/compare_ray.json and compare_ray.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peers import machine  # noqa: E402

COMPARE = ["--env", "redraw/PointGoal-v0", "--target-perturb", "reversed",
           "--methods", "draw_zeroshot,draw_finetune,redraw", "--preset", "tiny", "--pretrain-steps", "400", "--updates", "200",
           "--sizes", "300", "--eval-episodes", "4", "--threads", "1", "--set", "run.prefill=200", "--set", "imag_starts=64"]
PYTHON_PACKAGES = ("redraw_common", "redraw_sim", "redraw_training")


def worktree(commit: str, cache: Path) -> Path:
    """A detached worktree of `commit` (made once) whose Python packages the old compare runs from."""
    path = cache / f"compare-{commit}"
    if not (path / "src").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True, capture_output=True)
    return path


def run(code: Path, cpus: int, seeds: int, out: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(code / "src" / p) for p in PYTHON_PACKAGES] + [env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-c", "from redraw_training.cli.compare import main; raise SystemExit(main())",
           *COMPARE, "--seeds", str(seeds), "--jobs", str(cpus), "--out", str(out)]
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench_compare: {' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rows = json.loads((out / "results.json").read_text())["rows"]
    return {"wall_s": wall, "load_before": load, "load_after": os.getloadavg(),
            "returns": {f"{r['method']}/seed{r['seed']}": r["returns"] for r in rows}}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = [f"{r['engine']}\n{r['cpus']} CPU" for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar(range(len(rows)), [r["wall_s"] for r in rows], color=["tab:blue" if r["engine"] == "ray graph" else "tab:gray" for r in rows])
    for i, r in enumerate(rows):
        ax.text(i, r["wall_s"], f"{r['wall_s']:.0f} s", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("wall s (one comparison)")
    ax.set_title(f"compare: Ray task graph vs the old --jobs pool ({result['machine']['cpu'][:40]})", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", default="1ec3767", help="the commit of the process-pool compare")
    p.add_argument("--cpus", default="1,2")
    p.add_argument("--seeds", type=int, default=2, help="seeds of the comparison (the old pool ran one process per seed)")
    p.add_argument("--cache", type=Path, default=ROOT / "bench" / ".cache")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "compare_ray.json")
    p.add_argument("--max-load", type=float, default=0.5)
    args = p.parse_args()
    if os.getloadavg()[0] > args.max_load:
        print(f"bench_compare: the 1-minute load average is {os.getloadavg()[0]:.2f}, above --max-load {args.max_load}; "
              f"run it on an idle machine", file=sys.stderr)
        return 2
    old = worktree(args.old, args.cache)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        for cpus in [int(c) for c in args.cpus.split(",")]:
            for engine, code in (("ray graph", ROOT), ("old --jobs pool", old)):
                row = {"engine": engine, "code": commit if code == ROOT else args.old, "cpus": cpus,
                       **run(code, cpus, args.seeds, Path(tmp) / f"{engine.split()[0]}_{cpus}")}
                rows.append(row)
                print(f"{engine:16s} {cpus} CPU: {row['wall_s']:.1f} s", flush=True)
    result = {"compare_args": [*COMPARE, "--seeds", str(args.seeds)], "machine": machine(), "rows": rows,
              "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for cpus in sorted({r["cpus"] for r in rows}):
        pair = {r["engine"]: r["wall_s"] for r in rows if r["cpus"] == cpus}
        result[f"old_over_ray_{cpus}cpu"] = pair["old --jobs pool"] / pair["ray graph"]
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps({k: v for k, v in result.items() if k.startswith("old_over")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
