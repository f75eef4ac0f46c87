"""calibrate: ReDRAW on an offline target dataset against a pretrained checkpoint.

Freezes the pretrained world model, fits the latent dynamics residual to the target data (reward-free) and
trains a fresh policy in imagination under the corrected dynamics, with the sim reward and continue heads.

    calibrate --checkpoint runs/pg_tiny --data data/pg_reversed --out runs/pg_redraw \\
              --eval-env redraw/PointGoal-v0 --perturb reversed --updates 1000
    calibrate --checkpoint models/duckietown_draw --data bags/db1_reversed --out runs/db1_redraw

--data takes a dataset folder of .npz episodes, or rosbag2 recordings (a recording folder, a bag, or a folder
of those): bags are converted first with the checkpoint's preprocessing settings and vector size (a model with
a vector observes the recorded wheel odometry with each frame, then the last k recorded commands: vector_dim 2 + 2k,
redraw_common.observation) (redraw_training.bags), once, into OUT/dataset/,
and the conversion report is printed.
"""

from __future__ import annotations

import argparse

from redraw_common.cli import entry_point

from ..checkpoint import CheckpointError, load_agent, read_manifest
from ..config import ConfigError, config_from_dict
from ..datasets import DatasetError
from ..loops import calibrate as run_calibrate
from ..loops import check_calibration_source, has_checkpoint
from .common import add_config_args, build_config, check_out_dir, fail, parse_kwargs, say


@entry_point("calibrate")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="pretrained run folder or checkpoint folder")
    parser.add_argument("--data", required=True, help="target dataset folder (.npz episodes; reward not needed) or rosbag2 recording(s)")
    parser.add_argument("--out", required=True, help="output run folder (resumed if it already holds a calibration checkpoint)")
    parser.add_argument("--updates", type=int, default=None, help="offline updates (default: config calibrate.updates)")
    parser.add_argument("--eval-env", default=None, help="gymnasium id of the target env for periodic evaluation (optional)")
    parser.add_argument("--perturb", default="", help="perturbation of the evaluation env, e.g. reversed")
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
    if args.perturb and not args.eval_env:
        fail(f"--perturb {args.perturb!r} perturbs the evaluation env; it needs --eval-env")
    extra = {"calibrate.updates": args.updates} if args.updates is not None else {}
    config = build_config(args, base=base, extra=extra)
    src_env = src.get("extra", {}).get("env", {})
    eval_kwargs = parse_kwargs(args.env_kwargs) if args.env_kwargs else (dict(src_env.get("kwargs", {})) if args.eval_env == src_env.get("id") else {})
    if args.eval_env:      # the env (its id, kwargs and perturbation) is built once here, so that a bad one is refused first
        from ..envs import make_env

        try:
            make_env(args.eval_env, args.perturb, **eval_kwargs).close()
        except (ValueError, TypeError) as exc:     # EnvSpecError, PerturbError; TypeError: an unknown env kwarg
            fail(f"--eval-env {args.eval_env} --perturb {args.perturb!r}: {exc}")
    try:
        check_calibration_source(src_dir, src, config, args.out)
    except CheckpointError as exc:
        fail(str(exc))
    cal = config.calibrate
    data = _dataset_folder(args.data, args.out, src, config.batch_length, args.accept_unclean)
    say([
        f"calibrate: ReDRAW residual ({config.residual.members} member(s), {config.residual.units} units, lr {config.residual.lr}) "
        f"+ fresh actor-critic, {cal.updates} updates of batch {config.batch_size}x{config.batch_length}",
        f"  frozen world model from {src_dir} (presets {src.get('presets', [])}); target data {data} ({cal.holdout:.0%} of episodes held out for KL)",
        f"  evaluation: {args.eval_env + ' perturb ' + repr(args.perturb) + f' every {cal.eval_every} updates' if args.eval_env else 'none (no --eval-env)'}",
        f"  {'resuming' if has_checkpoint(args.out) else 'writing'} {args.out}/: checkpoint/, tb/, scalars.jsonl, report.png (ReDRAW vs sim model), summary.json",
        f"  look: tensorboard --logdir {args.out}/tb ; open {args.out}/report.png ; cat {args.out}/summary.json",
    ])
    try:
        summary = run_calibrate(config, src_dir, data, args.out, eval_env=args.eval_env, perturb=args.perturb,
                                eval_kwargs=eval_kwargs, progress=not args.no_progress)
    except (CheckpointError, DatasetError) as exc:
        fail(str(exc))
    hold, ev = summary.get("holdout") or {}, summary.get("eval") or {}
    lines = [f"done: {summary['counters']['updates']} updates in {summary['seconds']:.0f} s"]
    if hold:
        lines.append(f"  held-out KL(posterior || prior): sim model {hold['holdout/kl_sim']:.3f} -> ReDRAW {hold['holdout/kl_redraw']:.3f} "
                     f"({hold['holdout/kl_reduction']:.0%} lower)")
    if ev:
        lines.append(f"  eval return in {args.eval_env} ({args.perturb or 'nominal'}): {ev['return_mean']:.2f} +- {ev['return_std']:.2f}")
    lines.append(f"  next: export --checkpoint {args.out} --out <dir>  (ONNX for the robot)")
    say(lines)
    return 0


