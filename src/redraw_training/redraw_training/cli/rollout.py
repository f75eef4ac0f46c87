"""rollout: write episodes of a policy (random, the env's scripted exploration driver, or a checkpoint's) in an env to a
dataset folder (the episode format of redraw_common) with its dataset.json.

    rollout --env redraw/PointGoal-v0 --target-perturb reversed --episodes 40 --policy random --out data/pg_reversed
    rollout --env redraw/DuckietownLoop-v0 --target-perturb reversed --episodes 10 --policy scripted --no-reward --out data/dt_rev
Use it to make target datasets for `calibrate` from the synthetic env or a simulator.
"""

from __future__ import annotations

import argparse

from redraw_common.cli import entry_point, renamed

from ..checkpoint import CheckpointError
from ..envs import EnvSpecError
from ..rollout import collect
from .common import fail, parse_kwargs, say, set_threads


@entry_point("rollout")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rollout", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="gymnasium env id")
    parser.add_argument("--target-perturb", default="", help="perturbation of the env the data are recorded in (the target), e.g. reversed")
    renamed(parser, "--perturb", "--target-perturb (the env the data are recorded in)")
    parser.add_argument("--env-kwargs", default=None, help="YAML mapping of env kwargs, e.g. '{size: 32}'")
    parser.add_argument("--episodes", type=int, required=True)
    parser.add_argument("--policy", default="random", help="'random', 'scripted' (the env package's exploration driver: "
                        "redraw_sim's ExploreDriver for lane envs) or a checkpoint folder whose policy acts")
    parser.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise added to a checkpoint policy's actions")
    parser.add_argument("--no-reward", action="store_true", help="leave out rewards (as real calibration data has none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="dataset folder to write ep_*.npz into")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: single-frame inference gains nothing from more, and loses a lot on a busy machine)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    say([f"rollout: {args.episodes} episodes of policy {args.policy!r} in {args.env} (perturb {args.target_perturb!r})",
         f"  writing {args.out}/ep_*.npz and {args.out}/dataset.json; look: cat {args.out}/dataset.json"])
    try:
        metrics = collect(args.env, args.out, args.episodes, args.policy, args.target_perturb, args.seed, parse_kwargs(args.env_kwargs),
                          keep_reward=not args.no_reward, action_noise=args.noise)
    except (CheckpointError, EnvSpecError, ValueError) as exc:
        fail(str(exc))
    say([f"done: {metrics['steps']} steps, return {metrics['return_mean']:.2f} +- {metrics['return_std']:.2f}"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
