"""pretrain: DRAW world model + task policy, trained online in a simulator (gymnasium id), or offline on a dataset.

    pretrain --env redraw/PointGoal-v0 --preset tiny --steps 5000 --out runs/pg_tiny
    pretrain --env redraw/PointGoal-v0 --preset tiny --explore plan2explore --steps 5000 --out runs/pg_p2e
    pretrain --preset tiny,dreamer --explore plan2explore --steps 5000 --out runs/pg_dreamer_p2e     (DreamerV3 baseline)
    pretrain --dataset data/dt_explore --preset small --updates 20000 --set device=cuda --out runs/dt_offline

--explore picks who collects the data online: task (the task policy), plan2explore (the Plan2Explore exploration
policy; the task policy still trains alongside from the same replay) or scripted (the env package's exploration
driver). --dataset pretrains from a fixed folder of episodes with rewards and needs no env (see offline.py).
"""

from __future__ import annotations

import argparse

from redraw_common.cli import entry_point, renamed

from ..checkpoint import CheckpointError, read_manifest
from ..config import ConfigError, config_from_dict
from .common import add_config_args, build_config, fail, parse_kwargs, say


@entry_point("pretrain")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pretrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="gymnasium env id (default: config env.id, redraw/PointGoal-v0)")
    parser.add_argument("--train-perturb", default=None, help="perturbation of the env pretraining collects in, trains in and "
                                                                 "evaluates in (online; default: none)")
    renamed(parser, "--perturb", "--train-perturb (the env online pretraining trains in) or, with --dataset, --eval-perturb "
                                 "(the evaluation env)")
    parser.add_argument("--env-kwargs", default=None, help="YAML mapping of env keyword arguments, e.g. '{size: 64}'")
    parser.add_argument("--steps", type=int, default=None, help="env steps to train for (default: config run.steps)")
    parser.add_argument("--out", required=True, help="run folder (resumed if it already holds a checkpoint)")
    parser.add_argument("--fresh", action="store_true", help="refuse to resume: fail if --out already holds a checkpoint")
    parser.add_argument("--explore", choices=("task", "plan2explore", "scripted"), default=None,
                        help="who collects the data online (default: config explore, task); plan2explore also applies the "
                             "plan2explore preset")
    parser.add_argument("--dataset", default=None, help="pretrain offline from this dataset folder (episodes with rewards); no env needed")
    parser.add_argument("--updates", type=int, default=None,
                        help="with --dataset: gradient updates (default: run.steps * run.train_ratio / (batch_size * batch_length))")
    parser.add_argument("--eval-env", default=None, help="with --dataset: gymnasium id to evaluate in (optional)")
    parser.add_argument("--eval-perturb", default="", help="with --dataset: perturbation of the evaluation env")
    parser.add_argument("--init-from", default=None, metavar="RUN",
                        help="with --dataset: start from this pretrained run's weights, optimiser state, update count and config "
                             "(continue it on a new or extended dataset); --out must not hold a checkpoint yet")
    add_config_args(parser)
    args = parser.parse_args(argv)
    if args.explore == "plan2explore" and "plan2explore" not in ",".join(args.preset).split(","):
        args.preset.append("plan2explore")
    if args.dataset is not None:
        if args.train_perturb is not None:
            fail("--train-perturb perturbs the env of online pretraining; --dataset trains without one "
                 "(--eval-perturb perturbs the evaluation env)")
        return _offline(args)
    if args.eval_perturb:
        fail("--eval-perturb goes with --dataset --eval-env; online pretraining evaluates in its training env (--train-perturb)")
    from ..checkpoint import has_checkpoint
    from ..envs import EnvSpecError
    from ..pretrain import pretrain

    extra = {}
    if args.env:
        extra["env.id"] = args.env
    if args.train_perturb is not None:
        extra["env.perturb"] = args.train_perturb
    if args.steps is not None:
        extra["run.steps"] = args.steps
    if args.env_kwargs:
        extra["env.kwargs"] = parse_kwargs(args.env_kwargs)
    if args.explore is not None:
        extra["explore"] = args.explore
    config = build_config(args, extra=extra)
    if args.fresh and has_checkpoint(args.out):
        fail(f"{args.out} already holds a checkpoint (--fresh given); choose another --out")
    r = config.run
    say([
        f"pretrain: {config.model.upper()} world model + task actor-critic, data collected by {config.explore}, online in {config.env.id!r} (perturb {config.env.perturb!r}, kwargs {dict(config.env.kwargs)})",
        f"  presets {list(config.presets) or ['paper (defaults)']}, device {config.device}; {r.steps} env steps, "
        f"{r.prefill} random prefill steps, train ratio {r.train_ratio} (batch {config.batch_size}x{config.batch_length})",
        f"  {'resuming' if has_checkpoint(args.out) else 'writing'} {args.out}/: checkpoint/ (safetensors + checkpoint.json), replay/ (episodes), "
        "tb/ (TensorBoard), scalars.jsonl, report.png (open-loop predictions), summary.json",
        f"  look: tensorboard --logdir {args.out}/tb ; open {args.out}/report.png ; cat {args.out}/summary.json",
    ])
    try:
        summary = pretrain(config, args.out, progress=not args.no_progress)
    except (CheckpointError, EnvSpecError) as exc:
        fail(str(exc))
    ev = summary.get("eval") or {}
    say([
        f"done: {summary['counters']['env_steps']} env steps, {summary['counters']['updates']} updates in {summary['seconds']:.0f} s",
        f"  eval return {ev.get('return_mean', float('nan')):.2f} +- {ev.get('return_std', float('nan')):.2f} over {ev.get('episodes', 0)} episodes",
        f"  checkpoint: {args.out}/checkpoint ; next: calibrate --checkpoint {args.out} --data <target episodes> --out <dir>",
    ])
    return 0