def _dataset_folder(data: str, out: str, manifest: dict, batch_length: int = 1, accept_unclean: bool = False) -> str:
    """`data` itself if it is a dataset folder; for rosbag2 input, the converted dataset (cached in OUT/dataset), after
    the data checks: a dataset that fails them is removed again (with OUT, if this call made it) and refused."""
    import shutil

    from ..bags import BagError, dataset_from_bags, format_report, is_bag_input
    from ..datacheck import failed_checks

    if not is_bag_input(data):
        return data
    from pathlib import Path

    from redraw_common.preprocessing import PreprocessConfig

    pre = manifest.get("preprocessing") or {}
    if not pre:
        fail(f"{data} holds rosbag2 recordings, but the checkpoint records no preprocessing settings to convert them with")
    control_hz = float(manifest.get("extra", {}).get("control_hz", 10.0))
    vector_dim = int(manifest["model"].get("vector_dim", 0))
    say([f"converting rosbag2 input {data} with the checkpoint's preprocessing ({pre.get('mode')}, "
         f"{pre.get('height')}x{pre.get('width')}){f' and a {vector_dim}-dim vector (odometry + last commands)' if vector_dim > 2 else ' and odometry vector' if vector_dim else ''} at {control_hz:g} Hz -> {out}/dataset/"])
    made_out = not Path(out).exists()
    made_dataset = not (Path(out) / "dataset").exists()
    def remove_what_this_call_made() -> None:    # a conversion cached by an earlier run stays
        if made_out or made_dataset:
            shutil.rmtree(Path(out) if made_out else Path(out) / "dataset", ignore_errors=True)

    try:
        folder, report = dataset_from_bags(data, Path(out) / "dataset", PreprocessConfig.from_dict(pre), control_hz, vector_dim=vector_dim,
                                           verbose=False)   # the report is printed below, also for a cached conversion
    except BagError as exc:
        remove_what_this_call_made()
        fail(str(exc))
    say([format_report(report)])
    failed = failed_checks(report, batch_length)
    if failed and not accept_unclean:
        remove_what_this_call_made()
        fail(f"{data}: the converted data fail {len(failed)} check(s); nothing was trained:\n  - "
             + "\n  - ".join(failed) + "\n(record again, on a less loaded machine if frames or ticks were lost, or pass --accept-unclean to calibrate on them anyway)")
    if failed:
        say([f"warning: calibrating on data that fail {len(failed)} check(s) (--accept-unclean): " + "; ".join(failed)])
    return str(folder)


if __name__ == "__main__":
    raise SystemExit(main())
