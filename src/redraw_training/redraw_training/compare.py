"""The paper's comparison in one call: methods x target conditions x seeds, one evaluation path, one results format.

    compare(CompareSettings(env="redraw/PointGoal-v0", target_perturbs=["reversed"], seeds=[0, 1, 2],
                            methods=list(METHODS), out=Path("runs/cmp"), presets=["tiny"]))

Per seed (each seed is its own pretraining, target data and evaluation episodes):
  1. pretrain in the source env (env, source_perturb): a DRAW model (draw_* and redraw) and a DreamerV3 model
     (dreamer_*), each with `explore` (Plan2Explore by default, METHOD.md 4) for `pretrain_steps` env steps;
  2. collect reward-free target data in the target env (env, each target perturbation) with `target_driver`
     (random actions or the scripted explorer): max(sizes) transitions, and nested prefixes of whole episodes
     for the smaller sizes (the dataset-size sweep);
  3. per method and condition: zero-shot (the pretrained task policy as is), finetune (finetune.py), or redraw
     (loops.calibrate), all offline methods with the same `updates` on the same data;
  4. evaluate every resulting policy with evaluation.evaluate_agent in the target env: `eval_episodes` episodes
     with the same reset seeds for every method of a seed.

Outputs in `out`: results.json (settings, one row per method x condition x seed with the per-episode returns
and held-out KLs, and the mean / SEM summary), table.md (mean +- SEM over seeds), plot.png. Every stage writes
into its own folder (pretrain/, data/, runs/) and is skipped when it is already complete, so an interrupted
comparison resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("dreamer_zeroshot", "dreamer_finetune", "draw_zeroshot", "draw_finetune", "redraw")
MODEL_OF = {"dreamer_zeroshot": "dreamer", "dreamer_finetune": "dreamer", "draw_zeroshot": "draw", "draw_finetune": "draw", "redraw": "draw"}
LABELS = {"dreamer_zeroshot": "Dreamer zero-shot", "dreamer_finetune": "Dreamer finetune", "draw_zeroshot": "DRAW zero-shot",
          "draw_finetune": "DRAW finetune", "redraw": "ReDRAW"}
TARGET_DRIVERS = ("random", "scripted")


class CompareError(ValueError):
    """Bad comparison settings."""


@dataclass
class CompareSettings:
    env: str
    target_perturbs: list[str]
    out: Path
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    presets: list[str] = field(default_factory=lambda: ["tiny"])
    overrides: list[str] = field(default_factory=list)
    explore: str = "plan2explore"
    source_perturb: str = ""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrain_steps: int | None = None          # default: config run.steps
    updates: int | None = None                 # offline updates of calibration / finetuning (default: calibrate.updates)
    sizes: list[int] = field(default_factory=lambda: [2000])   # target dataset sizes, transitions
    target_driver: str = "random"
    eval_episodes: int = 10
    threads: int = 1
    jobs: int = 1

    def check(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise CompareError(f"unknown methods {unknown or self.methods}; expected a comma-separated subset of {list(METHODS)}")
        if not self.target_perturbs:
            raise CompareError("give at least one target condition (--target-perturb, e.g. reversed)")
        if not self.seeds:
            raise CompareError("give at least one seed")
        if any(int(s) < 1 for s in self.sizes) or not self.sizes:
            raise CompareError(f"dataset sizes must be positive transition counts, found {self.sizes}")
        if self.target_driver not in TARGET_DRIVERS:
            raise CompareError(f"target driver must be one of {TARGET_DRIVERS}, found {self.target_driver!r}")
        if self.explore not in ("task", "plan2explore", "scripted"):
            raise CompareError(f"explore must be task, plan2explore or scripted, found {self.explore!r}")
        if self.eval_episodes < 1:
            raise CompareError(f"eval_episodes must be >= 1, found {self.eval_episodes}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in (text or "nominal"))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float) + "\n")
    tmp.replace(path)


# ----------------------------------------------------------------------------------------------------------
# stages


def base_config(s: CompareSettings, model: str, seed: int):
    from .config import load_config

    presets = list(s.presets)
    if s.explore == "plan2explore":
        presets.append("plan2explore")
    if model == "dreamer":
        presets.append("dreamer")
    config = load_config(presets, s.overrides)
    changes: dict[str, Any] = {"seed": int(seed), "threads": int(s.threads), "explore": s.explore, "env.id": s.env,
                               "env.perturb": s.source_perturb, "run.eval_every": 0, "run.eval_eps": 0, "run.save_every": 0}
    if s.env_kwargs:
        changes["env.kwargs"] = dict(s.env_kwargs)
    if s.pretrain_steps is not None:
        changes["run.steps"] = int(s.pretrain_steps)
    return config.update(changes)


def pretrain_stage(s: CompareSettings, model: str, seed: int, log: Callable[[str], None]) -> Path:
    from .loops import pretrain

    folder = s.out / "pretrain" / f"{model}_seed{seed}"
    if _read_json(folder / "summary.json"):
        return folder
    config = base_config(s, model, seed)
    t0 = time.time()
    summary = pretrain(config, folder, progress=False)
    cov = {k: v.get("coverage") for k, v in summary.get("collection", {}).items() if k.startswith("coverage_")}
    log(f"seed {seed}: pretrained {model} ({s.explore}, {summary['counters']['env_steps']} env steps, "
        f"{summary['counters']['updates']} updates) in {time.time() - t0:.0f} s; coverage {cov}")
    return folder


def data_stage(s: CompareSettings, perturb: str, seed: int, log: Callable[[str], None]) -> dict[int, Path]:
    """Reward-free target data: max(sizes) transitions; folders of nested episode prefixes per size."""
    from redraw_common.episodes import episode_paths, save_episode

    from .envs import make_env
    from .loops import run_episodes
    from .scripted import driver_input, scripted_driver

    root = s.out / "data" / f"{slug(perturb)}_seed{seed}"
    full = root / "all"
    need = max(s.sizes)
    info = _read_json(root / "data.json")
    if not info or info.get("transitions", 0) < need:
        env = make_env(s.env, perturb, **dict(s.env_kwargs))
        data_seed = 7_000_000 + 1000 * seed
        if s.target_driver == "random":
            rng = np.random.default_rng(data_seed)
            dim = int(np.prod(env.action_space.shape))

            def act(obs):
                return rng.uniform(-1.0, 1.0, dim)
        else:
            driver = scripted_driver(env, data_seed)

            def act(obs):
                return driver.act(driver_input(env, driver, obs))
        for old in full.glob("*.npz") if full.is_dir() else []:
            old.unlink()
        transitions, i, returns = 0, 0, []
        while transitions < need:
            if s.target_driver == "scripted":
                driver.reset(data_seed + i)
            metrics, eps = run_episodes(env, act, 1, data_seed + i, keep=True)
            ep = eps[0]
            ep.pop("reward")
            save_episode(full / f"ep_{i:06d}.npz", ep)
            transitions += len(ep["image"]) - 1
            returns.append(metrics["return_mean"])
            i += 1
        info = {"env": s.env, "perturb": perturb, "driver": s.target_driver, "seed": data_seed, "episodes": i,
                "transitions": transitions, "return_mean": float(np.mean(returns)), "reward_free": True}
        _write_json(root / "data.json", info)
        log(f"seed {seed}: collected {transitions} reward-free transitions ({i} episodes, {s.target_driver} driver) in {s.env} "
            f"perturb {perturb!r}")
    paths = episode_paths(full)
    out = {}
    for size in sorted(set(int(n) for n in s.sizes)):
        folder = root / f"n{size}"
        if not folder.is_dir():
            folder.mkdir(parents=True)
            total = 0
            for p in paths:
                try:
                    os.link(p, folder / p.name)
                except OSError:
                    (folder / p.name).write_bytes(p.read_bytes())
                with np.load(p, allow_pickle=False) as f:
                    total += len(f["is_first"]) - 1
                if total >= size:
                    break
        out[size] = folder
    return out


def offline_config(s: CompareSettings, pretrained: Path, seed: int):
    from .checkpoint import read_manifest
    from .config import apply, config_from_dict

    _, manifest = read_manifest(pretrained)
    base = config_from_dict(manifest["config"], manifest.get("presets", []))
    config = apply(base, [], s.overrides)
    changes: dict[str, Any] = {"seed": int(seed), "threads": int(s.threads), "calibrate.eval_every": 0, "calibrate.save_every": 0}
    if s.updates is not None:
        changes["calibrate.updates"] = int(s.updates)
    return config.update(changes)


def evaluate_stage(s: CompareSettings, checkpoint: Path, perturb: str, seed: int, cache: Path) -> dict[str, Any]:
    """The one evaluation of every method: sampled actions, eval_episodes episodes with common reset seeds."""
    import torch

    from .checkpoint import load_agent
    from .envs import make_env
    from .evaluation import evaluate_agent

    done = _read_json(cache)
    if done and done.get("episodes") == s.eval_episodes:
        return done
    agent, manifest, _ = load_agent(checkpoint, "cpu", optimizers=False)
    env = make_env(s.env, perturb, **dict(s.env_kwargs))
    metrics = evaluate_agent(agent, env, s.eval_episodes, seed=1_000_000 + 1000 * int(seed), device=torch.device("cpu"))
    metrics.update({"checkpoint": str(checkpoint), "kind": manifest["kind"], "perturb": perturb})
    _write_json(cache, metrics)
    return metrics


def run_seed(s: CompareSettings, seed: int, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every stage of one seed; returns its result rows."""
    import torch

    from .finetune import finetune
    from .loops import calibrate

    torch.set_num_threads(max(1, int(s.threads)))
    models = sorted({MODEL_OF[m] for m in s.methods})
    pretrained = {m: pretrain_stage(s, m, seed, log) for m in models}
    rows = []
    for perturb in s.target_perturbs:
        data = data_stage(s, perturb, seed, log)
        zero_cache: dict[str, dict[str, Any]] = {}
        for size, folder in data.items():
            transitions = _read_json(folder.parent / "data.json") or {}
            for method in s.methods:
                model = MODEL_OF[method]
                t0 = time.time()
                extra: dict[str, Any] = {}
                if method.endswith("zeroshot"):
                    if method not in zero_cache:
                        zero_cache[method] = evaluate_stage(s, pretrained[model], perturb, seed,
                                                            s.out / "runs" / method / slug(perturb) / f"seed{seed}" / "eval.json")
                    metrics = zero_cache[method]
                    checkpoint = pretrained[model]
                else:
                    run_dir = s.out / "runs" / method / f"{slug(perturb)}_n{size}" / f"seed{seed}"
                    summary = _read_json(run_dir / "summary.json")
                    if not summary:
                        if run_dir.exists():  # an interrupted run: start it again
                            import shutil

                            shutil.rmtree(run_dir)
                        config = offline_config(s, pretrained[model], seed)
                        if method == "redraw":
                            summary = calibrate(config, pretrained[model], folder, run_dir, progress=False, resume=False)
                        else:
                            summary = finetune(config, pretrained[model], folder, run_dir, method, progress=False)
                    extra["holdout"] = summary.get("holdout", {})
                    extra["train_steps"] = summary.get("dataset", {}).get("train_steps")
                    extra["updates"] = summary.get("counters", {}).get("updates")
                    metrics = evaluate_stage(s, run_dir, perturb, seed, run_dir / "eval.json")
                    checkpoint = run_dir
                rows.append({"method": method, "perturb": perturb, "size": int(size), "seed": int(seed),
                             "return_mean": metrics["return_mean"], "return_std": metrics["return_std"], "returns": metrics["returns"],
                             "info": {k: v for k, v in metrics.items() if k.startswith("info_")}, "checkpoint": str(checkpoint),
                             "target_data": {"driver": transitions.get("driver"), "collected": transitions.get("transitions")},
                             "seconds": time.time() - t0, **extra})
                log(f"seed {seed}: {method:17s} {perturb or 'nominal'} n={size}: return {metrics['return_mean']:.2f}")
    return rows


