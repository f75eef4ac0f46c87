"""Is calibrating safe? The decision of results/duckietown/safety/PLAN.md (issue #19), from its two `compare` runs.

    python experiments/safety_report.py runs/safety_early runs/safety_paper --out results/duckietown/safety

Reads each run's results.json (the per-seed rows `compare` writes), takes DRAW zero-shot from the run that has it, and
applies the plan's rule, fixed before the runs:
- nominal and the mild conditions: a recipe passes when its mean dense reward per step (over the 3 seeds) is at least
  the zero-shot mean minus the zero-shot SEM;
- reversed: a recipe passes when it laps in >= 2 of the 3 seeds, a seed lapping when its evaluation episodes complete
  at least one lap per episode on average (the plan's second addendum).
Writes results.json (every seed's numbers and the verdicts), table.md and plot.png into --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from redraw_training.compare_report import mean_sem

REVERSED = "reversed"
CONDITION_ORDER = ("", "trim:0.1", "gain:0.7", REVERSED)


def load_rows(run: Path) -> list[dict]:
    path = run / "results.json"
    if not path.is_file():
        raise SystemExit(f"{path}: not found; the compare run in {run} has not finished (rerun its command: it resumes)")
    return json.loads(path.read_text())["rows"]


def per_seed(rows: list[dict], method: str, perturb: str) -> list[dict]:
    found = sorted((r for r in rows if r["method"] == method and r["perturb"] == perturb), key=lambda r: r["seed"])
    return [{"seed": r["seed"], "dense_reward": r["lane"]["dense_reward"], "laps_per_episode": r["lane"]["laps"],
             "lap_time_s": r["lane"]["lap_time_s"], "centre_offset_cm": r["lane"]["centre_offset_cm"],
             "out_of_lane_events": r["lane"]["out_of_lane_events"], "episodes": r["lane"]["episodes"]} for r in found]


def residual_rows(run: Path, perturb: str) -> list[dict]:
    """Per seed: held-out KL of the sim prior and of the corrected one (calibrate's summary.json), and for the
    early-stopped recipe the update its residual was selected at."""
    folder = run / "runs" / "redraw" / f"{(perturb or 'nominal').replace(':', '_')}_n10000"
    out = []
    for seed in range(3):
        summary = json.loads((folder / f"seed{seed}" / "summary.json").read_text())
        fit = summary.get("residual_fit") or {}
        out.append({"seed": seed, "kl_sim": summary["holdout"]["holdout/kl_sim"], "kl_redraw": summary["holdout"]["holdout/kl_redraw"],
                    "selected_update": fit.get("selected_update"), "residual_updates": fit.get("updates")})
    return out


def kl_table(report: dict) -> str:
    lines = ["| Condition | Recipe | held-out KL, sim prior | held-out KL, corrected | change | residual selected at update (early) |",
             "|---|---|---|---|---|---|"]
    for cond in report["conditions"]:
        for name in ("paper", "early"):
            rows = cond["residual"][name]
            sim, red = [r["kl_sim"] for r in rows], [r["kl_redraw"] for r in rows]
            change = ", ".join(f"{(b - a) / a:+.0%}" for a, b in zip(sim, red))
            picked = ", ".join(f"{r['selected_update']} of {r['residual_updates']}" for r in rows) if name == "early" else "— (3000, joint)"
            lines.append(f"| {label(cond['perturb'])} | {report['labels'][name]} | {', '.join(f'{x:.2f}' for x in sim)} | "
                         f"{', '.join(f'{x:.2f}' for x in red)} | {change} | {picked} |")
    return "\n".join(lines) + "\n"


def verdict(perturb: str, zero: list[dict], recipe: list[dict]) -> dict:
    if perturb == REVERSED:
        lapping = sum(s["laps_per_episode"] >= 1.0 for s in recipe)
        return {"rule": "laps (>= 1 lap / episode) in >= 2 of 3 seeds", "seeds_lapping": lapping, "passes": lapping >= 2}
    z_mean, z_sem = mean_sem([s["dense_reward"] for s in zero])
    r_mean, r_sem = mean_sem([s["dense_reward"] for s in recipe])
    return {"rule": "dense reward >= zero-shot mean - zero-shot SEM", "threshold": z_mean - z_sem, "mean": r_mean, "sem": r_sem,
            "passes": r_mean >= z_mean - z_sem}


def label(perturb: str) -> str:
    return perturb or "nominal"


def fmt(values: list[float], digits: int = 3) -> str:
    m, e = mean_sem(values)
    return f"{m:.{digits}f} ± {e:.{digits}f}"


def table(report: dict) -> str:
    lines = ["| Condition | Method | dense reward / step ↑ | per seed | laps / episode per seed | centre offset cm | lane departures / episode | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for cond in report["conditions"]:
        for name in ("draw_zeroshot", "paper", "early"):
            seeds = cond["methods"][name]
            rewards = [s["dense_reward"] for s in seeds]
            laps = ", ".join(f"{s['laps_per_episode']:.1f}" for s in seeds)
            v = cond["verdicts"].get(name)
            mark = "—" if v is None else ("**pass**" if v["passes"] else "fail") + (
                f" ({v['seeds_lapping']}/3 seeds lap)" if "seeds_lapping" in v else f" (threshold {v['threshold']:.3f})")
            lines.append(f"| {label(cond['perturb'])} | {report['labels'][name]} | {fmt(rewards)} | "
                         f"{', '.join(f'{x:.3f}' for x in rewards)} | {laps} | "
                         f"{fmt([s['centre_offset_cm'] for s in seeds], 2)} | "
                         f"{fmt([s['out_of_lane_events'] for s in seeds], 2)} | {mark} |")
    return "\n".join(lines) + "\n"


def bar_plot(conds: list[dict], names: list[str], labels: dict[str, str], title: str, path: Path,
             colors: dict[str, str] | None = None) -> None:
    """Dense reward per step per condition: one bar per method (mean ± SEM over seeds), its seeds as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        x = np.arange(len(conds)) + (i - (len(names) - 1) / 2) * width
        vals = [[s["dense_reward"] for s in c["methods"][name]] for c in conds]
        ax.bar(x, [mean_sem(v)[0] for v in vals], width, yerr=[mean_sem(v)[1] for v in vals], capsize=3,
               color=(colors or {}).get(name), label=labels[name])
        for xi, v in zip(x, vals):
            ax.scatter(np.full(len(v), xi), v, color="k", s=8, zorder=3)
    ax.set_xticks(np.arange(len(conds)), [label(c["perturb"]) for c in conds])
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_ylabel("dense reward / step (mean ± SEM over 3 seeds)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(report: dict, path: Path) -> None:
    bar_plot(report["conditions"], ["draw_zeroshot", "paper", "early"], report["labels"],
             "Is calibrating safe? DRAW zero-shot vs ReDRAW's two recipes (10k reward-free transitions, 3000 updates)", path,
             colors={"draw_zeroshot": "tab:gray", "paper": "tab:blue", "early": "tab:orange"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("early", type=Path, help="the compare run of the early-stopped recipe (with DRAW zero-shot)")
    ap.add_argument("paper", type=Path, help="the compare run of the paper's recipe")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    early, paper = load_rows(args.early), load_rows(args.paper)
    report = {"plan": "results/duckietown/safety/PLAN.md", "runs": {"early": str(args.early), "paper": str(args.paper)},
              "labels": {"draw_zeroshot": "DRAW zero-shot", "paper": "ReDRAW, paper recipe", "early": "ReDRAW, early-stopped residual"},
              "conditions": []}
    for perturb in CONDITION_ORDER:
        methods = {"draw_zeroshot": per_seed(early, "draw_zeroshot", perturb), "paper": per_seed(paper, "redraw", perturb),
                   "early": per_seed(early, "redraw", perturb)}
        for name, seeds in methods.items():
            if len(seeds) != 3:
                raise SystemExit(f"{label(perturb)}: {name} has {len(seeds)} seeds in its results.json, the plan has 3")
        report["conditions"].append({"perturb": perturb, "methods": methods, "verdicts": {
            name: verdict(perturb, methods["draw_zeroshot"], methods[name]) for name in ("paper", "early")},
            "residual": {"paper": residual_rows(args.paper, perturb), "early": residual_rows(args.early, perturb)}})
    report["passes_every_condition"] = {name: all(c["verdicts"][name]["passes"] for c in report["conditions"]) for name in ("paper", "early")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "table.md").write_text(table(report) + "\n" + kl_table(report))
    plot(report, args.out / "plot.png")
    print(table(report) + "\n" + kl_table(report))
    print("passes every condition:", report["passes_every_condition"])


if __name__ == "__main__":
    main()
