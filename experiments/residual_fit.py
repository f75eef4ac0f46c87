"""Does the ReDRAW residual overfit small target data, and what keeps it from doing so? (issue #23, item 4)

    python experiments/residual_fit.py --out runs/residual_fit          # resumable; -> results.json, .md, .png

For each target condition and seed, the reward-free target data is what `compare` collects for that seed
(compare_cells.data_cell: 10000 transitions of the exploration driver in the target condition). A fixed test set
(10 % of its episodes, drawn with the seed) measures held-out KL(q(z_t|x_t) || p(z_t|history)) for every size; the
training data of size n is the first episodes of the rest that hold n transitions. Each variant fits only the
residual, exactly as calibrate's residual update does (Agent.filter_with_residual + Agent.residual_loss + its
optimiser, the same batches), for `--updates` updates; the actor-critic update that calibrate interleaves does not
touch the residual, so it is left out. The test KL is measured every `--every` updates.

Variants (fixed before the first run; `paper` is the shipped calibration):
    paper            1 member, 1 x 256 hidden, Adam lr 1e-2, output layer initialised uniform (METHOD.md 6.1)
    zero_out         paper, output layer initialised to zero (the residual starts as the sim prior)
    lr_1e-3          paper, lr 1e-3
    wd_0.1           paper, decoupled weight decay 0.1 (AdamW style: w <- w * (1 - lr * 0.1) per update)
    units_64         paper, 64 hidden units
    members_5        paper, an ensemble of 5 members (the correction is their mean)
    early_stop       paper; 10 % of the training episodes (>= 1) validate; keep the weights of the best validation KL,
                     stop after 5 evaluations without improvement
    zero_out+early_stop
Added after a first look (a 300-update trial on nominal seed 0 showed a zero residual already above the sim prior's
KL, because METHOD.md 6.1 drops the prior's 1 % unimix once a residual corrects it):
    unimix           paper, but the corrected prior keeps the sim prior's unimix
    unimix+zero_out+early_stop
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

VARIANTS = ("paper", "zero_out", "lr_1e-3", "wd_0.1", "units_64", "members_5", "early_stop", "zero_out+early_stop", "unimix",
            "unimix+zero_out+early_stop")
PATIENCE = 5            # evaluations without a better validation KL before early stopping
SPLIT_FRACTION = 0.1    # the test episodes of the whole collection; the validation episodes of a training set


def collect(condition: str, seed: int, folder: Path, size: int) -> Path:
    """compare's target data for (condition, seed): folder/all + dataset.json (made once)."""
    from redraw_training.compare_cells import data_cell
    from redraw_training.compare_settings import CompareSettings

    scratch = folder.with_name(folder.name + ".tmp")
    while not (folder / "dataset.json").is_file():
        try:
            scratch.mkdir(parents=True)
        except FileExistsError:    # another run of this script collects it: wait for it
            time.sleep(5)
            continue
        s = CompareSettings(env="redraw/DuckietownLoop-v0", target_perturbs=[condition], out=folder.parent, sizes=[size],
                            target_driver="scripted", env_kwargs={"action_history": 2})
        data_cell(s, "" if condition == "nominal" else condition, seed, scratch, print)
        scratch.rename(folder)
    return folder / "all"


def split(paths: list[Path], seed: int, size: int) -> tuple[list[Path], list[Path]]:
    """(test episodes, the training episodes of `size` transitions): test = SPLIT_FRACTION of the episodes, drawn with the seed;
    training = the first other episodes that hold `size` transitions (all of them when they hold fewer)."""
    from redraw_training.datasets import holdout_indices

    test_idx = holdout_indices(len(paths), SPLIT_FRACTION, seed)   # calibrate's held-out episodes of the whole collection
    test = [p for i, p in enumerate(paths) if i in test_idx]
    train, total = [], 0
    for i, p in enumerate(paths):
        if i in test_idx:
            continue
        if total >= size:
            break
        train.append(p)
        total += episode_steps(p)
    return test, train   # size >= the collection: every episode but the test ones (as calibrate's 10 % holdout)


