"""finetune: the finetuning baselines (METHOD.md 7) on an offline target dataset, from a pretrained checkpoint.

    finetune --method draw_finetune --checkpoint runs/pg_draw_p2e --data data/pg_reversed --out runs/pg_draw_ft \\
             --eval-env redraw/PointGoal-v0 --eval-perturb reversed --updates 1000
    finetune --method dreamer_finetune --checkpoint runs/pg_dreamer_p2e --data data/pg_reversed --out runs/pg_dreamer_ft

draw_finetune trains DRAW's prior network and initial logits with the dynamics loss only; dreamer_finetune trains the
whole RSSM through the frozen decoders without the reward loss. Both keep and continue the pretrained policy. The
budget and evaluation are the calibration's (config calibrate.*), so `calibrate` (ReDRAW) and `finetune` compare
like for like; zero-shot is `evaluate` of the pretrained checkpoint in the target env, and `compare` runs them all. --data
takes rosbag2 recordings as calibrate does (redraw_training.targetdata).
"""

from __future__ import annotations

import argparse

from redraw_common.cli import entry_point

from ..checkpoint import CheckpointError
from ..datasets import DatasetError
from ..finetune import METHODS, FinetuneError
from .common import add_target_args, eval_plan, eval_result, fail, prepare_target_run, say


@entry_point("finetune")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finetune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True, choices=METHODS, help="which baseline")
    add_target_args(parser, "finetune", checkpoint_help="pretrained run folder or checkpoint folder (DRAW or Dreamer)",
                    out_help="new output run folder")
    args = parser.parse_args(argv)
    run = prepare_target_run(args)
    from ..finetune import finetune

    config, cal = run.config, run.config.calibrate
    say([
        f"finetune: {args.method} of {run.src_dir} (model {config.model}, presets {run.presets}), lr {config.finetune.lr}, "
        f"{cal.updates} updates of batch {config.batch_size}x{config.batch_length}; the pretrained policy is kept and continues",
        f"  target data {args.data} ({cal.holdout:.0%} of episodes held out for KL); evaluation: {eval_plan(args, cal.eval_every)}",
        f"  writing {args.out}/: checkpoint/ (kind finetune), tb/, scalars.jsonl, summary.json; look: cat {args.out}/summary.json",
    ])
    try:
        summary = finetune(config, run.src_dir, args.data, args.out, args.method, eval_env=args.eval_env, eval_perturb=args.eval_perturb,
                           eval_kwargs=run.eval_kwargs, progress=not args.no_progress, accept_unclean=args.accept_unclean)
    except (CheckpointError, DatasetError, FinetuneError) as exc:
        fail(str(exc))
    hold = summary.get("holdout") or {}
    lines = [f"done: {summary['counters']['updates']} updates in {summary['seconds']:.0f} s"]
    if hold:
        lines.append(f"  held-out KL(posterior || prior): {hold['holdout/kl_before']:.3f} before -> {hold['holdout/kl_after']:.3f} after")
    say(lines + eval_result(args, summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
