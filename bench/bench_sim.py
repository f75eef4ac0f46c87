"""Env throughput of redraw_sim: steps per second of every registered env at its default settings.

    python bench/bench_sim.py [--steps 300] [--out bench/results/sim.json]

Duckietown envs are driven by the lane-following expert (random actions leave the lane within a second),
DMC envs by uniform random actions. `steps_per_s` counts env.step calls only; `with_resets_per_s` also
pays for the resets the episodes needed. Extras for Duckietown: physics-only simulator steps per second
(the twin's inner loop), env throughput at other camera resolutions, and how far the 64x64 lane masks of
those resolutions are from a 640x480 camera's (mean absolute difference in uint8 levels).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import redraw_sim
from redraw_common.preprocessing import encode_jpeg, preprocess
from redraw_sim.drivers import LaneFollowPController


def bench_env(env_id: str, steps: int, **kwargs) -> dict:
    t0 = time.perf_counter()
    env = gym.make(env_id, **kwargs)
    make_s = time.perf_counter() - t0
    base = env.unwrapped
    expert = LaneFollowPController() if hasattr(base, "lane_state") else None
    rng = np.random.default_rng(0)
    reset_times = []
    t = time.perf_counter()
    env.reset(seed=0)
    reset_times.append(time.perf_counter() - t)
    step_time, done = 0.0, 0
    while done < steps:
        action = expert.act(base.lane_state()) if expert else rng.uniform(-1, 1, env.action_space.shape)
        t = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        step_time += time.perf_counter() - t
        done += 1
        if terminated or truncated:
            t = time.perf_counter()
            env.reset()
            reset_times.append(time.perf_counter() - t)
    env.close()
    return {
        "env": env_id,
        "kwargs": kwargs,
        "steps": done,
        "steps_per_s": done / step_time,
        "with_resets_per_s": done / (step_time + sum(reset_times)),
        "reset_ms": 1000 * float(np.mean(reset_times)),
        "make_s": make_s,
        "obs_shape": list(env.observation_space["image"].shape),
    }


def bench_physics(substeps: int = 3000) -> dict:
    from redraw_common.kinematics import action_to_wheels
    from redraw_sim.duckietown_sim import LaneSim

    lane = LaneSim("loop_empty", camera_width=32, camera_height=24, seed=0)
    lane.reset(seed=0)
    expert = LaneFollowPController()
    t = time.perf_counter()
    for i in range(substeps):
        if i % 3 == 0:
            forward, turn = expert.act(lane.lane_state())
            wheels = action_to_wheels(float(forward), float(turn))
        lane.step(wheels.left, wheels.right, 1)
    return {"substeps": substeps, "substeps_per_s": substeps / (time.perf_counter() - t)}


def mask_fidelity(resolutions, poses: int = 12) -> dict:
    """Mean |lane mask(res) - lane mask(640x480)| over random poses, plus the JPEG q90 round-trip difference."""
    from redraw_sim.duckietown_env import DuckietownLaneEnv

    envs = {r: DuckietownLaneEnv(seed=0, camera_width=r[0], camera_height=r[1]) for r in set(resolutions) | {(640, 480)}}
    rng = np.random.default_rng(0)
    diffs = {r: [] for r in envs}
    jpeg = {r: [] for r in envs}
    for _ in range(poses):
        options = {"s": rng.uniform(0, 10), "offset": rng.uniform(-0.05, 0.05), "heading": rng.uniform(-0.4, 0.4)}
        obs = {r: env.reset(seed=0, options=options)[0]["image"].astype(float) for r, env in envs.items()}
        for r, env in envs.items():
            diffs[r].append(np.abs(obs[r] - obs[(640, 480)]).mean())
            jpeg[r].append(np.abs(preprocess(encode_jpeg(env.frame, 90), env.preprocess_config) - obs[r]).mean())
    return {f"{w}x{h}": {"mask_diff_vs_640x480": float(np.mean(diffs[(w, h)])), "jpeg_q90_diff": float(np.mean(jpeg[(w, h)]))}
            for (w, h) in sorted(envs)}


def plot(rows: list[dict], path: Path) -> None:
    """Bar chart of steps/s per env, next to the JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["env"].removeprefix("redraw/") + (f" ({r['kwargs']['camera_width']}x{r['kwargs']['camera_height']})" if r["kwargs"] else "")
              for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.2))
    ax.barh(labels, [r["steps_per_s"] for r in rows], color=["tab:orange" if "Duckietown" in lab else "tab:blue" for lab in labels])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("env steps / s (log scale)")
    ax.set_title("redraw_sim env throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sim.json")
    args = p.parse_args()
    import pyglet
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    rows = []
    ids = redraw_sim.DUCKIETOWN_IDS + redraw_sim.DMC_IDS
    for env_id in ids:
        console.log(f"benchmarking {env_id}")
        rows.append(bench_env(env_id, args.steps))
    for w, h in ((320, 240), (640, 480)):
        console.log(f"benchmarking redraw/DuckietownLoop-v0 at {w}x{h}")
        rows.append(bench_env("redraw/DuckietownLoop-v0", args.steps, camera_width=w, camera_height=h))
    physics = bench_physics()
    fidelity = mask_fidelity([(160, 120), (320, 240)])
    result = {
        "what": "env.step calls per second at default settings (Duckietown: expert driver; DMC: random actions)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "pyglet": pyglet.version, "load_avg_1m": os.getloadavg()[0]},
        "envs": rows,
        "duckietown_physics_only": physics,
        "duckietown_mask_fidelity": fidelity,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    plot(rows, args.out.with_suffix(".png"))
    table = Table(title=f"redraw_sim env throughput ({os.cpu_count()} CPUs, load {result['machine']['load_avg_1m']:.1f})")
    for col in ("env", "settings", "obs", "steps/s", "incl. resets", "reset ms"):
        table.add_column(col, justify="left" if col in ("env", "settings") else "right")
    for r in rows:
        kwargs = r["kwargs"]
        camera = f"camera {kwargs['camera_width']}x{kwargs['camera_height']}" if "camera_width" in kwargs else ""
        table.add_row(r["env"], camera, "x".join(map(str, r["obs_shape"])),
                      f"{r['steps_per_s']:.0f}", f"{r['with_resets_per_s']:.0f}", f"{r['reset_ms']:.0f}")
    console.print(table)
    console.print(f"Duckietown physics only: {physics['substeps_per_s']:.0f} simulator steps/s (30 per simulated second)")
    for res, f in fidelity.items():
        console.print(f"lane mask from a {res} camera: {f['mask_diff_vs_640x480']:.2f} levels from 640x480's, JPEG q90 round trip {f['jpeg_q90_diff']:.2f}")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
