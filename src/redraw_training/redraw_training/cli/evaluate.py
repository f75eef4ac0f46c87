"""evaluate: roll a checkpoint's policy in an env (optionally perturbed) and write metrics JSON.

    evaluate --checkpoint runs/pg_redraw --env redraw/PointGoal-v0 --eval-perturb reversed --episodes 20 --out eval.json
"""

from __future__ import annotations

import argparse

from redraw_common.cli import entry_point, renamed
from redraw_common.files import write_json

from ..checkpoint import CheckpointError
from ..envs import EnvSpecError
from ..evaluation import evaluate
from .common import fail, parse_kwargs, say, set_threads


@entry_point("evaluate")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder (pretrain or calibrate)")
    parser.add_argument("--env", default=None, help="gymnasium env id (default: the env the checkpoint was pretrained in)")
    parser.add_argument("--eval-perturb", default="", help="perturbation of the evaluation env, e.g. reversed or gain:0.5,drift:0.2")
    renamed(parser, "--perturb", "--eval-perturb (the evaluation env)")
    parser.add_argument("--env-kwargs", default=None, help="YAML mapping of env kwargs (default: the pretraining env's)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i")
    parser.add_argument("--mean", action="store_true", help="act with the actor's mean and the posterior mode (as the ONNX export); "
                        "default: sample both, as the paper's evaluation does")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True, help="metrics JSON file to write")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: single-frame inference gains nothing from more, and loses a lot on a busy machine)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    say([
        f"evaluate: {args.episodes} episodes of the policy in {args.checkpoint} in {args.env or '(its pretraining env)'} "
        f"with perturb {args.eval_perturb!r}, actions {'mean' if args.mean else 'sampled'}",
        f"  writing {args.out} (returns, mean/std, env info metrics); look: cat {args.out}",
    ])
    try:
        metrics = evaluate(args.checkpoint, args.env, args.eval_perturb, args.episodes, args.seed, sample=not args.mean, device=args.device,
                           env_kwargs=parse_kwargs(args.env_kwargs) if args.env_kwargs else None)
    except (CheckpointError, EnvSpecError, ValueError) as exc:
        fail(str(exc))
    write_json(args.out, metrics)
    say([f"done: return {metrics['return_mean']:.2f} +- {metrics['return_std']:.2f} (min {metrics['return_min']:.2f}, max {metrics['return_max']:.2f})"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