# ----------------------------------------------------------------------------------------------------------
# aggregation and outputs


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["perturb"], r["size"]), []).append(r["return_mean"])
    out = []
    for (method, perturb, size), values in groups.items():
        v = np.asarray(values, np.float64)
        sem = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
        out.append({"method": method, "perturb": perturb, "size": size, "seeds": len(v), "mean": float(v.mean()), "sem": sem,
                    "values": [float(x) for x in v]})
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(out, key=lambda d: (d["perturb"], d["size"], order[d["method"]]))


def table_markdown(summary: list[dict[str, Any]], s: CompareSettings, note: str = "") -> str:
    conds = sorted({(d["perturb"], d["size"]) for d in summary}, key=lambda c: (c[0], c[1]))
    cell = {(d["method"], d["perturb"], d["size"]): d for d in summary}
    head = ["Method"] + [f"{p or 'nominal'}, {n} target transitions" for p, n in conds]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in [m for m in METHODS if m in s.methods]:
        cells = [LABELS[method]]
        for p, n in conds:
            d = cell.get((method, p, n))
            cells.append("—" if d is None else f"{d['mean']:.2f} ± {d['sem']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    seeds = ", ".join(str(x) for x in s.seeds)
    text = (f"Return in the target env {s.env} (mean ± SEM over {len(s.seeds)} seeds: {seeds}; per seed the mean of "
            f"{s.eval_episodes} evaluation episodes with sampled actions). Pretraining: presets {s.presets}, explore {s.explore}, "
            f"{s.pretrain_steps if s.pretrain_steps is not None else 'config run.steps'} env steps in perturb "
            f"{s.source_perturb or 'nominal'!r}; offline methods: {s.updates if s.updates is not None else 'config calibrate.updates'} "
            f"updates on reward-free {s.target_driver}-driver target data, of which calibrate.holdout of the episodes (at least one) "
            f"are held out for the KL metric and not trained on.\n\n")
    return text + "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")