def episode_steps(path: Path) -> int:
    with np.load(path, allow_pickle=False) as f:
        return len(f["is_first"]) - 1


def replay_of(paths: list[Path], seed: int):
    from redraw_common.episodes import load_episode
    from redraw_training.datasets import replay_from

    return replay_from([(p.name, load_episode(p)) for p in paths], seed)


def fit(checkpoint: Path, variant: str, seed: int, train, val, test, updates: int, every: int) -> dict:
    """Fit one residual variant; returns its test-KL curve and the final (early stopping: the selected) test KL."""
    from redraw_training.calibration import HoldoutKL, replay_features
    from redraw_training.checkpoint import load_agent
    from redraw_training.runtime import to_torch

    agent, _, _ = load_agent(checkpoint, "cpu", optimizers=False)
    agent.wm.eval()
    changes = {"lr_1e-3": {"residual.lr": 1e-3}, "units_64": {"residual.units": 64}, "members_5": {"residual.members": 5}}.get(variant, {})
    if variant.startswith("unimix"):   # the corrected prior keeps the sim prior's unimix
        changes["residual.keep_unimix"] = True
    if "zero_out" in variant:          # the output layer starts at zero: the residual starts as the sim prior
        changes["residual.out_init"] = "zero"
    torch.manual_seed(seed)
    agent.start_calibration(agent.config.update(changes))
    res = agent.residual
    decay = 0.1 * agent.config.residual.lr if variant == "wd_0.1" else 0.0
    early = variant.endswith("early_stop")
    cfg = agent.config
    length = cfg.batch_length
    device = torch.device("cpu")
    cache = replay_features(train, agent.wm.posterior_logits, device)
    test_kl = HoldoutKL(test, agent.wm.posterior_logits, agent.prior_kl, device, length, seed=seed)
    val_kl = HoldoutKL(val, agent.wm.posterior_logits, agent.prior_kl, device, length, seed=seed) if early else None
    curve = [(0, test_kl(residual=True))]
    best = (val_kl(residual=True), 0, {k: v.clone() for k, v in res.state_dict().items()}) if early else None
    stopped = None
    for update in range(1, updates + 1):
        index = train.sample_indices(cfg.batch_size, length)
        batch = to_torch({k: v for k, v in train.gather(index).items() if k in ("action", "is_first")}, device)
        post = cache[torch.from_numpy(index)]
        _, z_prev, a_prev, base, _ = agent.filter_with_residual(post, batch["action"], batch["is_first"])
        agent.res_opt.step(agent.residual_loss(post, z_prev, a_prev, base, batch["is_first"]))
        if decay:
            with torch.no_grad():
                for p in res.parameters():
                    p.mul_(1.0 - decay)
        if update % every == 0:
            curve.append((update, test_kl(residual=True)))
            if early:
                v = val_kl(residual=True)
                if v < best[0]:
                    best = (v, update, {k: t.clone() for k, t in res.state_dict().items()})
                elif (update - best[1]) // every >= PATIENCE:
                    stopped = update
                    break
    if early:
        res.load_state_dict(best[2])
    return {"variant": variant, "kl_sim": test_kl(residual=False), "kl_final": test_kl(residual=True), "curve": curve,
            "kl_min": min(k for _, k in curve), "selected_update": best[1] if early else updates, "stopped_at": stopped,
            "parameters": sum(p.numel() for p in res.parameters())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="models/duckietown_draw")
    p.add_argument("--conditions", default="nominal,reversed")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--sizes", default="3000,10000")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--collect", type=int, default=10000, help="target transitions collected per condition and seed")
    p.add_argument("--updates", type=int, default=3000)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--out", type=Path, default=Path("runs/residual_fit"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    sizes = [int(s) for s in a.sizes.split(",")]
    variants = a.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; expected a subset of {list(VARIANTS)}")
    a.out.mkdir(parents=True, exist_ok=True)
    cells = a.out / "cells"
    cells.mkdir(exist_ok=True)
    from redraw_common.episodes import episode_paths

    for condition in a.conditions.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            paths = episode_paths(collect(condition, seed, a.out / "data" / f"{condition}_seed{seed}", a.collect))
            for size in sizes:
                test_paths, train_paths = split(paths, seed, size)
                n_val = max(1, int(np.ceil(SPLIT_FRACTION * len(train_paths))))
                for variant in variants:
                    cell = cells / f"{condition}_seed{seed}_n{size}_{variant}.json"
                    if cell.is_file():
                        continue
                    fit_paths, val_paths = (train_paths[:-n_val], train_paths[-n_val:]) if variant.endswith("early_stop") else (train_paths, [])
                    t0 = time.time()
                    r = fit(Path(a.checkpoint), variant, seed, replay_of(fit_paths, seed),
                            replay_of(val_paths, seed) if val_paths else None, replay_of(test_paths, seed), a.updates, a.every)
                    r.update(condition=condition, seed=seed, size=size, seconds=round(time.time() - t0, 1),
                             train_steps=sum(episode_steps(q) for q in fit_paths), test_steps=sum(episode_steps(q) for q in test_paths))
                    cell.write_text(json.dumps(r))
                    print(f"{condition} seed {seed} n{size} {variant:20s} KL sim {r['kl_sim']:.2f} -> {r['kl_final']:.2f} "
                          f"(min {r['kl_min']:.2f}, selected update {r['selected_update']}) {r['seconds']} s", flush=True)
    report(a.out, variants)
    return 0


