"""calibrate: ReDRAW on an offline target dataset against a pretrained checkpoint.

Freezes the pretrained world model, fits the latent dynamics residual to the target data (reward-free) and
trains a fresh policy in imagination under the corrected dynamics, with the sim reward and continue heads.

    calibrate --checkpoint runs/pg_tiny --data data/pg_reversed --out runs/pg_redraw \\
              --eval-env redraw/PointGoal-v0 --eval-perturb reversed --updates 1000
    calibrate --checkpoint models/duckietown_draw --data bags/db1_reversed --out runs/db1_redraw

--data takes a dataset folder of .npz episodes, or rosbag2 recordings (a recording folder, a bag, or a folder
of those): bags are converted first with the checkpoint's preprocessing settings and vector size (a model with
a vector observes the recorded wheel odometry with each frame, then the last k recorded commands: vector_dim 2 + 2k,
redraw_common.observation), once, into OUT/dataset/, and the conversion report is printed; converted data that fail
the data checks are refused before any update (redraw_training.targetdata).
"""

from __future__ import annotations

import argparse

from redraw_common.cli import entry_point, renamed

from ..calibration import calibrate as run_calibrate
from ..calibration import check_calibration_source
from ..checkpoint import CheckpointError, has_checkpoint, load_agent, read_manifest
from ..config import ConfigError, config_from_dict
from ..datasets import DatasetError
from .common import add_config_args, build_config, check_out_dir, fail, parse_kwargs, say


@entry_point("calibrate")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="pretrained run folder or checkpoint folder")
    parser.add_argument("--data", required=True, help="target dataset folder (.npz episodes; reward not needed) or rosbag2 recording(s)")
    parser.add_argument("--out", required=True, help="output run folder (resumed if it already holds a calibration checkpoint)")
    parser.add_argument("--updates", type=int, default=None, help="offline updates (default: config calibrate.updates)")
    parser.add_argument("--eval-env", default=None, help="gymnasium id of the target env for periodic evaluation (optional)")
    parser.add_argument("--eval-perturb", default="", help="perturbation of the evaluation env, e.g. reversed")
    renamed(parser, "--perturb", "--eval-perturb (the evaluation env)")
    parser.add_argument("--env-kwargs", default=None, help="YAML mapping of eval env kwargs (default: the pretraining env's)")
    parser.add_argument("--accept-unclean", action="store_true",
                        help="calibrate on converted bags that fail the data checks (redraw_training.datacheck) instead of refusing")
    add_config_args(parser)
    args = parser.parse_args(argv)
    # everything checked before anything is written: the checkpoint (manifest, weights' sha256, the model they
    # describe), the output folder, the evaluation env's perturbation
    check_out_dir(args.out)
    try:
        src_dir, src = read_manifest(args.checkpoint)
        base = config_from_dict(src["config"], src.get("presets", []))
        load_agent(src_dir, "cpu", optimizers=False)
    except (CheckpointError, ConfigError) as exc:
        fail(str(exc))
    if args.eval_perturb and not args.eval_env:
        fail(f"--eval-perturb {args.eval_perturb!r} perturbs the evaluation env; it needs --eval-env")
    extra = {"calibrate.updates": args.updates} if args.updates is not None else {}
    config = build_config(args, base=base, extra=extra)
    src_env = src.get("extra", {}).get("env", {})
    eval_kwargs = parse_kwargs(args.env_kwargs) if args.env_kwargs else (dict(src_env.get("kwargs", {})) if args.eval_env == src_env.get("id") else {})
    if args.eval_env:      # the env (its id, kwargs and perturbation) is built once here, so that a bad one is refused first
        from ..envs import make_env

        try:
            make_env(args.eval_env, args.eval_perturb, **eval_kwargs).close()
        except (ValueError, TypeError) as exc:     # EnvSpecError, PerturbError; TypeError: an unknown env kwarg
            fail(f"--eval-env {args.eval_env} --eval-perturb {args.eval_perturb!r}: {exc}")
    try:
        check_calibration_source(src_dir, src, config, args.out)
    except CheckpointError as exc:
        fail(str(exc))
    cal = config.calibrate
    data = args.data
    say([
        f"calibrate: ReDRAW residual ({config.residual.members} member(s), {config.residual.units} units, lr {config.residual.lr}) "
        f"+ fresh actor-critic, {cal.updates} updates of batch {config.batch_size}x{config.batch_length}",
        f"  frozen world model from {src_dir} (presets {src.get('presets', [])}); target data {data} ({cal.holdout:.0%} of episodes held out for KL)",
        f"  evaluation: {args.eval_env + ' perturb ' + repr(args.eval_perturb) + f' every {cal.eval_every} updates' if args.eval_env else 'none (no --eval-env)'}",
        f"  {'resuming' if has_checkpoint(args.out) else 'writing'} {args.out}/: checkpoint/, tb/, scalars.jsonl, report.png (ReDRAW vs sim model), summary.json",
        f"  look: tensorboard --logdir {args.out}/tb ; open {args.out}/report.png ; cat {args.out}/summary.json",
    ])
    try:
        summary = run_calibrate(config, src_dir, data, args.out, eval_env=args.eval_env, eval_perturb=args.eval_perturb,
                                eval_kwargs=eval_kwargs, progress=not args.no_progress, accept_unclean=args.accept_unclean)
    except (CheckpointError, DatasetError) as exc:
        fail(str(exc))
    hold, ev = summary.get("holdout") or {}, summary.get("eval") or {}
    lines = [f"done: {summary['counters']['updates']} updates in {summary['seconds']:.0f} s"]
    if hold:
        lines.append(f"  held-out KL(posterior || prior): sim model {hold['holdout/kl_sim']:.3f} -> ReDRAW {hold['holdout/kl_redraw']:.3f} "
                     f"({hold['holdout/kl_reduction']:.0%} lower)")
    if ev:
        lines.append(f"  eval return in {args.eval_env} ({args.eval_perturb or 'nominal'}): {ev['return_mean']:.2f} +- {ev['return_std']:.2f}")
    lines.append(f"  next: export --checkpoint {args.out} --out <dir>  (ONNX for the robot)")
    say(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