def plot(summary: list[dict[str, Any]], s: CompareSettings, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    perturbs = sorted({d["perturb"] for d in summary})
    sizes = sorted({d["size"] for d in summary})
    methods = [m for m in METHODS if m in s.methods]
    fig, axes = plt.subplots(1, len(perturbs), figsize=(max(5.0, 4.5 * len(perturbs)), 3.6), squeeze=False)
    colors = {m: plt.cm.tab10(i) for i, m in enumerate(METHODS)}
    for ax, perturb in zip(axes[0], perturbs):
        if len(sizes) > 1:
            for m in methods:
                pts = sorted((d["size"], d["mean"], d["sem"]) for d in summary if d["method"] == m and d["perturb"] == perturb)
                if not pts:
                    continue
                x, y, e = map(np.asarray, zip(*pts))
                style = "--" if m.endswith("zeroshot") else "-"
                ax.errorbar(x, y, yerr=e, fmt="o" + style, color=colors[m], label=LABELS[m], capsize=3, ms=4)
            ax.set_xscale("log")
            ax.set_xticks(sizes, [str(n) for n in sizes])
            ax.minorticks_off()
            ax.set_xlabel("target transitions (collected)")
        else:
            vals = [next((d for d in summary if d["method"] == m and d["perturb"] == perturb), None) for m in methods]
            x = np.arange(len(methods))
            ax.bar(x, [v["mean"] if v else 0 for v in vals], yerr=[v["sem"] if v else 0 for v in vals], capsize=4,
                   color=[colors[m] for m in methods])
            for xi, v in zip(x, vals):
                if v:
                    ax.scatter(np.full(len(v["values"]), xi), v["values"], color="k", s=8, zorder=3)
            ax.set_xticks(x, [LABELS[m] for m in methods], rotation=25, ha="right", fontsize=8)
        ax.set_title(f"{s.env} — target: {perturb or 'nominal'}" + (f", {sizes[0]} transitions" if len(sizes) == 1 else ""), fontsize=9)
        ax.set_ylabel("return (mean ± SEM over seeds)")
        ax.grid(alpha=0.3)
    if len(sizes) > 1:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _worker(args) -> list[dict[str, Any]]:
    settings, seed = args
    return run_seed(settings, seed, log=lambda line: print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True))


def compare(s: CompareSettings, log: Callable[[str], None] | None = None, note: str = "") -> dict[str, Any]:
    """Run every stage for every seed (in `jobs` processes) and write results.json, table.md and plot.png."""
    s.check()
    s.out = Path(s.out)
    s.out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda line: print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True))
    started = time.time()
    rows: list[dict[str, Any]] = []
    if s.jobs > 1 and len(s.seeds) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(s.jobs, len(s.seeds)), mp_context=mp.get_context("spawn")) as pool:
            for part in pool.map(_worker, [(s, seed) for seed in s.seeds]):
                rows.extend(part)
    else:
        for seed in s.seeds:
            rows.extend(run_seed(s, seed, log))
    summary = summarize(rows)
    results = {"settings": s.to_dict(), "rows": rows, "summary": summary, "seconds": time.time() - started,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write_json(s.out / "results.json", results)
    (s.out / "table.md").write_text(table_markdown(summary, s, note))
    plot(summary, s, s.out / "plot.png")
    return results
