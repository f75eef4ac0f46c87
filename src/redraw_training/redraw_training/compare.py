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
     (calibration.calibrate), all offline methods with the same `updates` on the same data;
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

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from redraw_common.files import DATASET_JSON, read_json, write_json

from .compare_report import lane_line, plot, summarize, table_markdown
from .compare_settings import (
    MODEL_OF,
    CompareError,
    CompareSettings,
    pretrained_manifest,
    slug,
)

# ----------------------------------------------------------------------------------------------------------
# stages


def base_config(s: CompareSettings, model: str, seed: int):
    from .config import for_model, load_config

    presets = list(s.presets)
    if s.explore == "plan2explore":
        presets.append("plan2explore")
    if model == "dreamer":
        presets.append("dreamer")
    config = load_config(presets, for_model(s.overrides, model))
    changes: dict[str, Any] = {"seed": int(seed), "threads": int(s.threads), "explore": s.explore, "env.id": s.env,
                               "env.perturb": s.source_perturb, "run.eval_every": 0, "run.eval_eps": 0, "run.save_every": 0}
    if s.env_kwargs:
        changes["env.kwargs"] = dict(s.env_kwargs)
    if s.pretrain_steps is not None:
        changes["run.steps"] = int(s.pretrain_steps)
    return config.update(changes)


def pretrain_stage(s: CompareSettings, model: str, seed: int, log: Callable[[str], None]) -> Path:
    from .pretrain import pretrain

    given = s.checkpoint_of(model)
    if given is not None:
        return Path(given)
    folder = s.out / "pretrain" / f"{model}_seed{seed}"
    if read_json(folder / "summary.json"):
        return folder
    config = base_config(s, model, seed)
    t0 = time.time()
    summary = pretrain(config, folder, progress=False)
    cov = {k: v.get("coverage") for k, v in summary.get("collection", {}).items() if k.startswith("coverage_")}
    log(f"seed {seed}: pretrained {model} ({s.explore}, {summary['counters']['env_steps']} env steps, "
        f"{summary['counters']['updates']} updates) in {time.time() - t0:.0f} s; coverage {cov}")
    return folder


def data_stage(s: CompareSettings, perturb: str, seed: int, log: Callable[[str], None]) -> dict[int, Path]:
    """Reward-free target data of the target driver (prepare resolved `auto`): max(sizes) transitions; folders of
    nested episode prefixes per size."""
    from redraw_common.episodes import episode_paths

    from .envs import make_env
    from .rollout import make_actor, run_episodes, save_episodes

    root = s.out / "data" / f"{slug(perturb)}_seed{seed}"
    full = root / "all"
    need = max(s.sizes)
    info = read_json(root / DATASET_JSON)
    if info and info.get("driver") != s.target_driver:
        raise CompareError(f"{root} holds target data of the {info.get('driver')!r} driver, these settings ask for {s.target_driver!r}; "
                           f"use another --out (the runs there were trained on that data)")
    if not info or info.get("transitions", 0) < need:
        env = make_env(s.env, perturb, **dict(s.env_kwargs))
        data_seed = 7_000_000 + 1000 * seed
        act = make_actor(env, s.target_driver, data_seed)
        driver_class = type(act.driver).__name__ if s.target_driver == "scripted" else "uniform random"
        for old in full.glob("*.npz") if full.is_dir() else []:
            old.unlink()
        metrics, eps = run_episodes(env, act, 0, data_seed, keep=True, transitions=need)
        transitions = sum(save_episodes(full, eps, keep_reward=False))
        info = {"env": s.env, "perturb": perturb, "driver": s.target_driver, "driver_class": driver_class, "seed": data_seed,
                "episodes": len(eps), "transitions": transitions, "return_mean": metrics["return_mean"], "reward_free": True}
        write_json(root / DATASET_JSON, info)
        log(f"seed {seed}: collected {transitions} reward-free transitions ({len(eps)} episodes, {driver_class} driver) in {s.env} "
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
    from .config import apply, config_from_dict, for_model

    _, manifest = read_manifest(pretrained)
    base = config_from_dict(manifest["config"], manifest.get("presets", []))
    config = apply(base, [], for_model(s.overrides, base.model))
    changes: dict[str, Any] = {"seed": int(seed), "threads": int(s.threads), "calibrate.eval_every": 0, "calibrate.save_every": 0}
    if s.updates is not None:
        changes["calibrate.updates"] = int(s.updates)
    return config.update(changes)


def evaluate_stage(s: CompareSettings, checkpoint: Path, perturb: str, seed: int, cache: Path, model: str = "draw") -> dict[str, Any]:
    """The one evaluation of every method (evaluation.evaluate, cached in `cache`): sampled actions, eval_episodes
    episodes with common reset seeds, in the env kwargs the model acts in."""
    from .evaluation import evaluate

    done = read_json(cache)
    if done and done.get("episodes") == s.eval_episodes:
        return done
    metrics = evaluate(checkpoint, s.env, perturb, s.eval_episodes, seed=1_000_000 + 1000 * int(seed), env_kwargs=s.kwargs_for(model))
    write_json(cache, metrics)
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

    from .calibration import calibrate
    from .finetune import finetune

    torch.set_num_threads(max(1, int(s.threads)))
    models = sorted({MODEL_OF[m] for m in s.methods})
    pretrained = {m: pretrain_stage(s, m, seed, log) for m in models}
    rows = []
    for perturb in s.target_perturbs:
        data = data_stage(s, perturb, seed, log)
        zero_cache: dict[str, dict[str, Any]] = {}
        for size, folder in data.items():
            transitions = read_json(folder.parent / DATASET_JSON) or {}
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
                    summary = read_json(run_dir / "summary.json")
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


def prepare(s: CompareSettings, log: Callable[[str], None]) -> None:
    """Resolve the `auto` target driver, check given pretrained checkpoints against the env (image shape, vector and
    action dims) and against what `out` was run with before (pretrained.json), so that a resumed comparison does
    not mix models."""
    from .envs import env_spec, make_env

    env = make_env(s.env, "", **dict(s.env_kwargs))
    if s.target_driver == "auto":   # the env package's exploration driver for envs with a lane state, as the main job
        s.target_driver = "scripted" if hasattr(env.unwrapped, "lane_state") else "random"
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
    before = read_json(s.out / "pretrained.json")
    if before is not None:
        for model in set(before) & set(used):
            a, b = before[model], used[model]
            if a.get("weights_sha256") != b.get("weights_sha256"):
                raise CompareError(f"{s.out} was run with the {model} model {a.get('path') or 'pretrained per seed'}, these settings give "
                                   f"{b.get('path') or 'pretraining per seed'}; use another --out")
    write_json(s.out / "pretrained.json", {**(before or {}), **used})


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
    write_json(s.out / "results.json", results)
    (s.out / "table.md").write_text(table_markdown(summary, s, note))
    plot(summary, s, s.out / "plot.png")
    return results