def report(out: Path, variants: list[str]) -> None:
    """results.json, results.md (mean +- SEM over seeds of the test KL and its ratio to the sim prior's) and results.png."""
    rows = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["condition"], r["size"], r["variant"]), []).append(r)

    def sem(x):
        return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0

    summary = []
    for (cond, size, variant), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], variants.index(kv[0][2])
                                                                             if kv[0][2] in variants else 99)):
        final = [r["kl_final"] for r in rs]
        sim = [r["kl_sim"] for r in rs]
        worse = sum(r["kl_final"] > r["kl_sim"] for r in rs)
        summary.append({"condition": cond, "size": size, "variant": variant, "seeds": len(rs), "kl_sim": float(np.mean(sim)),
                        "kl_final": float(np.mean(final)), "kl_final_sem": sem(final),
                        "ratio": float(np.mean([f / s for f, s in zip(final, sim)])), "seeds_worse_than_sim": worse,
                        "per_seed": [round(f, 3) for f in final], "parameters": rs[0]["parameters"]})
    (out / "results.json").write_text(json.dumps({"command": " ".join(["python", "experiments/residual_fit.py", *sys.argv[1:]]),
                                                  "summary": summary, "cells": rows}, indent=1))
    lines = ["| condition | size | variant | params | KL sim prior | KL ReDRAW (mean ± SEM) | per seed | ratio | seeds worse than sim |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['condition']} | {s['size']} | {s['variant']} | {s['parameters']} | {s['kl_sim']:.2f} | "
                     f"{s['kl_final']:.2f} ± {s['kl_final_sem']:.2f} | {', '.join(f'{v:.2f}' for v in s['per_seed'])} | "
                     f"{s['ratio']:.3f} | {s['seeds_worse_than_sim']}/{s['seeds']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(out, groups, variants)


def plot(out: Path, groups: dict, variants: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(c, n) for c, n, _ in groups})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (cond, size) in zip(axes[0], panels):
        for variant in variants:
            rs = groups.get((cond, size, variant))
            if not rs:
                continue
            longest = max(len(r["curve"]) for r in rs)
            steps = [u for u, _ in max(rs, key=lambda r: len(r["curve"]))["curve"]]
            # ratio to each seed's sim-prior KL; a curve that stopped early holds its selected value afterwards
            ratio = np.array([[k / r["kl_sim"] for _, k in r["curve"]] + [r["kl_final"] / r["kl_sim"]] * (longest - len(r["curve"]))
                              for r in rs])
            ax.plot(steps, ratio.mean(0), label=variant)
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set_title(f"{cond}, {size} transitions")
        ax.set_xlabel("residual updates")
        ax.set_ylabel("test KL / sim prior's KL")
        ax.set_yscale("log")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=110)


if __name__ == "__main__":
    sys.exit(main())
