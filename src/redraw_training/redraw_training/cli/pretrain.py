"""pretrain: DRAW world model + task policy, trained online in a simulator (gymnasium id).

    pretrain --env redraw/PointGoal-v0 --preset tiny --steps 5000 --out runs/pg_tiny
"""

from __future__ import annotations

import argparse

from ..checkpoint import CheckpointError
from ..envs import EnvSpecError
from ..loops import has_checkpoint, pretrain
from .common import add_config_args, build_config, fail, parse_kwargs, say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pretrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="gymnasium env id (default: config env.id, redraw/PointGoal-v0)")
    parser.add_argument("--perturb", default=None, help="dynamics perturbation of the training env (default: none)")
    parser.add_argument("--env-kwargs", default=None, help="YAML mapping of env keyword arguments, e.g. '{size: 64}'")
    parser.add_argument("--steps", type=int, default=None, help="env steps to train for (default: config run.steps)")
    parser.add_argument("--out", required=True, help="run folder (resumed if it already holds a checkpoint)")
    parser.add_argument("--fresh", action="store_true", help="refuse to resume: fail if --out already holds a checkpoint")
    add_config_args(parser)
    args = parser.parse_args(argv)
    extra = {}
    if args.env:
        extra["env.id"] = args.env
    if args.perturb is not None:
        extra["env.perturb"] = args.perturb
    if args.steps is not None:
        extra["run.steps"] = args.steps
    if args.env_kwargs:
        extra["env.kwargs"] = parse_kwargs(args.env_kwargs)
    config = build_config(args, extra=extra)
    if args.fresh and has_checkpoint(args.out):
        fail(f"{args.out} already holds a checkpoint (--fresh given); choose another --out")
    r = config.run
    say([
        f"pretrain: DRAW world model + task actor-critic, online in {config.env.id!r} (perturb {config.env.perturb!r}, kwargs {dict(config.env.kwargs)})",
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


if __name__ == "__main__":
    raise SystemExit(main())
