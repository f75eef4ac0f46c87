"""calibrate: ReDRAW on an offline target dataset against a pretrained checkpoint.

Freezes the pretrained world model, fits the latent dynamics residual to the target data (reward-free) and
trains a fresh policy in imagination under the corrected dynamics, with the sim reward and continue heads.

    calibrate --checkpoint runs/pg_tiny --data data/pg_reversed --out runs/pg_redraw \\
              --eval-env redraw/PointGoal-v0 --eval-perturb reversed --updates 1000
    calibrate --checkpoint models/duckietown_draw --data bags/db1_reversed --out runs/db1_redraw

--data takes a dataset folder of .npz episodes, or rosbag2 recordings: those are converted once with the checkpoint's
settings into OUT/dataset/, and refused before any update when they fail the data checks (redraw_training.targetdata).
"""

from __future__ import annotations

import argparse

from redraw_common.cli import entry_point

from ..calibration import calibrate as run_calibrate
from ..calibration import check_calibration_source
from ..checkpoint import CheckpointError, has_checkpoint
from ..datasets import DatasetError
from .common import add_target_args, eval_plan, eval_result, fail, prepare_target_run, say


@entry_point("calibrate")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_args(parser, "calibrate", checkpoint_help="pretrained run folder or checkpoint folder",
                    out_help="output run folder (resumed if it already holds a calibration checkpoint)")
    args = parser.parse_args(argv)
    run = prepare_target_run(args)
    config = run.config
    try:
        check_calibration_source(run.src_dir, run.manifest, config, args.out)
    except CheckpointError as exc:
        fail(str(exc))
    cal = config.calibrate
    say([
        f"calibrate: ReDRAW residual ({config.residual.members} member(s), {config.residual.units} units, lr {config.residual.lr}) "
        f"+ fresh actor-critic, {cal.updates} updates of batch {config.batch_size}x{config.batch_length}",
        f"  frozen world model from {run.src_dir} (presets {run.presets}); target data {args.data} ({cal.holdout:.0%} of episodes held out for KL)",
        f"  evaluation: {eval_plan(args, cal.eval_every)}",
        f"  {'resuming' if has_checkpoint(args.out) else 'writing'} {args.out}/: checkpoint/, tb/, scalars.jsonl, report.png (ReDRAW vs sim model), summary.json",
        f"  look: tensorboard --logdir {args.out}/tb ; open {args.out}/report.png ; cat {args.out}/summary.json",
    ])
    try:
        summary = run_calibrate(config, run.src_dir, args.data, args.out, eval_env=args.eval_env, eval_perturb=args.eval_perturb,
                                eval_kwargs=run.eval_kwargs, progress=not args.no_progress, accept_unclean=args.accept_unclean)
    except (CheckpointError, DatasetError) as exc:
        fail(str(exc))
    hold = summary.get("holdout") or {}
    lines = [f"done: {summary['counters']['updates']} updates in {summary['seconds']:.0f} s"]
    if hold:
        lines.append(f"  held-out KL(posterior || prior): sim model {hold['holdout/kl_sim']:.3f} -> ReDRAW {hold['holdout/kl_redraw']:.3f} "
                     f"({hold['holdout/kl_reduction']:.0%} lower)")
    lines += eval_result(args, summary)
    lines.append(f"  next: export --checkpoint {args.out} --out <dir>  (ONNX for the robot)")
    say(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
