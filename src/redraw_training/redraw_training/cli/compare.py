"""compare: the paper's comparison in one command, methods x target conditions x seeds (+ dataset sizes).

    compare --env redraw/PointGoal-v0 --target-perturb reversed --seeds 3 --out runs/cmp --preset tiny \\
            --pretrain-steps 3000 --updates 1000 --sizes 2000
    compare --env redraw/PointGoal-v0 --target-perturb reversed,gain:0.5 --methods draw_finetune,redraw \\
            --sizes 500,1000,3000,10000 --seeds 3 --out runs/sweep           (dataset-size sweep)

Methods: dreamer_zeroshot, dreamer_finetune, draw_zeroshot, draw_finetune, redraw. Per seed it pretrains a DRAW and a
DreamerV3 model in the source env (with --explore, Plan2Explore by default), collects reward-free target data, runs
calibration / finetuning with the same budget on the same data, and evaluates every policy in the target env the
same way. Writes OUT/results.json, OUT/table.md (mean ± SEM over seeds) and OUT/plot.png; rerunning the same
command resumes (finished stages are skipped).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import ConfigError, preset_names
from .common import fail, parse_kwargs, say


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{what} must be comma-separated integers, found {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    from ..compare import METHODS, TARGET_DRIVERS, CompareError, CompareSettings, compare

    parser = argparse.ArgumentParser(prog="compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="gymnasium env id (source and target)")
    parser.add_argument("--target-perturb", required=True, help="target condition(s), comma-separated perturbations, e.g. reversed")
    parser.add_argument("--source-perturb", default="", help="perturbation of the source (pretraining) env (default: nominal)")
    parser.add_argument("--env-kwargs", default=None, help="YAML mapping of env kwargs for source and target")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--seeds", default="3", help="number of seeds (0..N-1) or a comma-separated list, e.g. 0,1,2")
    parser.add_argument("--out", required=True, help="output folder (resumed when it holds finished stages)")
    parser.add_argument("--preset", action="append", default=[], metavar="NAME",
                        help=f"size preset(s) for every model (default tiny); one of {preset_names()}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help="config override for every stage")
    parser.add_argument("--explore", default="plan2explore", choices=("task", "plan2explore", "scripted"), help="pretraining data collection")
    parser.add_argument("--pretrain-steps", type=int, default=None, help="env steps of pretraining (default: config run.steps)")
    parser.add_argument("--updates", type=int, default=None, help="offline updates of ReDRAW and the finetunes (default: calibrate.updates)")
    parser.add_argument("--sizes", default="2000", help="target dataset size(s) in transitions, comma-separated (a sweep when several)")
    parser.add_argument("--target-driver", default="random", choices=TARGET_DRIVERS, help="who collects the target data")
    parser.add_argument("--eval-episodes", type=int, default=10, help="evaluation episodes per policy and seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per job")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    args = parser.parse_args(argv)
    seeds = _ints(args.seeds, "--seeds")
    if len(seeds) == 1 and "," not in args.seeds:
        seeds = list(range(seeds[0]))
    settings = CompareSettings(
        env=args.env, target_perturbs=[p.strip() for p in args.target_perturb.split(",") if p.strip()], out=Path(args.out),
        methods=[m.strip() for m in args.methods.split(",") if m.strip()], seeds=seeds,
        presets=[p for name in (args.preset or ["tiny"]) for p in name.split(",") if p], overrides=args.overrides,
        explore=args.explore, source_perturb=args.source_perturb, env_kwargs=parse_kwargs(args.env_kwargs),
        pretrain_steps=args.pretrain_steps, updates=args.updates, sizes=_ints(args.sizes, "--sizes"),
        target_driver=args.target_driver, eval_episodes=args.eval_episodes, threads=args.threads, jobs=args.jobs)
    try:
        settings.check()
    except CompareError as exc:
        fail(str(exc))
    say([
        f"compare: {', '.join(settings.methods)} in {settings.env}, target {settings.target_perturbs}, seeds {settings.seeds}, "
        f"dataset sizes {settings.sizes}",
        f"  pretraining: presets {settings.presets}, explore {settings.explore}, {settings.pretrain_steps or 'config'} env steps; "
        f"offline: {settings.updates or 'config'} updates; evaluation: {settings.eval_episodes} episodes per policy",
        f"  writing {args.out}/: pretrain/, data/, runs/, results.json, table.md, plot.png; look: cat {args.out}/table.md",
    ])
    try:
        results = compare(settings)
    except (CompareError, ConfigError, ValueError) as exc:
        fail(str(exc))
    say([(Path(args.out) / "table.md").read_text(), f"done in {results['seconds']:.0f} s"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
