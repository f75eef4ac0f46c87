"""What each cell of a comparison (redraw_training.compare) computes, on folders of the node it runs on.

    pretrain  pretrain/{model}_seed{seed}                    a DRAW or DreamerV3 model pretrained in the source env
    data      data/{condition}_seed{seed}                    max(sizes) reward-free transitions of the target driver
    offline   runs/{method}/{condition}_n{size}/seed{seed}   ReDRAW or a finetune on the nested first `size` transitions
    evaluate  evals/{method}/{condition}[_n{size}]/seed{seed}  one policy (zero-shot: the pretrained one) in the target env

`execute(s, cell, inputs, out, log)` runs one of them into the empty folder `out` (cluster.run_graph's contract).
Every cell seeds what it draws from its own (seed, stage) and sets the torch threads, so its result does not depend
on what ran before it in the same worker process or on which node it ran.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from redraw_common.files import DATASET_JSON, read_json, write_json

from .cluster import Cell
from .compare_settings import MODEL_OF, CompareError, CompareSettings


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


# ----------------------------------------------------------------------------------------------------------
# the four kinds of cell


def pretrain_cell(s: CompareSettings, model: str, seed: int, out: Path, log: Callable[[str], None]) -> None:
    from .pretrain import pretrain

    summary = pretrain(base_config(s, model, seed), out, progress=False)
    cov = {k: v.get("coverage") for k, v in summary.get("collection", {}).items() if k.startswith("coverage_")}
    log(f"seed {seed}: pretrained {model} ({s.explore}, {summary['counters']['env_steps']} env steps, "
        f"{summary['counters']['updates']} updates); coverage {cov}")


def data_cell(s: CompareSettings, perturb: str, seed: int, out: Path, log: Callable[[str], None], policy: Path | None = None) -> None:
    """Reward-free target data of the target driver (compare.prepare resolved `auto`; `policy`: the checkpoint whose
    task policy drives): max(sizes) transitions in out/all, and out/dataset.json."""
    from .envs import make_env
    from .rollout import make_actor, run_episodes, save_episodes

    env = make_env(s.env, perturb, **dict(s.env_kwargs))
    data_seed = 7_000_000 + 1000 * seed
    if s.target_driver == "policy":
        act = make_actor(env, str(policy), data_seed, action_noise=s.target_noise)
        driver_class = f"{s.driver_model()} source task policy, action noise std {s.target_noise:g}"
    else:
        act = make_actor(env, s.target_driver, data_seed)
        driver_class = type(act.driver).__name__ if s.target_driver == "scripted" else "uniform random"
    metrics, eps = run_episodes(env, act, 0, data_seed, keep=True, transitions=max(s.sizes))
    env.close()
    transitions = sum(save_episodes(out / "all", eps, keep_reward=False))
    write_json(out / DATASET_JSON, {"env": s.env, "perturb": perturb, "driver": s.target_driver, "driver_class": driver_class,
                                    "seed": data_seed, "episodes": len(eps), "transitions": transitions,
                                    "return_mean": metrics["return_mean"], "reward_free": True})
    log(f"seed {seed}: collected {transitions} reward-free transitions ({len(eps)} episodes, {driver_class} driver) in {s.env} "
        f"perturb {perturb!r}")


def size_folder(data: Path, size: int) -> Path:
    """data/n{size}: the first whole episodes of data/all that hold at least `size` transitions (made once; hard links
    where the filesystem allows), so that the sweep's sizes are nested prefixes of one collection."""
    from redraw_common.episodes import episode_paths

    folder = data / f"n{int(size)}"
    if folder.is_dir():
        return folder
    scratch = data / f".n{int(size)}.tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    total = 0
    for p in episode_paths(data / "all"):
        try:
            os.link(p, scratch / p.name)
        except FileExistsError:
            pass
        except OSError:
            (scratch / p.name).write_bytes(p.read_bytes())
        with np.load(p, allow_pickle=False) as f:
            total += len(f["is_first"]) - 1
        if total >= size:
            break
    os.replace(scratch, folder)
    return folder


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


