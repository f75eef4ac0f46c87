"""The paper's comparison in one call: methods x target conditions x seeds, one evaluation path, one results format.

    compare(CompareSettings(env="redraw/PointGoal-v0", target_perturbs=["reversed"], seeds=[0, 1, 2],
                            methods=list(METHODS), out=Path("runs/cmp"), presets=["tiny"]))
    compare(CompareSettings(env="redraw/DuckietownLoop-v0", target_perturbs=["", "reversed"], out=Path("runs/dt"),
                            draw_checkpoint="models/duckietown_draw", dreamer_checkpoint="models/duckietown_dreamer"))

Per seed (each seed is its own pretraining, target data and evaluation episodes):
  1. pretrain in the source env (env, source_perturb): a DRAW model (draw_* and redraw) and a DreamerV3 model
     (dreamer_*), each with `explore` (Plan2Explore by default, METHOD.md 4) for `pretrain_steps` env steps; or,
     with `draw_checkpoint` / `dreamer_checkpoint`, that pretrained checkpoint for every seed (then the seeds vary
     only the target data collection, the calibration / finetune seed and the evaluation episodes' seeds);
  2. collect reward-free target data in the target env (env, each target perturbation; "" = nominal, the paper's
     "unmodified real") with `target_driver`: max(sizes) transitions, and nested prefixes of whole episodes for
     the smaller sizes (the dataset-size sweep). `auto` = the env package's exploration driver for envs with a
     lane state (redraw_sim's ExploreDriver on the ground-truth lane state, as the main job's explore node), else
     random actions; `scripted` = scripted.scripted_driver for any env; `random` = uniform random actions;
  3. per method and condition: zero-shot (the pretrained task policy as is), finetune (finetune.py), or redraw
     (loops.calibrate), all offline methods with the same `updates` on the same data;
  4. evaluate every resulting policy with evaluation.evaluate_agent in the target env: `eval_episodes` episodes
     with the same reset seeds for every method of a seed.

Outputs in `out`: results.json (settings, one row per method x condition x seed with the per-episode returns
and held-out KLs, and the mean / SEM summary), table.md (mean +- SEM over seeds), plot.png. For envs that report
lane metrics (redraw_sim's Duckietown envs: info["episode"] at the end of an episode) the rows also hold
`lane` (evaluation.lane_metrics) and table.md / plot.png take the layout of the paper's Duckiebot table
(METHOD.md 9): per condition dense reward per step, lap time, centre offset and laps per episode. Every stage
writes into its own folder (pretrain/, data/, runs/) and is skipped when it is already complete, so an
interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redraw_common.errors import RedrawInputError

METHODS = ("dreamer_zeroshot", "dreamer_finetune", "draw_zeroshot", "draw_finetune", "redraw")
MODEL_OF = {"dreamer_zeroshot": "dreamer", "dreamer_finetune": "dreamer", "draw_zeroshot": "draw", "draw_finetune": "draw", "redraw": "draw"}
LABELS = {"dreamer_zeroshot": "Dreamer zero-shot", "dreamer_finetune": "Dreamer finetune", "draw_zeroshot": "DRAW zero-shot",
          "draw_finetune": "DRAW finetune", "redraw": "ReDRAW"}
TARGET_DRIVERS = ("auto", "random", "scripted")
#: the paper's Duckiebot columns (METHOD.md 9) and laps per episode: key of evaluation.lane_metrics -> header
LANE_COLUMNS = {"dense_reward": "dense reward / step ↑", "lap_time_s": "lap time s ↓", "centre_offset_cm": "centre offset cm ↓",
                "laps": "laps / episode ↑"}


class CompareError(RedrawInputError):
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
    env_kwargs: dict[str, Any] = field(default_factory=dict)   # target data collection (and every model without its own)
    model_env_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)   # per model ("draw", "dreamer"): its env's
    pretrain_steps: int | None = None          # default: config run.steps
    updates: int | None = None                 # offline updates of calibration / finetuning (default: calibrate.updates)
    sizes: list[int] = field(default_factory=lambda: [2000])   # target dataset sizes, transitions
    target_driver: str = "auto"
    eval_episodes: int = 10
    threads: int = 1
    jobs: int = 1
    draw_checkpoint: str | None = None         # a pretrained DRAW checkpoint used for every seed instead of pretraining
    dreamer_checkpoint: str | None = None      # the same for the Dreamer baselines
    progress: bool = False                     # progress bars of the offline runs

    def kwargs_for(self, model: str) -> dict[str, Any]:
        """The env kwargs a model acts in (its checkpoint's, e.g. DRAW's action history; else the common ones)."""
        return dict(self.model_env_kwargs.get(model, self.env_kwargs))

    def check(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise CompareError(f"unknown methods {unknown or self.methods}; expected a comma-separated subset of {list(METHODS)}")
        if not self.target_perturbs:
            raise CompareError("give at least one target condition (--target-perturb, e.g. reversed)")
        if len(set(self.target_perturbs)) != len(self.target_perturbs):
            raise CompareError(f"target conditions must be distinct, found {self.target_perturbs}")
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
        for model in ("draw", "dreamer"):
            if self.checkpoint_of(model) is not None:
                pretrained_manifest(self.checkpoint_of(model), model)

    def checkpoint_of(self, model: str) -> str | None:
        return self.draw_checkpoint if model == "draw" else self.dreamer_checkpoint

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in (text or "nominal"))


def pretrained_manifest(path: str | Path, model: str) -> dict[str, Any]:
    """The manifest of a given pretrained checkpoint, checked to be a 'pretrain' checkpoint of `model`."""
    from .checkpoint import CheckpointError, read_manifest

    try:
        _, manifest = read_manifest(path)
    except (CheckpointError, OSError, ValueError) as exc:
        raise CompareError(f"--{model}-checkpoint {path}: not a readable checkpoint ({exc})") from None
    found = manifest.get("config", {}).get("model", "draw")
    if found != model:
        raise CompareError(f"--{model}-checkpoint {path}: expected a {model} model, found a {found} model")
    if manifest.get("kind") != "pretrain":
        raise CompareError(f"--{model}-checkpoint {path}: expected a pretrained ('pretrain') checkpoint, found kind {manifest.get('kind')!r}")
    return manifest


def checkpoint_env(path: str | Path) -> tuple[str, dict[str, Any]]:
    """The env id and kwargs a checkpoint was pretrained in (its manifest's extra.env, else config env)."""
    from .checkpoint import read_manifest

    _, manifest = read_manifest(path)
    env = manifest.get("extra", {}).get("env") or manifest["config"]["env"]
    if not env.get("id"):
        raise CompareError(f"{path} does not record the env it was pretrained in (its dataset had no dataset.json); give --env")
    return str(env["id"]), dict(env.get("kwargs") or {})


def condition_label(perturb: str) -> str:
    return perturb or "nominal"


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

    given = s.checkpoint_of(model)
    if given is not None:
        return Path(given)
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


def resolve_driver(env, name: str) -> str:
    """`auto` -> `scripted` for envs with a lane state (redraw_sim's ExploreDriver, as the main job), else `random`."""
    if name != "auto":
        return name
    return "scripted" if hasattr(env.unwrapped, "lane_state") else "random"


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
    env = None
    driver_name = s.target_driver
    if driver_name == "auto":
        env = make_env(s.env, perturb, **dict(s.env_kwargs))
        driver_name = resolve_driver(env, driver_name)
    if info and info.get("driver") != driver_name:
        raise CompareError(f"{root} holds target data of the {info.get('driver')!r} driver, these settings ask for {driver_name!r}; "
                           f"use another --out (the runs there were trained on that data)")
    if not info or info.get("transitions", 0) < need:
        env = env or make_env(s.env, perturb, **dict(s.env_kwargs))
        data_seed = 7_000_000 + 1000 * seed
        driver_class = "uniform random"
        if driver_name == "random":
            rng = np.random.default_rng(data_seed)
            dim = int(np.prod(env.action_space.shape))

            def act(obs):
                return rng.uniform(-1.0, 1.0, dim)
        else:
            driver = scripted_driver(env, data_seed)
            driver_class = type(driver).__name__

            def act(obs):
                return driver.act(driver_input(env, driver, obs))
        for old in full.glob("*.npz") if full.is_dir() else []:
            old.unlink()
        transitions, i, returns = 0, 0, []
        while transitions < need:
            if driver_name == "scripted":
                driver.reset(data_seed + i)
            metrics, eps = run_episodes(env, act, 1, data_seed + i, keep=True)
            ep = eps[0]
            ep.pop("reward")
            save_episode(full / f"ep_{i:06d}.npz", ep)
            transitions += len(ep["image"]) - 1
            returns.append(metrics["return_mean"])
            i += 1
        info = {"env": s.env, "perturb": perturb, "driver": driver_name, "driver_class": driver_class, "seed": data_seed, "episodes": i,
                "transitions": transitions, "return_mean": float(np.mean(returns)), "reward_free": True}
        _write_json(root / "data.json", info)
        log(f"seed {seed}: collected {transitions} reward-free transitions ({i} episodes, {driver_class} driver) in {s.env} "
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


def fit_vector(folder: Path, pretrained: Path) -> Path:
    """The target data for a model whose vector is the leading part of the data's (the Duckiebot layout: a
    velocity-only Dreamer next to DRAW's velocity + past actions, redraw_common.observation): a sibling folder of
    the same episodes with the vector cut to the model's size (made once); the folder itself when they match."""
    from redraw_common.episodes import episode_paths, load_episode, save_episode

    from .checkpoint import read_manifest

    want = int(read_manifest(pretrained)[1]["model"].get("vector_dim") or 0)
    paths = episode_paths(folder)
    with np.load(paths[0], allow_pickle=False) as f:
        have = int(f["vector"].shape[1]) if "vector" in f.files else 0
    if want == have:
        return folder
    if not 0 < want < have:
        raise CompareError(f"{folder}: the target data's vector has {have} entries, the model {pretrained} needs {want}")
    out = folder.parent / f"{folder.name}_vector{want}"
    if not (out / ".complete").exists():
        out.mkdir(parents=True, exist_ok=True)
        for p in paths:
            ep = dict(load_episode(p))
            ep["vector"] = np.ascontiguousarray(ep["vector"][:, :want])
            save_episode(out / p.name, ep)
        (out / ".complete").write_text("")
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


def evaluate_stage(s: CompareSettings, checkpoint: Path, perturb: str, seed: int, cache: Path, model: str = "draw") -> dict[str, Any]:
    """The one evaluation of every method: sampled actions, eval_episodes episodes with common reset seeds."""
    import torch

    from .checkpoint import load_agent
    from .envs import make_env
    from .evaluation import evaluate_agent

    done = _read_json(cache)
    if done and done.get("episodes") == s.eval_episodes:
        return done
    agent, manifest, _ = load_agent(checkpoint, "cpu", optimizers=False)
    env = make_env(s.env, perturb, **s.kwargs_for(model))
    metrics = evaluate_agent(agent, env, s.eval_episodes, seed=1_000_000 + 1000 * int(seed), device=torch.device("cpu"))
    metrics.update({"checkpoint": str(checkpoint), "kind": manifest["kind"], "perturb": perturb})
    _write_json(cache, metrics)
    return metrics


@contextmanager
def seed_lock(out: Path, seed: int):
    """Hold `out`/.seed<N>.lock while a process runs seed N: resuming restarts unfinished stages from scratch, so a
    second process on the same seed and folder would wipe the first one's stage in flight. The OS drops the lock
    when the holder exits, however it ends."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    path = out / f".seed{seed}.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise CompareError(f"seed {seed} of {out} is being run by another process (pid {holder}); wait for it to end, "
                               f"or give this run other --seeds or another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield                                # closing the file releases the lock


def run_seed(s: CompareSettings, seed: int, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every stage of one seed (holding its seed_lock); returns its result rows."""
    with seed_lock(Path(s.out), seed):
        return _run_seed(s, seed, log)


def _run_seed(s: CompareSettings, seed: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
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
                                                            s.out / "runs" / method / slug(perturb) / f"seed{seed}" / "eval.json", model)
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
                        target = fit_vector(folder, pretrained[model])
                        if method == "redraw":
                            summary = calibrate(config, pretrained[model], target, run_dir, progress=s.progress, resume=False)
                        else:
                            summary = finetune(config, pretrained[model], target, run_dir, method, progress=s.progress)
                    extra["holdout"] = summary.get("holdout", {})
                    extra["train_steps"] = summary.get("dataset", {}).get("train_steps")
                    extra["updates"] = summary.get("counters", {}).get("updates")
                    metrics = evaluate_stage(s, run_dir, perturb, seed, run_dir / "eval.json", model)
                    checkpoint = run_dir
                rows.append({"method": method, "perturb": perturb, "size": int(size), "seed": int(seed),
                             "return_mean": metrics["return_mean"], "return_std": metrics["return_std"], "returns": metrics["returns"],
                             "info": {k: v for k, v in metrics.items() if k.startswith("info_")}, "checkpoint": str(checkpoint),
                             "target_data": {"driver": transitions.get("driver"), "collected": transitions.get("transitions")},
                             "seconds": time.time() - t0, **extra})
                if metrics.get("lane"):
                    rows[-1]["lane"] = metrics["lane"]
                log(f"seed {seed}: {method:17s} {perturb or 'nominal'} n={size}: return {metrics['return_mean']:.2f}"
                    + (f"; {lane_line(metrics['lane'])}" if metrics.get("lane") else ""))
    return rows


# ----------------------------------------------------------------------------------------------------------
# aggregation and outputs


def _mean_sem(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def lane_line(lane: dict[str, Any]) -> str:
    lap = "no lap" if lane.get("lap_time_s") is None else f"lap {lane['lap_time_s']:.1f} s"
    return (f"dense reward {lane['dense_reward']:.3f}/step, {lap}, centre offset {lane['centre_offset_cm']:.2f} cm, "
            f"{lane['laps']:.2f} laps/episode")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and SEM over seeds per method x condition x size: of the return (mean, sem, values) and, when the rows
    hold lane metrics, of each LANE_COLUMNS metric under `lane` (over the seeds that have a value: a seed without a
    completed lap has no lap time; `seeds` says how many had one, mean None when none did)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["perturb"], r["size"]), []).append(r)
    out = []
    for (method, perturb, size), group in groups.items():
        mean, sem = _mean_sem([r["return_mean"] for r in group])
        entry: dict[str, Any] = {"method": method, "perturb": perturb, "size": size, "seeds": len(group), "mean": mean, "sem": sem,
                                 "values": [float(r["return_mean"]) for r in group]}
        if any(r.get("lane") for r in group):
            entry["lane"] = {}
            for key in LANE_COLUMNS:
                values = [float(r["lane"][key]) for r in group if r.get("lane") and r["lane"].get(key) is not None]
                m, e = _mean_sem(values) if values else (None, None)
                entry["lane"][key] = {"mean": m, "sem": e, "seeds": len(values), "values": values}
        out.append(entry)
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(out, key=lambda d: (d["perturb"], d["size"], order[d["method"]]))


def _conditions(summary: list[dict[str, Any]], s: CompareSettings) -> list[tuple[str, int]]:
    """(perturb, size) in the order of the settings' target conditions, then size."""
    rank = {p: i for i, p in enumerate(s.target_perturbs)}
    return sorted({(d["perturb"], d["size"]) for d in summary}, key=lambda c: (rank.get(c[0], len(rank)), c[0], c[1]))


def lane_cell(stat: dict[str, Any] | None, seeds: int) -> str:
    """mean ± SEM (2 decimals); "—" when no seed has a value (a lap time without a completed lap); "(k/n seeds)"
    when only some seeds have one."""
    if not stat or stat["mean"] is None:
        return "—"
    text = f"{stat['mean']:.2f} ± {stat['sem']:.2f}"
    return text if stat["seeds"] == seeds else f"{text} ({stat['seeds']}/{seeds} seeds)"


def _provenance(s: CompareSettings) -> str:
    models = sorted({MODEL_OF[m] for m in s.methods})
    given = [m for m in models if s.checkpoint_of(m) is not None]
    parts = []
    if given:
        parts.append("Pretrained models: " + "; ".join(f"{'DRAW' if m == 'draw' else 'Dreamer'}: the checkpoint {s.checkpoint_of(m)}"
                                                        for m in given)
                     + ", the same for every seed, so the seeds vary the target data collection, the calibration / finetune seed "
                       "and the evaluation episodes' seeds, not the pretraining.")
    trained = [m for m in models if m not in given]
    if trained:
        parts.append(f"Pretrained per seed ({', '.join('DRAW' if m == 'draw' else 'Dreamer' for m in trained)}): presets {s.presets}, "
                     f"explore {s.explore}, {s.pretrain_steps if s.pretrain_steps is not None else 'config run.steps'} env steps in "
                     f"perturb {s.source_perturb or 'nominal'!r}.")
    driver = {"scripted": "scripted exploration driver (redraw_sim's ExploreDriver for lane envs)", "random": "uniform random actions",
              "auto": "exploration driver (ExploreDriver for lane envs, else uniform random actions)"}
    parts.append(f"Offline methods: {s.updates if s.updates is not None else 'config calibrate.updates'} updates on reward-free "
                 f"target data of the {driver.get(s.target_driver, s.target_driver)}, collected in the target condition "
                 f"(nominal: in the nominal env, the paper's 'unmodified real'), of which calibrate.holdout of the episodes "
                 f"(at least one) are held out for the KL metric and not trained on.")
    return " ".join(parts)


def lane_table_markdown(summary: list[dict[str, Any]], s: CompareSettings) -> str:
    """The paper's Duckiebot table (METHOD.md 9): per condition dense reward ↑, lap time s ↓, centre offset ↓ (+ laps)."""
    conds = _conditions(summary, s)
    sizes = {n for _, n in conds}
    cell = {(d["method"], d["perturb"], d["size"]): d for d in summary}
    head = ["Method"]
    for p, n in conds:
        name = condition_label(p) + (f" (n={n})" if len(sizes) > 1 else "")
        head += [f"{name}: {label}" if i == 0 else label for i, label in enumerate(LANE_COLUMNS.values())]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in [m for m in METHODS if m in s.methods]:
        cells = [LABELS[method]]
        for p, n in conds:
            d = cell.get((method, p, n))
            for key in LANE_COLUMNS:
                cells.append(lane_cell(d["lane"][key], d["seeds"]) if d and d.get("lane") else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def return_table_markdown(summary: list[dict[str, Any]], s: CompareSettings) -> str:
    conds = _conditions(summary, s)
    cell = {(d["method"], d["perturb"], d["size"]): d for d in summary}
    head = ["Method"] + [f"{condition_label(p)}, {n} target transitions" for p, n in conds]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in [m for m in METHODS if m in s.methods]:
        cells = [LABELS[method]]
        for p, n in conds:
            d = cell.get((method, p, n))
            cells.append("—" if d is None else f"{d['mean']:.2f} ± {d['sem']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_markdown(summary: list[dict[str, Any]], s: CompareSettings, note: str = "") -> str:
    seeds = ", ".join(str(x) for x in s.seeds)
    over = f"mean ± SEM over {len(s.seeds)} seeds: {seeds}; per seed {s.eval_episodes} evaluation episodes with sampled actions"
    tail = (f"\n{note}\n" if note else "")
    if any(d.get("lane") for d in summary):
        sizes = sorted({d["size"] for d in summary})
        text = (f"Lane following in {s.env}, the layout of the paper's Duckiebot table ({over}). Dense reward: reward per step "
                f"pooled over the evaluation episodes' steps; lap time: mean time of the completed laps (— = no lap completed; "
                f"(k/n seeds) = only k seeds completed one, the mean is over those); centre offset: mean distance from the lane "
                f"centre per step, cm; laps / episode: laps completed per evaluation episode. Target data: "
                f"{', '.join(str(n) for n in sizes)} transitions per condition and seed.\n{_provenance(s)}\n\n")
        return (text + lane_table_markdown(summary, s) + f"\nEpisode return ({over}):\n\n" + return_table_markdown(summary, s) + tail)
    text = f"Return in the target env {s.env} ({over}). {_provenance(s)}\n\n"
    return text + return_table_markdown(summary, s) + tail


def plot(summary: list[dict[str, Any]], s: CompareSettings, path: Path) -> None:
    if any(d.get("lane") for d in summary):
        return plot_lane(summary, s, path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    perturbs = [p for p, _ in _conditions(summary, s)]
    perturbs = list(dict.fromkeys(perturbs))
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


def plot_lane(summary: list[dict[str, Any]], s: CompareSettings, path: Path) -> None:
    """One panel per lane metric; groups of bars per condition, one bar per method (mean ± SEM, dots = seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = _conditions(summary, s)
    sizes = {n for _, n in conds}
    methods = [m for m in METHODS if m in s.methods]
    cell = {(d["method"], d["perturb"], d["size"]): d for d in summary}
    colors = {m: plt.cm.tab10(i) for i, m in enumerate(METHODS)}
    width = 0.8 / len(methods)
    fig, axes = plt.subplots(1, len(LANE_COLUMNS), figsize=(max(12.0, 1.1 * len(conds) * len(methods) + 4), 3.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], LANE_COLUMNS.items()):
        for j, m in enumerate(methods):
            for i, (p, n) in enumerate(conds):
                d = cell.get((m, p, n))
                stat = d["lane"][key] if d and d.get("lane") else None
                x = i - 0.4 + width * (j + 0.5)
                if stat is None or stat["mean"] is None:
                    ax.text(x, 0.02, "—", ha="center", va="bottom", fontsize=9, color=colors[m], transform=ax.get_xaxis_transform())
                    continue
                ax.bar(x, stat["mean"], width, yerr=stat["sem"], capsize=2, color=colors[m], label=LABELS[m] if i == 0 else None)
                ax.scatter(np.full(len(stat["values"]), x), stat["values"], color="k", s=6, zorder=3)
        ax.set_xticks(np.arange(len(conds)), [condition_label(p) + (f"\nn={n}" if len(sizes) > 1 else "") for p, n in conds], fontsize=8)
        ax.set_xlim(-0.5, len(conds) - 0.5)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[m]) for m in methods]
    fig.legend(handles, [LABELS[m] for m in methods], loc="lower center", ncol=len(methods), fontsize=8, frameon=False)
    fig.suptitle(f"{s.env}: mean ± SEM over {len(s.seeds)} seeds (— = no value, e.g. no lap completed)", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def prepare(s: CompareSettings, log: Callable[[str], None]) -> None:
    """Resolve the `auto` target driver, check given pretrained checkpoints against the env (image shape, vector and
    action dims) and against what `out` was run with before (pretrained.json), so that a resumed comparison does
    not mix models."""
    from .envs import env_spec, make_env

    env = make_env(s.env, "", **dict(s.env_kwargs))
    s.target_driver = resolve_driver(env, s.target_driver)
    data_vector = env_spec(env)["vector_dim"]
    env.close()
    used: dict[str, Any] = {}
    for model in sorted({MODEL_OF[m] for m in s.methods}):
        path = s.checkpoint_of(model)
        if path is None:
            used[model] = {"path": None, "weights_sha256": None, "pretrained": "per seed"}
            continue
        manifest = pretrained_manifest(path, model)
        want = manifest["model"]
        env = make_env(s.env, "", **s.kwargs_for(model))
        spec = env_spec(env)
        env.close()
        if int(want.get("vector_dim") or 0) > data_vector:
            raise CompareError(f"--{model}-checkpoint {path} needs a {want.get('vector_dim')}-dim vector, the target data of {s.env} "
                               f"(kwargs {dict(s.env_kwargs)}) has {data_vector}: collect with the widest model's env kwargs")
        found = {"image_shape": list(spec["image_shape"]), "vector_dim": spec["vector_dim"], "action_dim": spec["action_dim"]}
        expect = {"image_shape": list(want["image_shape"]), "vector_dim": int(want.get("vector_dim") or 0), "action_dim": int(want["action_dim"])}
        if found != expect:
            raise CompareError(f"--{model}-checkpoint {path} expects observations/actions {expect}, the env {s.env} "
                               f"(kwargs {s.kwargs_for(model)}) gives {found}")
        used[model] = {"path": str(path), "weights_sha256": manifest.get("files", {}).get("weights.safetensors"),
                       "updates": manifest.get("counters", {}).get("updates")}
        log(f"{model}: pretrained checkpoint {path} ({used[model]['updates']} updates) for every seed; the seeds vary the target "
            f"data, the calibration / finetune seed and the evaluation episodes")
    before = _read_json(s.out / "pretrained.json")
    if before is not None:
        for model in set(before) & set(used):
            a, b = before[model], used[model]
            if a.get("weights_sha256") != b.get("weights_sha256"):
                raise CompareError(f"{s.out} was run with the {model} model {a.get('path') or 'pretrained per seed'}, these settings give "
                                   f"{b.get('path') or 'pretraining per seed'}; use another --out")
    _write_json(s.out / "pretrained.json", {**(before or {}), **used})


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
    prepare(s, log)
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
