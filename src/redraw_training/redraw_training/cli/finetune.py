"""finetune: the finetuning baselines (METHOD.md 7) on an offline target dataset, from a pretrained checkpoint.

    finetune --method draw_finetune --checkpoint runs/pg_draw_p2e --data data/pg_reversed --out runs/pg_draw_ft \\
             --eval-env redraw/PointGoal-v0 --eval-perturb reversed --updates 1000
    finetune --method dreamer_finetune --checkpoint runs/pg_dreamer_p2e --data data/pg_reversed --out runs/pg_dreamer_ft

draw_finetune trains DRAW's prior network and initial logits with the dynamics loss only; dreamer_finetune trains the
whole RSSM through the frozen decoders without the reward loss. Both keep and continue the pretrained policy. The
budget and evaluation are the calibration's (config calibrate.*), so `calibrate` (ReDRAW) and `finetune` compare
like for like; zero-shot is `evaluate` of the pretrained checkpoint in the target env, and `compare` runs them all. --data takes
rosbag2 recordings as calibrate does (converted once with the checkpoint's settings, refused when they fail the data
checks unless --accept-unclean).
"""

from __future__ import annotations

import argparse

from redraw_common.cli import entry_point, renamed

from ..checkpoint import CheckpointError, read_manifest
from ..config import ConfigError, config_from_dict
from ..datasets import DatasetError
from ..finetune import METHODS, FinetuneError
from .common import add_config_args, build_config, fail, parse_kwargs, say


@entry_point("finetune")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finetune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True, choices=METHODS, help="which baseline")
    parser.add_argument("--checkpoint", required=True, help="pretrained run folder or checkpoint folder (DRAW or Dreamer)")
    parser.add_argument("--data", required=True, help="target dataset folder (.npz episodes; reward not needed) or rosbag2 recording(s), "
                                                      "converted with the checkpoint's settings into OUT/dataset/")
    parser.add_argument("--out", required=True, help="new output run folder")
    parser.add_argument("--updates", type=int, default=None, help="offline updates (default: config calibrate.updates)")
    parser.add_argument("--eval-env", default=None, help="gymnasium id of the target env for periodic evaluation (optional)")
    parser.add_argument("--eval-perturb", default="", help="perturbation of the evaluation env, e.g. reversed")
    renamed(parser, "--perturb", "--eval-perturb (the evaluation env)")
    parser.add_argument("--env-kwargs", default=None, help="YAML mapping of eval env kwargs (default: the pretraining env's)")
    parser.add_argument("--accept-unclean", action="store_true",
                        help="finetune on converted bags that fail the data checks (redraw_training.datacheck) instead of refusing")
    add_config_args(parser)
    args = parser.parse_args(argv)
    try:
        src_dir, src = read_manifest(args.checkpoint)
        base = config_from_dict(src["config"], src.get("presets", []))
    except (CheckpointError, ConfigError) as exc:
        fail(str(exc))
    from ..finetune import finetune

    extra = {"calibrate.updates": args.updates} if args.updates is not None else {}
    config = build_config(args, base=base, extra=extra)
    src_env = src.get("extra", {}).get("env", {})
    eval_kwargs = parse_kwargs(args.env_kwargs) if args.env_kwargs else (dict(src_env.get("kwargs", {})) if args.eval_env == src_env.get("id") else {})
    cal = config.calibrate
    say([
        f"finetune: {args.method} of {src_dir} (model {config.model}, presets {src.get('presets', [])}), lr {config.finetune.lr}, "
        f"{cal.updates} updates of batch {config.batch_size}x{config.batch_length}; the pretrained policy is kept and continues",
        f"  target data {args.data} ({cal.holdout:.0%} of episodes held out for KL); evaluation: "
        f"{args.eval_env + ' perturb ' + repr(args.eval_perturb) if args.eval_env else 'none (no --eval-env)'}",
        f"  writing {args.out}/: checkpoint/ (kind finetune), tb/, scalars.jsonl, summary.json; look: cat {args.out}/summary.json",
    ])
    try:
        summary = finetune(config, src_dir, args.data, args.out, args.method, eval_env=args.eval_env, eval_perturb=args.eval_perturb,
                           eval_kwargs=eval_kwargs, progress=not args.no_progress, accept_unclean=args.accept_unclean)
    except (CheckpointError, DatasetError, FinetuneError) as exc:
        fail(str(exc))
    hold, ev = summary.get("holdout") or {}, summary.get("eval") or {}
    lines = [f"done: {summary['counters']['updates']} updates in {summary['seconds']:.0f} s"]
    if hold:
        lines.append(f"  held-out KL(posterior || prior): {hold['holdout/kl_before']:.3f} before -> {hold['holdout/kl_after']:.3f} after")
    if ev:
        lines.append(f"  eval return in {args.eval_env} ({args.eval_perturb or 'nominal'}): {ev['return_mean']:.2f} +- {ev['return_std']:.2f}")
    say(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
