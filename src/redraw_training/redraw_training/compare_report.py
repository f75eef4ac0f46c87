"""The outputs of `compare` (redraw_training.compare): rows -> mean / SEM summary, table.md (the paper's Duckiebot
layout for envs with lane metrics, else returns) and plot.png.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .compare_settings import LABELS, LANE_COLUMNS, METHODS, MODEL_OF, CompareSettings, condition_label

# ----------------------------------------------------------------------------------------------------------
# aggregation and outputs


def mean_sem(values: list[float]) -> tuple[float, float]:
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
        mean, sem = mean_sem([r["return_mean"] for r in group])
        entry: dict[str, Any] = {"method": method, "perturb": perturb, "size": size, "seeds": len(group), "mean": mean, "sem": sem,
                                 "values": [float(r["return_mean"]) for r in group]}
        if any(r.get("lane") for r in group):
            entry["lane"] = {}
            for key in LANE_COLUMNS:
                values = [float(r["lane"][key]) for r in group if r.get("lane") and r["lane"].get(key) is not None]
                m, e = mean_sem(values) if values else (None, None)
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


def failed_markdown(failed: dict[str, str]) -> str:
    """The cells that failed (their rows are left out of the means above): name and error; logs in OUT/logs/."""
    if not failed:
        return ""
    lines = [f"\n**{len(failed)} failed cell(s)**, left out of the means above (logs: logs/<cell>.log):\n"]
    lines += [f"- `{name}`: {error}" for name, error in sorted(failed.items())]
    return "\n".join(lines) + "\n"


def table_markdown(summary: list[dict[str, Any]], s: CompareSettings, note: str = "", failed: dict[str, str] | None = None) -> str:
    seeds = ", ".join(str(x) for x in s.seeds)
    over = f"mean ± SEM over {len(s.seeds)} seeds: {seeds}; per seed {s.eval_episodes} evaluation episodes with sampled actions"
    tail = failed_markdown(failed or {}) + (f"\n{note}\n" if note else "")
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
