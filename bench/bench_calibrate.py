#!/usr/bin/env python3
"""Wall time of `calibrate` (ReDRAW against a pretrained checkpoint) on a target dataset of reward-free
transitions, on CPU. Target (issue 8): 10k transitions in 10 minutes or less on 2 cores.

    python bench/bench_calibrate.py                                 # models/duckietown_draw, 10k reversed transitions, 2 threads
    python bench/bench_calibrate.py --threads 1 2                   # one calibrate run per thread count
    python bench/bench_calibrate.py --threads 1 2 --load 0 1 --updates 300   # x a busy loop on 0 and on 1 core (issue 24)
    python bench/bench_calibrate.py --data runs/sim2real/redraw/dataset/<bag>   # an existing dataset, no collection
    python bench/bench_calibrate.py --only collect                  # only make (and cache) the target dataset
    python bench/bench_calibrate.py --checkpoint /tmp/tiny --transitions 300 --updates 20 --out /tmp/cal.json

1. Target data (not part of the calibrate time, reported separately): unless --data is given, `collect` with the
   exploration driver in the checkpoint's env (default redraw/DuckietownLoop-v0) with `--target-perturb` (default
   reversed: the "real" robot of the main job) with the checkpoint's env settings (Duckietown: velocity_obs as the model
   has a vector input or not), N transitions, reward-free, seed --collect-seed. The dataset is
   cached under --cache (default runs/bench_cache/, git-ignored) by env, perturbation, driver, N and seed, so
   reruns do not recollect; a cached dataset reports the collection time it was made in.
2. Calibration: `python -m redraw_training calibrate --checkpoint C --data D --out <fresh run folder> --updates U
   --threads T --seed S`, one subprocess per thread count (U default: the main job's, `sim2real --updates`).
   Measured: total wall time from process start to exit; time to the first update (process start -> the run's
   scalars.jsonl appears, which calibrate creates right before its update loop: imports, checkpoint load,
   dataset load, posterior caching and the sim model's held-out KL; split at calibrate's first stdout line into
   startup and data + cache); the update loop's duration and seconds per update from calibrate's own clock
   (each scalars.jsonl row carries run/updates_per_s = step / seconds since the loop started; the steady rate is
   taken between the first and last logged rows); the tail (final held-out KL, checkpoint save, report.png:
   summary.json 'seconds' - loop); the subprocess's CPU time and peak RSS (os.wait4, the kernel's rusage of that
   child); the held-out KL(posterior || prior) of the sim model and of ReDRAW from summary.json, which shows the
   work was real. Where U differs from the checkpoint config's calibrate.updates, the wall time is also
   extrapolated to that many updates at the steady rate.
Load: `--load 0 1` repeats every thread count with that many busy-loop processes running beside calibrate
(tests/helpers/cpuhog.py, started before the run and killed by PID after it), so one core taken gives a load of ~2
on 2 cores; each row records its `load_cores`.
Measured (2026-12-03, 2 cores, 10k transitions, 300 updates, --load 0 1): idle 0.261 / 0.147 s per update at 1 / 2
threads; one core busy 0.238 / 0.479: two threads on one free core cost 3x the idle rate, hence `threads: 0` (one
per free core, redraw_training.runtime.auto_threads).
The machine is shared: the 1-, 5- and 15-minute load averages before and after each run and the mean 1-minute
load during it are recorded next to the numbers, with the CPU model and the cores this process may use. Writes
bench/results/calibrate.json (+ calibrate.png: phases against the target, held-out KL over updates) and appends
the headline numbers to calibrate_runs.jsonl next to it (results move with the machine's load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers.cpuhog import CpuHog  # noqa: E402  (the busy loop the load tests use)

TARGET_S = 600.0  # issue 8: calibrate on 10k transitions in 10 minutes or less on 2 cores
TARGET_TRANSITIONS = 10_000
MANIFEST = "checkpoint.json"  # redraw_training.checkpoint.MANIFEST (read here without importing torch)


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and where to look."""


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("torch", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_model": cpu or platform.processor(),
            "cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            **versions}


def read_checkpoint(path: str) -> tuple[Path, dict[str, Any]]:
    """The manifest of a checkpoint folder or of a run folder holding one in checkpoint/ (as redraw_training resolves it)."""
    for candidate in (Path(path), Path(path) / "checkpoint"):
        if (candidate / MANIFEST).is_file():
            try:
                return candidate, json.loads((candidate / MANIFEST).read_text())
            except json.JSONDecodeError as exc:
                raise BenchError(f"{candidate / MANIFEST} is not valid JSON: {exc}") from None
    raise BenchError(f"no checkpoint at {path}: expected {Path(path) / MANIFEST} or {Path(path) / 'checkpoint' / MANIFEST}")


def main_job_updates() -> int:
    """The main job's calibration updates (`sim2real --updates` default), read from sim2real itself."""
    from redraw_sim.sim2real import parse_args

    return parse_args([]).updates


# ---------------------------------------------------------------------------------------------------------------
# 1. target data


def dataset_info(folder: Path) -> dict[str, Any]:
    info = {}
    if (folder / "dataset.json").is_file():
        info = json.loads((folder / "dataset.json").read_text())
    episodes = sorted(folder.glob("*.npz"))
    if not episodes:
        raise BenchError(f"{folder} holds no .npz episodes; expected a dataset folder written by `collect` or the bag converter")
    keep = ("transitions", "episodes", "reward_free", "seconds", "env", "env_settings", "driver", "seed")
    return {"path": str(folder), "files": len(episodes), **{k: info[k] for k in keep if k in info}}


def cache_folder(args: argparse.Namespace, env_id: str, env_kwargs: dict[str, Any]) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{env_id}_{args.perturb or 'nominal'}_{args.driver}_{args.transitions}_seed{args.collect_seed}")
    if env_kwargs:
        slug += "_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(f"{k}-{v}" for k, v in sorted(env_kwargs.items())))[:80]
    return Path(args.cache) / "calibrate" / slug


def prepare_data(args: argparse.Namespace, env_id: str, env_kwargs: dict[str, Any], collect: bool = True) -> dict[str, Any]:
    """The target dataset: --data as given, or a cached / freshly collected one. Returns its description."""
    if args.data:
        folder = Path(args.data)
        if not folder.is_dir():
            raise BenchError(f"--data {folder}: not a folder; expected a dataset folder of .npz episodes")
        return {**dataset_info(folder), "source": "given"}
    kwargs = {**env_kwargs, "perturb": args.perturb}
    folder = cache_folder(args, env_id, env_kwargs)
    record = folder / "bench_collect.json"
    if record.is_file() and (folder / "dataset.json").is_file():
        info = dataset_info(folder)
        if info.get("transitions") == args.transitions:
            print(f"bench: target data cached in {folder} ({info['transitions']} transitions, {info.get('episodes')} episodes)", flush=True)
            return {**info, "source": "cached", "collect": json.loads(record.read_text())}
    if not collect:
        raise BenchError(f"--only calibrate: no cached dataset at {folder}; run with --only collect first or pass --data")
    partial = folder.with_name(folder.name + ".partial")
    if partial.exists():  # an interrupted collection of this benchmark: its own cache folder
        shutil.rmtree(partial)
    if folder.exists():
        shutil.rmtree(folder)
    partial.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "redraw_sim.collect", "--env", env_id, "--env-kwargs", json.dumps(kwargs), "--driver", args.driver,
           "--transitions", str(args.transitions), "--reward-free", "--seed", str(args.collect_seed), "--out", str(partial)]
    print(f"bench: collecting {args.transitions} reward-free transitions: {' '.join(cmd[1:])}", flush=True)
    before, t0 = load(), time.monotonic()
    proc = subprocess.run(cmd)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise BenchError(f"collect exited with code {proc.returncode} (its output is above); nothing was cached")
    partial.rename(folder)
    collected = {"wall_s": round(wall, 2), "load_before": before, "load_after": load(), "command": cmd[1:],
                 "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    record.write_text(json.dumps(collected, indent=2) + "\n")
    return {**dataset_info(folder), "source": "collected", "collect": collected}


# ---------------------------------------------------------------------------------------------------------------
# 2. one calibrate run


def _scalar_rows(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_calibrate(args: argparse.Namespace, data: str, run: Path, threads: int, updates: int, load_cores: int = 0) -> dict[str, Any]:
    """One calibrate subprocess; with `load_cores` busy loops beside it for its whole life."""
    hog = CpuHog(load_cores).start() if load_cores else None
    try:
        return {"load_cores": load_cores, **_run_calibrate(args, data, run, threads, updates)}
    finally:
        if hog is not None:
            hog.stop()


def _run_calibrate(args: argparse.Namespace, data: str, run: Path, threads: int, updates: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "redraw_training", "calibrate", "--checkpoint", args.checkpoint, "--data", data, "--out", str(run),
           "--updates", str(updates), "--threads", str(threads), "--seed", str(args.seed)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    print(f"bench: calibrate, {threads} thread(s): {' '.join(cmd[3:])}", flush=True)
    scalars = run / "scalars.jsonl"
    lines: list[tuple[float, str]] = []
    result: dict[str, Any] = {}
    done = threading.Event()
    before = load()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env)  # stderr (tqdm bar) passes through

    def read_stdout() -> None:
        for line in proc.stdout:
            t = time.monotonic() - t0
            lines.append((t, line.rstrip("\n")))
            print(f"  [calibrate {t:7.1f} s] {line.rstrip()}", flush=True)

    def reap() -> None:  # os.wait4: the exit status and the kernel's rusage of exactly this child
        _, status, usage = os.wait4(proc.pid, 0)
        result["wall_s"] = time.monotonic() - t0
        result["returncode"] = os.waitstatus_to_exitcode(status)
        result["usage"] = usage
        proc.returncode = result["returncode"]
        done.set()

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    threading.Thread(target=reap, daemon=True).start()
    first_update, loads, next_load = None, [], 0.0
    try:
        while not done.wait(0.05):
            now = time.monotonic() - t0
            if first_update is None and scalars.exists():
                first_update = now
            if now >= next_load:
                loads.append(os.getloadavg()[0])
                next_load = now + 2.0
    except KeyboardInterrupt:
        proc.terminate()
        raise
    reader.join(timeout=5)
    if result["returncode"] != 0:
        raise BenchError(f"calibrate exited with code {result['returncode']} (its output is above; run folder {run})")
    if first_update is None:
        raise BenchError(f"calibrate finished without writing {scalars}; cannot time its phases")
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        raise BenchError(f"calibrate finished without writing {summary_path}")
    summary = json.loads(summary_path.read_text())
    rows = [r for r in _scalar_rows(scalars) if "run/updates_per_s" in r]
    if not rows or rows[-1]["step"] != updates:
        raise BenchError(f"{scalars}: expected a row at step {updates} with run/updates_per_s, found steps {[r['step'] for r in rows][-5:]}")
    elapsed = [(r["step"], r["step"] / r["run/updates_per_s"]) for r in rows]  # seconds since the loop started, by calibrate's clock
    loop_s = elapsed[-1][1]
    if len(elapsed) >= 2 and elapsed[-1][0] > elapsed[0][0]:
        steady = (elapsed[-1][1] - elapsed[0][1]) / (elapsed[-1][0] - elapsed[0][0])
    else:
        steady = loop_s / updates
    header = next((t for t, line in lines if line.startswith("calibrate:")), None)
    usage = result["usage"]
    hold = summary.get("holdout") or {}
    wall = result["wall_s"]
    out = {
        "threads": threads, "updates": updates, "wall_s": round(wall, 2),
        "first_update_s": round(first_update, 2),
        "startup_s": round(header, 2) if header is not None else None,
        "data_and_cache_s": round(first_update - header, 2) if header is not None else None,
        "loop_s": round(loop_s, 2), "s_per_update": round(loop_s / updates, 4), "s_per_update_steady": round(steady, 4),
        "tail_s": round(summary["seconds"] - loop_s, 2), "summary_seconds": round(summary["seconds"], 2),
        "exit_s": round(wall - first_update - summary["seconds"], 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "cpu_user_s": round(usage.ru_utime, 2), "cpu_sys_s": round(usage.ru_stime, 2),
        "cpu_per_wall": round((usage.ru_utime + usage.ru_stime) / wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "kl_sim": hold.get("holdout/kl_sim"), "kl_redraw": hold.get("holdout/kl_redraw"), "kl_reduction": hold.get("holdout/kl_reduction"),
        "dataset": summary.get("dataset", {}),
        "load_before": before, "load_after": load(), "load_mean_during": round(sum(loads) / len(loads), 2) if loads else None,
        "curve": [{"step": r["step"], "elapsed_s": round(s, 3), "kl_redraw": r.get("holdout/kl_redraw"), "residual_loss": r.get("residual/loss")}
                  for r, (_, s) in zip(rows, elapsed)],
        "command": cmd[3:],
    }
    return out


def extrapolate(r: dict[str, Any], to_updates: int) -> float:
    """Wall seconds for `to_updates` updates: the measured run with the loop stretched at the steady rate."""
    return r["first_update_s"] + r["loop_s"] + r["s_per_update_steady"] * (to_updates - r["updates"]) + r["tail_s"] + max(0.0, r["exit_s"])


# ---------------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(REPO / "models" / "duckietown_draw"), help="pretrained run or checkpoint folder (default %(default)s)")
    parser.add_argument("--data", default=None, help="target dataset folder of .npz episodes (default: collect one, cached)")
    parser.add_argument("--transitions", type=int, default=TARGET_TRANSITIONS, help="transitions to collect (default %(default)s)")
    parser.add_argument("--env", default=None, help="env to collect in (default: the checkpoint's pretraining env, else redraw/DuckietownLoop-v0)")
    parser.add_argument("--env-kwargs", default="{}", help="JSON env keyword arguments over the checkpoint's (default: the checkpoint's; "
                        "Duckietown envs get velocity_obs from the model's vector input)")
    parser.add_argument("--target-perturb", dest="perturb", default="reversed", help="the target dynamics for collection (default %(default)s; '' = nominal)")
    parser.add_argument("--driver", default="explore", choices=("explore", "random", "expert"), help="collect driver (default %(default)s)")
    parser.add_argument("--collect-seed", type=int, default=1, help="seed of the collection (default %(default)s)")
    parser.add_argument("--cache", default=str(REPO / "runs" / "bench_cache"), help="where collected datasets are cached (default %(default)s)")
    parser.add_argument("--updates", type=int, default=None, help="calibration updates (default: the main job's, sim2real --updates)")
    parser.add_argument("--threads", nargs="+", type=int, default=[2], help="torch threads of calibrate, one run each (default 2)")
    parser.add_argument("--load", nargs="+", type=int, default=[0],
                        help="busy-loop processes beside calibrate, one set of runs each (default 0; 1 = one core taken)")
    parser.add_argument("--seed", type=int, default=0, help="calibrate --seed (default %(default)s)")
    parser.add_argument("--only", choices=("collect", "calibrate"), default=None,
                        help="collect: only make/cache the target data; calibrate: use cached/given data, never collect")
    parser.add_argument("--run-dir", default=None, help="write the calibrate runs here and keep them (default: a temporary folder, removed)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "calibrate.json"), help="result JSON (default %(default)s)")
    args = parser.parse_args()
    if args.transitions < 1 or (args.updates is not None and args.updates < 1) or any(t < 1 for t in args.threads):
        parser.error("--transitions, --updates and --threads must be >= 1")
    if any(n < 0 for n in args.load):
        parser.error(f"--load must be >= 0 busy-loop processes, found {args.load}")
    try:
        return _run(args)
    except BenchError as exc:
        print(f"bench_calibrate: error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    ckpt_dir, manifest = read_checkpoint(args.checkpoint)
    if manifest.get("kind") != "pretrain":
        raise BenchError(f"{ckpt_dir} is a {manifest.get('kind')!r} checkpoint; calibrate starts from a 'pretrain' checkpoint")
    src_env = manifest.get("extra", {}).get("env", {})
    env_id = args.env or src_env.get("id") or "redraw/DuckietownLoop-v0"
    env_kwargs = dict(src_env.get("kwargs") or {}) if env_id == src_env.get("id") else {}
    vector_dim = int(manifest.get("model", {}).get("vector_dim", 0))
    if "Duckietown" in env_id and "velocity_obs" not in env_kwargs:  # the data must carry the observations the model has
        env_kwargs["velocity_obs"] = vector_dim > 0
    try:
        env_kwargs.update(json.loads(args.env_kwargs))
    except json.JSONDecodeError as exc:
        raise BenchError(f"--env-kwargs must be a JSON object, e.g. '{{\"velocity_obs\": false}}': {exc}") from None
    config_updates = int(manifest["config"]["calibrate"]["updates"])
    updates = args.updates or main_job_updates()
    mach = machine()
    print(f"bench: {mach['cpu_model']}, {mach['cpus_usable']} usable of {mach['cpus']} CPUs, load {load()}", flush=True)

    data = prepare_data(args, env_id, env_kwargs, collect=args.only != "calibrate")
    if args.only == "collect":
        c = data.get("collect", {})
        print(f"bench: target data {data['path']}: {data.get('transitions')} transitions, {data.get('episodes')} episodes, "
              f"collected in {c.get('wall_s', float('nan')):.0f} s ({data['source']})")
        return 0

    keep = args.run_dir is not None
    root = Path(args.run_dir) if keep else Path(tempfile.mkdtemp(prefix="bench_calibrate_"))
    results = []
    try:
        for load_cores in args.load:
            for threads in args.threads:
                run = root / f"load_{load_cores}_threads_{threads}"
                if run.exists() and any(run.iterdir()):
                    raise BenchError(f"{run} is not empty (calibrate would resume it); choose another --run-dir")
                results.append(run_calibrate(args, data["path"], run, threads, updates, load_cores))
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)

    n = data.get("transitions") or sum(r["dataset"].get("train_steps", 0) + r["dataset"].get("holdout_steps", 0) for r in results[:1])
    for r in results:
        r["target_s"] = TARGET_S
        r["target_met"] = r["wall_s"] <= TARGET_S if n >= TARGET_TRANSITIONS else None  # the target is stated for 10k transitions
        if config_updates != updates:
            r["config_updates"] = config_updates
            r["wall_s_at_config_updates"] = round(extrapolate(r, config_updates), 1)

    _print(results, data, n, updates, config_updates, main_job=args.updates is None)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": mach, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "settings": {"checkpoint": str(ckpt_dir), "presets": manifest.get("presets", []), "transitions": n, "updates": updates,
                        "updates_from": "sim2real --updates default" if args.updates is None else "--updates",
                        "config_updates": config_updates, "threads": args.threads, "load_cores": args.load, "seed": args.seed, "env": env_id,
                        "perturb": args.perturb if not args.data else None, "target_s": TARGET_S, "target_transitions": TARGET_TRANSITIONS,
                        "batch": [manifest["config"].get("batch_size"), manifest["config"].get("batch_length")]},
           "data": data, "results": results}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    runs = out.with_name(out.stem + "_runs.jsonl")
    with open(runs, "a") as f:
        for r in results:
            f.write(json.dumps({"date": doc["date"], "checkpoint": str(ckpt_dir), "transitions": n, **{k: r.get(k) for k in (
                "threads", "load_cores", "updates", "wall_s", "first_update_s", "s_per_update_steady", "cpu_s", "kl_sim", "kl_redraw", "target_met",
                "wall_s_at_config_updates", "load_before", "load_mean_during")}}) + "\n")
    print(f"appended {runs}")
    png = _plot(results, n, out.with_suffix(".png"))
    if png:
        print(f"wrote {png}")
    return 0


def _print(results: list[dict], data: dict, n: int, updates: int, config_updates: int, main_job: bool) -> None:
    c = data.get("collect") or {}
    how = {"given": "given (--data)", "cached": "cached", "collected": "collected now"}[data["source"]]
    collect_s = f"{c['wall_s']:.0f} s wall (load {c['load_before'][0]} -> {c['load_after'][0]})" if c else "unknown"
    print(f"\ntarget data: {n} transitions in {data.get('episodes', data.get('files'))} episodes, {how}; "
          f"collection {collect_s}: not part of the calibrate time")
    header = (f"{'hog':>3} {'thr':>3} {'wall':>8} {'1st upd':>8} {'startup':>8} {'data+cache':>10} {'loop':>8} {'s/update':>9} {'steady':>8} "
              f"{'tail':>6} {'CPU s':>8} {'CPU/wall':>8} {'RSS MB':>7} {'held-out KL sim -> ReDRAW':>26} {'load':>11}  target {TARGET_S:.0f} s")
    print(header)
    print("-" * len(header))
    for r in results:
        kl = (f"{r['kl_sim']:.3f} -> {r['kl_redraw']:.3f} ({r['kl_reduction']:.0%})" if r["kl_sim"] is not None else "no holdout")
        print(f"{r['load_cores']:>3} {r['threads']:>3} {r['wall_s']:>7.1f}s {r['first_update_s']:>7.1f}s {r['startup_s'] or 0:>7.1f}s {r['data_and_cache_s'] or 0:>9.1f}s "
              f"{r['loop_s']:>7.1f}s {r['s_per_update']:>8.4f}s {r['s_per_update_steady']:>7.4f}s {r['tail_s']:>5.1f}s {r['cpu_s']:>7.1f}s "
              f"{r['cpu_per_wall']:>8.2f} {r['peak_rss_mb']:>7.0f} {kl:>26} {r['load_before'][0]:>4.1f}/{r['load_mean_during'] or 0:>4.1f}  "
              f"{ {True: 'met', False: 'NOT met', None: 'n/a'}[r['target_met']]}")
    print(f"(hog = busy-loop processes the bench ran beside calibrate; wall = process start to exit; 1st upd = time to the first update; load = 1-min load before / mean during; "
          f"{updates} updates{', the main job default' if main_job else ''})")
    busy = [r for r in results if not r["load_cores"] and max(r["load_before"][0], r["load_mean_during"] or 0) > 1.0]
    if busy:
        print(f"warning: the machine was busy (1-min load up to {max(max(r['load_before'][0], r['load_mean_during'] or 0) for r in busy):.1f} "
              f"on {os.cpu_count()} CPUs): these are not a free machine's times; with more than one thread per free core, "
              "torch's threads wait for each other and a 2-thread run can be many times slower than a 1-thread one")
    if n != TARGET_TRANSITIONS:
        print(f"note: the target is stated for {TARGET_TRANSITIONS} transitions; this run used {n}, so it is not judged (n/a)")
    for r in results:
        if "wall_s_at_config_updates" in r:
            print(f"extrapolated to the checkpoint config's calibrate.updates={config_updates} at {r['threads']} thread(s): "
                  f"{r['wall_s_at_config_updates']:.0f} s ({r['wall_s_at_config_updates'] / 3600:.2f} h; steady rate, "
                  f"excluding the periodic checkpoint saves)")


def _plot(results: list[dict], n: int, path: Path) -> Path | None:
    """Left: calibrate's phases per run against the target. Middle: steady seconds per update by busy cores and
    threads. Right: held-out KL of ReDRAW over updates."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (ax, sx, kx) = plt.subplots(1, 3, figsize=(15, 3.8), dpi=100, gridspec_kw={"width_ratios": [1.2, 0.8, 1]})
    phases = [("startup_s", "startup (imports, checkpoint)"), ("data_and_cache_s", "dataset + posterior cache + sim KL"),
              ("loop_s", "update loop"), ("tail_s", "final KL, save, report")]
    labels = [f"{r['threads']} thread{'s' if r['threads'] > 1 else ''}" + (f", {r['load_cores']} core busy" if r["load_cores"] else "")
              for r in results]
    for i, r in enumerate(results):
        left = 0.0
        for j, (key, name) in enumerate(phases):
            width = r[key] or 0.0
            ax.barh(i, width, left=left, color=f"C{j}", label=name if i == 0 else None)
            left += width
        ax.text(r["wall_s"], i, f" {r['wall_s']:.0f} s", va="center", fontsize=8)
    ax.axvline(TARGET_S, color="red", ls="--", lw=1, label=f"target {TARGET_S:.0f} s")
    ax.set_yticks(range(len(results)), labels)
    ax.set_xlabel("wall seconds")
    ax.set_xlim(0, max(TARGET_S, max(r["wall_s"] for r in results)) * 1.15)
    ax.set_title(f"calibrate: {results[0]['updates']} updates on {n} transitions", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    loads = sorted({r["load_cores"] for r in results})
    threads = sorted({r["threads"] for r in results})
    width = 0.8 / len(threads)
    for j, t in enumerate(threads):
        for i, lc in enumerate(loads):
            r = next((r for r in results if r["threads"] == t and r["load_cores"] == lc), None)
            if r is not None:
                x = i + (j - (len(threads) - 1) / 2) * width
                sx.bar(x, r["s_per_update_steady"], width, color=f"C{j}", label=f"{t} thread{'s' if t > 1 else ''}" if i == 0 else None)
                sx.text(x, r["s_per_update_steady"], f"{r['s_per_update_steady']:.3f}", ha="center", va="bottom", fontsize=7)
    sx.set_xticks(range(len(loads)), [f"{lc} core{'s' if lc != 1 else ''} busy" for lc in loads])
    sx.set_ylabel("s per update (steady)")
    sx.set_title("update cost under load", fontsize=9)
    sx.legend(fontsize=7)
    for i, r in enumerate(results):
        pts = [(c["step"], c["kl_redraw"]) for c in r["curve"] if c["kl_redraw"] is not None]
        if pts and r["kl_sim"] is not None:
            pts.insert(0, (0, r["kl_sim"]))  # before the first update ReDRAW is the sim model
        if pts:
            kx.plot(*zip(*pts), color=f"C{i}", marker=".", label=f"ReDRAW, {labels[i]}")
        if r["kl_sim"] is not None:
            kx.axhline(r["kl_sim"], color=f"C{i}", ls=":", label=f"sim model, {labels[i]}")
    kx.set_xlabel("update")
    kx.set_ylabel("held-out KL(posterior || prior)")
    kx.set_title("the work is real: held-out KL on target data", fontsize=9)
    if kx.has_data():
        kx.legend(fontsize=7)
    else:
        kx.text(0.5, 0.5, "no held-out episodes", ha="center", va="center", transform=kx.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
