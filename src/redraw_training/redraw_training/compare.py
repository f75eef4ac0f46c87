"""The paper's comparison in one call: methods x target conditions x sizes x seeds as a task graph on Ray, one
evaluation path, one results format.

    compare(CompareSettings(env="redraw/PointGoal-v0", target_perturbs=["reversed"], seeds=[0, 1, 2],
                            methods=list(METHODS), out=Path("runs/cmp"), presets=["tiny"]))
    compare(CompareSettings(env="redraw/DuckietownLoop-v0", target_perturbs=["", "reversed"], out=Path("runs/dt"),
                            draw_checkpoint="models/duckietown_draw", dreamer_checkpoint="models/duckietown_dreamer",
                            ray_address="auto"))

The cells (compare_cells.py says what each computes), each a Ray task that starts as soon as its inputs exist:
  1. pretrain, per model and seed, in the source env (env, source_perturb): a DRAW model (draw_* and redraw) and a
     DreamerV3 model (dreamer_*), each with `explore` (Plan2Explore by default, METHOD.md 4) for `pretrain_steps`
     env steps; or, with `draw_checkpoint` / `dreamer_checkpoint`, that pretrained checkpoint for every seed (then
     the seeds vary only the target data collection, the calibration / finetune seed and the evaluation episodes);
  2. data, per target condition and seed: reward-free target data in the target env (each target perturbation;
     "" = nominal, the paper's "unmodified real") of `target_driver`: max(sizes) transitions, the smaller sizes
     nested prefixes of whole episodes (the dataset-size sweep). `auto` = the env package's exploration driver for
     envs with a lane state (redraw_sim's ExploreDriver, as the main job's explore node), else random actions;
     `scripted` = scripted.scripted_driver for any env; `random` = uniform random actions; `policy` = the seed's
     pretrained source task policy (DRAW's, else Dreamer's; sampled actions plus Gaussian noise of std
     `target_noise`, clipped), a competent driver as the paper's expert target datasets were;
  3. zeroshot, per zero-shot method, condition and seed: the pretrained task policy evaluated as it is;
  4. offline, per offline method, condition, size and seed: finetune (finetune.py) or redraw (calibration.calibrate),
     all with the same `updates` on the same data, then evaluated.
Every evaluation is evaluation.evaluate in the target env: `eval_episodes` episodes with the same reset seeds and the
same action-sampling seed for every method of a seed.

Where it runs: a local Ray instance of `jobs` CPUs (default: the machine's cores) started and stopped here, or the
cluster at `ray_address` ("auto" or HOST:PORT); each cell asks for `threads` CPUs (and a GPU with --set
device=cuda). Workers need no shared filesystem (cluster.py): the driver writes each finished cell into `out`
atomically, with its log in out/logs/. A worker lost mid-cell is retried; a cell that fails for a reason of its own
(bad data, a NaN) fails with its error in results.json and the table, and the rest of the grid goes on. Rerunning
the same command resumes: a cell whose folder is complete is not run again.

Outputs in `out`: results.json (settings, one row per method x condition x size x seed with the per-episode
returns and held-out KLs, the failed cells, and the mean / SEM summary), table.md (mean +- SEM over seeds),
plot.png. For envs that report lane metrics (redraw_sim's Duckietown envs: info["episode"] at the end of an
episode) the rows also hold `lane` (evaluation.lane_metrics) and table.md / plot.png take the layout of the
paper's Duckiebot table (METHOD.md 9): per condition dense reward per step, lap time, centre offset and laps.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from redraw_common.files import DATASET_JSON, read_json, write_json

from .cluster import (
    CELL_JSON,
    Cell,
    folder_lock,
    is_complete,
    is_done,
    ray_session,
    restore_records,
    run_graph,
    write_record,
    write_records,
)
from .compare_cells import base_config, data_info, execute, settings_of, size_folder
from .compare_report import plot, summarize, table_markdown
from .compare_settings import (
    MODEL_OF,
    CompareError,
    CompareSettings,
    pretrained_manifest,
    slug,
)

# ----------------------------------------------------------------------------------------------------------
# the task graph


def pretrain_name(s: CompareSettings, model: str, seed: int) -> str:
    """The input of a model's cells: the given checkpoint (one for every seed) or the seed's pretraining cell."""
    return f"given/{model}" if s.checkpoint_of(model) is not None else f"pretrain/{model}_seed{seed}"


def plan(s: CompareSettings) -> list[Cell]:
    """Every cell of the comparison, each after the cells it needs: pretraining per model and seed (unless given),
    target data per condition and seed, the offline run per offline method, condition, size and seed, and one
    evaluation per policy (a zero-shot policy once per condition, shared by the sizes). Each cell's spec holds the
    settings its result depends on (compare_cells.settings_of), so a resumed comparison with other settings is
    refused rather than mixed."""
    gpu = 1.0 if str(base_config(s, "draw", 0).device).startswith("cuda") else 0.0
    cpus = float(max(1, int(s.threads)))

    def cell(name: str, stage: str, deps: tuple[str, ...], ships: tuple[str, ...] = ("checkpoint/",), **spec: Any) -> Cell:
        return Cell(name, stage, deps, cpus=cpus, gpus=0.0 if stage == "data" else gpu, ships=ships,
                    spec={**spec, "settings": settings_of(s, stage, spec)})

    models = sorted({MODEL_OF[m] for m in s.methods})
    sizes = sorted(set(int(n) for n in s.sizes))
    cells = [cell(pretrain_name(s, model, seed), "pretrain", (), model=model, seed=seed)
             for seed in s.seeds for model in models if s.checkpoint_of(model) is None]
    def driver(seed: int) -> tuple[str, ...]:      # the data cell's input: the policy that drives, if one does
        return (pretrain_name(s, s.driver_model(), seed),) if s.target_driver == "policy" else ()

    cells += [cell(f"data/{slug(p)}_seed{seed}", "data", driver(seed), ("all/", DATASET_JSON), perturb=p, seed=seed)
              for seed in s.seeds for p in s.target_perturbs]
    for seed in s.seeds:
        for p in s.target_perturbs:
            for method in s.methods:
                pre = pretrain_name(s, MODEL_OF[method], seed)
                if method.endswith("zeroshot"):
                    cells.append(cell(f"evals/{method}/{slug(p)}/seed{seed}", "evaluate", (pre,), method=method, perturb=p, seed=seed))
                    continue
                for size in sizes:
                    run = f"runs/{method}/{slug(p)}_n{size}/seed{seed}"
                    cells.append(cell(run, "offline", (pre, f"data/{slug(p)}_seed{seed}"), method=method, perturb=p, size=size, seed=seed))
                    cells.append(cell(f"evals/{method}/{slug(p)}_n{size}/seed{seed}", "evaluate", (run,), method=method, perturb=p,
                                      size=size, seed=seed))
    return cells


def rows_of(s: CompareSettings, cells: list[Cell], failed: dict[str, str]) -> list[dict[str, Any]]:
    """One row per method x condition x size x seed, read from the evaluation cells' folders (so a resumed
    comparison gives the rows of the cells it did not rerun); a failed evaluation gives a row with its `error`."""
    given = {m: s.checkpoint_of(m) for m in ("draw", "dreamer")}
    rows = []
    for c in cells:
        if c.stage != "evaluate":
            continue
        spec = c.spec
        for size in [spec["size"]] if "size" in spec else sorted(set(int(n) for n in s.sizes)):
            row: dict[str, Any] = {"method": spec["method"], "perturb": spec["perturb"], "size": size, "seed": spec["seed"]}
            if c.name in failed:
                rows.append({**row, "error": failed[c.name]})
                continue
            metrics = read_json(s.out / c.name / "eval.json")
            data = read_json(s.out / f"data/{slug(spec['perturb'])}_seed{spec['seed']}" / DATASET_JSON) or {}
            policy = c.deps[0]
            row.update({"return_mean": metrics["return_mean"], "return_std": metrics["return_std"], "returns": metrics["returns"],
                        "info": {k: v for k, v in metrics.items() if k.startswith("info_")},
                        "checkpoint": str(given[MODEL_OF[spec["method"]]] if policy.startswith("given/") else s.out / policy),
                        "target_data": {"driver": data.get("driver"), "collected": data.get("transitions")},
                        "seconds": sum(float((read_json(s.out / name / CELL_JSON) or {}).get("seconds", 0.0))
                                       for name in ([policy, c.name] if policy.startswith("runs/") else [c.name]))})
            if policy.startswith("runs/"):
                summary = read_json(s.out / policy / "summary.json") or {}
                row.update({"holdout": summary.get("holdout", {}), "train_steps": summary.get("dataset", {}).get("train_steps"),
                            "updates": summary.get("counters", {}).get("updates")})
            if metrics.get("lane"):
                row["lane"] = metrics["lane"]
            rows.append(row)
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


def same_models(a: Path, b: Path) -> None:
    """Refuse two pretrained.json files (a sweep's records and its --out) that name other weights for a model."""
    first, second = read_json(a) or {}, read_json(b) or {}
    for model in sorted(set(first) & set(second)):
        if first[model].get("weights_sha256") != second[model].get("weights_sha256"):
            raise CompareError(f"{a} and {b} record other {model} models ({first[model].get('path') or 'pretrained per seed'} vs "
                               f"{second[model].get('path') or 'pretrained per seed'}): the records and the output folder are "
                               f"of two sweeps; use another --out or --record")


def compare(s: CompareSettings, log: Callable[[str], None] | None = None, note: str = "") -> dict[str, Any]:
    """Run every cell not yet done in `out` as Ray tasks (cluster.ray_session: a local instance of `jobs` CPUs, or the
    cluster at `ray_address`) and write results.json, table.md and plot.png. One driver per `out` (its lock). With
    `record`: the records there are restored into `out` first, each finished cell's record is written there as it
    ends, and at the end every cell's and the results' (a folder to commit, from which another machine resumes)."""
    s.check()
    s.out = Path(s.out)
    log = log or (lambda line: print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True))
    started = time.time()
    with folder_lock(s.out, "compare"):
        if s.record is not None:
            same_models(s.record / "pretrained.json", s.out / "pretrained.json")
            restored = restore_records(s.record, s.out)
            if restored:
                log(f"restored {len(restored)} finished cell(s) from the records in {s.record}")
        prepare(s, log)
        if s.record is not None:             # the models the records were made with, before any cell is recorded
            write_json(s.record / "pretrained.json", read_json(s.out / "pretrained.json"))
        cells = plan(s)
        given = {pretrain_name(s, m, 0): Path(s.checkpoint_of(m)) for m in ("draw", "dreamer") if s.checkpoint_of(m) is not None}

        for c in cells:      # target data collected for smaller sizes before: collect max(sizes) again (the same episodes first)
            if c.stage == "data" and is_done(s.out / c.name) and int(data_info(s.out / c.name).get("transitions", 0)) < max(s.sizes):
                shutil.rmtree(s.out / c.name)
        with ray_session(s.ray_address, max(s.jobs or os.cpu_count() or 1, s.threads), log):
            keep = None if s.record is None else (lambda c: write_record(s.out, c.name, s.record))
            run = run_graph(cells, partial(execute, s), s.out, given=given, log=log, on_done=keep)
        failed = run.failed
        for c in cells:        # the nested prefixes of each dataset, as the offline cells used them (not of a record)
            if c.stage == "data" and is_complete(s.out / c.name):
                for size in s.sizes:
                    size_folder(s.out / c.name, size)
        rows = rows_of(s, cells, failed)
        summary = summarize([r for r in rows if "error" not in r])
        results = {"settings": s.to_dict(), "rows": rows, "summary": summary, "failed": failed, "records_differ": run.differs,
                   "cells": {"total": len(cells), "done_before": len(run.done_before), "submitted": run.submitted,
                             "starts": run.starts},
                   "seconds": time.time() - started, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json(s.out / "results.json", results)
        if run.differs:
            note += ("\n\n**Records recomputed with other files** (the cells made from their originals were not rerun): "
                     + "; ".join(f"{name} ({', '.join(files[:3])})" for name, files in sorted(run.differs.items())))
        (s.out / "table.md").write_text(table_markdown(summary, s, note, failed))
        if summary:                          # (no plot when every evaluation failed: the table lists them)
            plot(summary, s, s.out / "plot.png")
        if s.record is not None:
            write_records(s.out, s.record)
    return results