def _offline(args) -> int:
    from ..offline import OfflineError, default_updates, pretrain_offline

    extra = {"explore": args.explore} if args.explore is not None else {}
    if args.steps is not None:
        extra["run.steps"] = args.steps
    base = None
    if args.init_from:
        from ..checkpoint import has_checkpoint

        if has_checkpoint(args.out):
            fail(f"{args.out} already holds a checkpoint; --init-from starts a new run (drop it to resume {args.out})")
        try:
            _, src = read_manifest(args.init_from)
            base = config_from_dict(src["config"], src.get("presets", []))
        except (CheckpointError, ConfigError) as exc:
            fail(str(exc))
    config = build_config(args, base=base, extra=extra)
    updates = args.updates if args.updates is not None else default_updates(config)
    say([
        f"pretrain (offline): {config.model.upper()} world model + task actor-critic from the dataset {args.dataset} (no env), "
        f"{updates} updates of batch {config.batch_size}x{config.batch_length}",
        f"  presets {list(config.presets) or ['paper (defaults)']}, device {config.device}; evaluation: {args.eval_env or 'none'}",
        f"  writing {args.out}/: checkpoint/, tb/ (if TensorBoard is installed), scalars.jsonl, summary.json"
        + (f"; starting from {args.init_from}" if args.init_from else ""),
    ])
    try:
        summary = pretrain_offline(config, args.dataset, args.out, updates=updates, progress=not args.no_progress, resume=not args.fresh,
                                   eval_env=args.eval_env, eval_perturb=args.eval_perturb,
                                   eval_kwargs=parse_kwargs(args.env_kwargs) if args.env_kwargs else None, init_from=args.init_from)
    except (CheckpointError, OfflineError) as exc:
        fail(str(exc))
    ev = summary.get("eval") or {}
    say([f"done: {summary['counters']['updates']} updates on {summary['dataset']['train_steps']} dataset steps in {summary['seconds']:.0f} s"]
        + ([f"  eval return {ev['return_mean']:.2f} +- {ev['return_std']:.2f}"] if ev else [])
        + [f"  checkpoint: {args.out}/checkpoint ; next: calibrate --checkpoint {args.out} --data <target episodes> --out <dir>"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