def evaluate_into(s: CompareSettings, checkpoint: Path, perturb: str, seed: int, model: str, out: Path) -> dict[str, Any]:
    """The one evaluation of every method (evaluation.evaluate) into out/eval.json: sampled actions, eval_episodes
    episodes with common reset seeds per seed, in the env kwargs the model acts in."""
    from .evaluation import evaluate

    metrics = evaluate(checkpoint, s.env, perturb, s.eval_episodes, seed=1_000_000 + 1000 * int(seed), env_kwargs=s.kwargs_for(model))
    write_json(out / "eval.json", metrics)
    return metrics


def offline_cell(s: CompareSettings, method: str, size: int, seed: int, pretrained: Path, data: Path, out: Path,
                 log: Callable[[str], None]) -> None:
    from .calibration import calibrate
    from .finetune import finetune

    config = offline_config(s, pretrained, seed)
    target = fit_vector(size_folder(data, size), pretrained)
    if method == "redraw":
        summary = calibrate(config, pretrained, target, out, progress=False, resume=False)
    else:
        summary = finetune(config, pretrained, target, out, method, progress=False)
    log(f"seed {seed}: {method} n={size}: {summary['counters']['updates']} updates on {summary['dataset']['train_steps']} "
        f"transitions; held-out {summary.get('holdout', {})}")


def evaluate_cell(s: CompareSettings, method: str, perturb: str, seed: int, policy: Path, out: Path, log: Callable[[str], None]) -> None:
    metrics = evaluate_into(s, policy, perturb, seed, MODEL_OF[method], out)
    log(f"seed {seed}: {method} {perturb or 'nominal'}: return {metrics['return_mean']:.2f}")


def settings_of(s: CompareSettings, stage: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The settings a cell's result depends on beyond its own spec (method, condition, size, seed): what a resumed
    comparison must agree with. The target data does not depend on the sizes: a larger max(sizes) collects again
    with the same seeds, whose episodes extend the smaller collection (the nested prefixes stay the same)."""
    from .config import for_model

    if stage == "pretrain":
        return {"env": s.env, "env_kwargs": s.env_kwargs, "source_perturb": s.source_perturb, "presets": s.presets,
                "explore": s.explore, "pretrain_steps": s.pretrain_steps, "overrides": for_model(s.overrides, spec["model"])}
    if stage == "data":
        noise = {"target_noise": s.target_noise} if s.target_driver == "policy" else {}
        return {"env": s.env, "env_kwargs": s.env_kwargs, "target_driver": s.target_driver, **noise}
    if stage == "offline":
        return {"updates": s.updates, "overrides": for_model(s.overrides, MODEL_OF[spec["method"]])}
    return {"env": s.env, "env_kwargs": s.kwargs_for(MODEL_OF[spec["method"]]), "eval_episodes": s.eval_episodes}


def execute(s: CompareSettings, cell: Cell, inputs: dict[str, Path], out: Path, log: Callable[[str], None]) -> None:
    """Run one cell of the comparison `s` (cluster.run_graph's `execute`)."""
    import torch

    torch.set_num_threads(max(1, int(s.threads)))
    spec = cell.spec
    if cell.stage == "pretrain":
        pretrain_cell(s, spec["model"], spec["seed"], out, log)
    elif cell.stage == "data":
        data_cell(s, spec["perturb"], spec["seed"], out, log, inputs[cell.deps[0]] if cell.deps else None)
    elif cell.stage == "offline":
        offline_cell(s, spec["method"], spec["size"], spec["seed"], inputs[cell.deps[0]], inputs[cell.deps[1]], out, log)
    elif cell.stage == "evaluate":
        evaluate_cell(s, spec["method"], spec["perturb"], spec["seed"], inputs[cell.deps[0]], out, log)
    else:
        raise ValueError(f"unknown stage {cell.stage!r}")


def data_info(folder: Path) -> dict[str, Any]:
    return read_json(folder / DATASET_JSON) or {}
