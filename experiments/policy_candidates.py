"""The policy-side candidates of results/duckietown/safety/PLAN_policy.md (issue #19), judged by PLAN.md's rule.

    python experiments/policy_candidates.py --early runs/safety_early --warm runs/safety_warm \
        --out results/duckietown/safety/policy
    python experiments/policy_candidates.py --from-report --budget results/duckietown/safety/budget \
        --out results/duckietown/safety/policy        # on a fresh clone: the other rows from the committed report

Each candidate is set against the zero-shot policy and the plan's baseline, `early` (the early-stopped residual, then
3000 updates of a fresh policy), on the same datasets, seeds and evaluation episodes:
- `select` is calibrate.select applied to the baseline's own calibrated checkpoints (calibration.select_policy, the
  code calibrate runs once its budget is spent): per seed it keeps the calibrated policy or the sim policy by their
  imagined returns in the corrected model from the held-out start states. The evaluation of the kept policy is the
  one already made on the same episodes: the baseline's row, or the zero-shot row of that seed (the kept checkpoint
  would then act exactly as the pretrained one does). The choices are written to select.json.
- `warm` (calibrate.warm_start), `budget` (8000 updates) and `horizon15` (calibrate.imag_horizon=15, PLAN_policy2.md)
  are their own `compare` runs (or their records); a run not given is left out.
Writes results.json, table.md and plot.png into --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safety_report import CONDITION_ORDER, bar_plot, fmt, label, load_rows, per_seed, verdict

from redraw_training.calibration import HoldoutKL, agent_spec, select_policy
from redraw_training.checkpoint import load_agent, read_manifest
from redraw_training.datasets import load_target_dataset

SEEDS = (0, 1, 2)
LABELS = {"draw_zeroshot": "DRAW zero-shot", "early": "early (fresh policy, 3000 updates)", "select": "select",
          "warm": "warm start, 3000 updates", "budget": "fresh policy, 8000 updates",
          "horizon15": "horizon 15, 3000 updates"}


def cell_name(perturb: str) -> str:
    return (perturb or "nominal").replace(":", "_")


def select_cell(early: Path, perturb: str, seed: int, sim_task, sim_sha256: str) -> dict:
    """calibrate.select on one of the baseline's calibrations, on the held-out part of its own dataset, against the
    sim policy `sim_task` (of the pretrained weights `sim_sha256`)."""
    out = early / "runs" / "redraw" / f"{cell_name(perturb)}_n10000" / f"seed{seed}"
    data = early / "data" / f"{cell_name(perturb)}_seed{seed}" / "n10000"
    agent, manifest, _ = load_agent(out / "checkpoint", "cpu", optimizers=False)
    config = agent.config
    dataset = load_target_dataset(data, holdout=config.calibrate.holdout, seed=config.seed, validation=config.residual.validation,
                                  **agent_spec(agent))
    if dataset.digest != manifest["data"]["target"]["sha256"]:
        raise SystemExit(f"{data}: not the dataset {out} was calibrated on (sha256 {dataset.digest}, the checkpoint has "
                         f"{manifest['data']['target']['sha256']})")
    hold = HoldoutKL(dataset.holdout, agent.wm.posterior_logits, agent.prior_kl, torch.device("cpu"), config.batch_length, seed=config.seed)
    if manifest["data"]["pretrained"]["weights_sha256"] != sim_sha256:
        raise SystemExit(f"{out} was not calibrated from the pretrained checkpoint of {early}/pretrained.json (weights sha256 differ)")
    return {"perturb": perturb, "seed": seed, **select_policy(agent, sim_task, hold, agent.task.config.imag_horizon, config.seed)}


def selections(early: Path, out: Path) -> list[dict]:
    """select.json in `out`, made once (about a second per cell)."""
    path = out / "select.json"
    if path.is_file():
        return json.loads(path.read_text())["cells"]
    if early is None:
        raise SystemExit(f"{path} is missing: calibrate.select needs the early recipe's checkpoints (--early)")
    sim = json.loads((early / "pretrained.json").read_text())["draw"]    # the pretrained checkpoint compare was given
    sim_dir, sim_manifest = read_manifest(Path(sim["path"]))
    sim_task = load_agent(sim_dir, "cpu", optimizers=False)[0].task
    cells = [select_cell(early, perturb, seed, sim_task, sim_manifest["files"]["weights.safetensors"])
             for perturb in CONDITION_ORDER for seed in SEEDS]
    path.write_text(json.dumps({"from": str(early), "cells": cells}, indent=2) + "\n")
    return cells


def table(report: dict) -> str:
    names = report["methods"]
    lines = ["| Condition | " + " | ".join(LABELS[n] for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for cond in report["conditions"]:
        cells = []
        for name in names:
            seeds = cond["methods"][name]
            text = fmt([s["dense_reward"] for s in seeds])
            v = cond["verdicts"].get(name)
            if v is not None:
                text += (" **pass**" if v["passes"] else " fail") + (f", laps in {v['seeds_lapping']}/3 seeds" if "seeds_lapping" in v else "")
            cells.append(text)
        lines.append(f"| {label(cond['perturb'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def select_table(cells: list[dict]) -> str:
    lines = ["| Condition | seed | imagined return, calibrated | imagined return, sim | kept |", "|---|---|---|---|---|"]
    for c in cells:
        r = c["imagined_return"]
        lines.append(f"| {label(c['perturb'])} | {c['seed']} | {r['calibrated']:.2f} | {r['sim']:.2f} | {c['kept']} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    bar_plot(report["conditions"], report["methods"], LABELS,
             "Policy-side candidates (PLAN_policy.md): 10k reward-free transitions, early-stopped residual", path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--early", type=Path, help="the compare run of PLAN.md's early recipe (with DRAW zero-shot)")
    ap.add_argument("--warm", type=Path, help="the compare run with calibrate.warm_start=true")
    ap.add_argument("--budget", type=Path, help="the compare run with 8000 updates (or its --record folder)")
    ap.add_argument("--horizon15", type=Path, help="the compare run with calibrate.imag_horizon=15 (PLAN_policy2.md; or its --record folder)")
    ap.add_argument("--from-report", action="store_true", help="take the per-seed rows of every method whose run is not given "
                    "from the report already in --out (results.json): the runs of the early and warm recipes are not committed")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    before = json.loads((args.out / "results.json").read_text()) if args.from_report else None
    if args.early is None and before is None:
        raise SystemExit("give --early (the early recipe's compare run) or --from-report")
    cells = selections(args.early, args.out)
    chosen = {(c["perturb"], c["seed"]): c["kept"] for c in cells}
    early = load_rows(args.early) if args.early is not None else None
    given = {name: path for name, path in (("warm", args.warm), ("budget", args.budget), ("horizon15", args.horizon15)) if path is not None}
    runs = {name: load_rows(path) for name, path in given.items()}
    kept = [n for n in (before or {}).get("methods", []) if n not in ("draw_zeroshot", "early", "select") and n not in runs]
    names = ["draw_zeroshot", "early", "select", *[n for n in LABELS if n in runs or n in kept]]
    report = {"plan": "results/duckietown/safety/PLAN_policy.md", "methods": names, "labels": {n: LABELS[n] for n in names},
              "runs": {**(before or {}).get("runs", {}), **({"early": str(args.early)} if args.early else {}),
                       **{n: str(p) for n, p in given.items()}},
              "conditions": []}
    for perturb in CONDITION_ORDER:
        old = next((c["methods"] for c in (before or {}).get("conditions", []) if c["perturb"] == perturb), {})
        if early is not None:
            zero, base = per_seed(early, "draw_zeroshot", perturb), per_seed(early, "redraw", perturb)
        else:
            zero, base = old["draw_zeroshot"], old["early"]
        methods = {"draw_zeroshot": zero, "early": base,
                   "select": [{**(b if chosen[(perturb, b["seed"])] == "calibrated" else z), "kept": chosen[(perturb, b["seed"])]}
                              for z, b in zip(zero, base)],
                   **{name: old[name] for name in kept},
                   **{name: per_seed(rows, "redraw", perturb) for name, rows in runs.items()}}
        methods = {n: methods[n] for n in names}
        for name, seeds in methods.items():
            if [s["seed"] for s in seeds] != list(SEEDS):
                raise SystemExit(f"{label(perturb)}: {name} has seeds {[s['seed'] for s in seeds]}, the plan has {list(SEEDS)}")
        report["conditions"].append({"perturb": perturb, "methods": methods,
                                     "verdicts": {n: verdict(perturb, zero, methods[n]) for n in names if n != "draw_zeroshot"}})
    report["passes_every_condition"] = {n: all(c["verdicts"][n]["passes"] for c in report["conditions"]) for n in names if n != "draw_zeroshot"}
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "table.md").write_text(table(report) + "\n" + select_table(cells))
    plot(report, args.out / "plot.png")
    print(table(report) + "\n" + select_table(cells))
    print("passes every condition:", report["passes_every_condition"])


if __name__ == "__main__":
    main()
