"""compare: the paper's comparison in one command, methods x target conditions x seeds (+ dataset sizes).

    compare --env redraw/PointGoal-v0 --target-perturb reversed --seeds 3 --out runs/cmp --preset tiny \\
            --pretrain-steps 3000 --updates 1000 --sizes 2000
    compare --env redraw/PointGoal-v0 --target-perturb reversed,gain:0.5 --methods draw_finetune,redraw \\
            --sizes 500,1000,3000,10000 --seeds 3 --out runs/sweep           (dataset-size sweep)
    compare --draw-checkpoint models/duckietown_draw --dreamer-checkpoint models/duckietown_dreamer \\
            --target-perturb nominal,reversed,trim:0.1,gain:0.5 --seeds 3 --sizes 10000 --updates 3000 --out results/duckietown

Methods: dreamer_zeroshot, dreamer_finetune, draw_zeroshot, draw_finetune, redraw. Per seed it pretrains a DRAW and a
DreamerV3 model in the source env (with --explore, Plan2Explore by default), or takes the given --draw-checkpoint /
--dreamer-checkpoint for every seed (then the seeds vary the target data, the calibration / finetune seed and the
evaluation episodes, not the pretraining); collects reward-free target data in each target condition ('nominal' =
the unmodified env, the paper's "unmodified real"; the exploration driver for lane envs, random actions otherwise);
runs calibration / finetuning with the same budget on the same data, and evaluates every policy in the target env the
same way. Writes OUT/results.json, OUT/table.md (mean ± SEM over seeds; for lane envs the paper's Duckiebot table:
dense reward per step, lap time, centre offset, laps) and OUT/plot.png; rerunning the same command resumes
(finished cells are skipped). Exit status 1 when a cell failed (its error is under the table and in results.json).
A sweep longer than one machine's session: --record DIR keeps its records (results without weights and datasets) in
a folder to commit, and the same command on a fresh clone resumes from them.

Every cell is a Ray task. Without --ray-address, a local Ray instance of --jobs CPUs runs them; on a cluster:

    ray start --head --port 6379                        # on the head machine
    ray start --address HEAD:6379                       # on every other machine (same venv and code)
    compare --ray-address HEAD:6379 ... --out runs/big   # on the head: cells spread over every node's CPUs
"""

from __future__ import annotations

import argparse
from pathlib import Path

from redraw_common.cli import entry_point, renamed

from ..config import ConfigError, preset_names
from .common import fail, parse_kwargs, say

NOMINAL = ("nominal", "none")


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{what} must be comma-separated integers, found {text!r}")
    return values


def parse_conditions(values: list[str]) -> list[str]:
    """--target-perturb values -> perturbation strings: comma-separated conditions, 'nominal' (or 'none') = "",
    '+' joins the parts of one compound perturbation (trim:0.1+delay:0.1 -> "trim:0.1,delay:0.1")."""
    out = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            out.append("" if item.lower() in NOMINAL else ",".join(p.strip() for p in item.split("+") if p.strip()))
    return out


@entry_point("compare")
def main(argv: list[str] | None = None) -> int:
    from ..cluster import ClusterError
    from ..compare import compare
    from ..compare_settings import METHODS, TARGET_DRIVERS, CompareError, CompareSettings, checkpoint_env

    parser = argparse.ArgumentParser(prog="compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=None, help="gymnasium env id (source and target); default: the env of --draw-checkpoint "
                        "(or --dreamer-checkpoint) with its env kwargs")
    parser.add_argument("--target-perturb", action="append", required=True, metavar="CONDITIONS",
                        help="target condition(s), comma-separated, e.g. nominal,reversed,trim:0.1 ('nominal' = unmodified; "
                        "'+' joins a compound perturbation: trim:0.1+delay:0.1); repeatable")
    parser.add_argument("--train-perturb", default="", help="perturbation of the source (pretraining) env (default: nominal)")
    renamed(parser, "--source-perturb", "--train-perturb (the pretraining env)")
    parser.add_argument("--env-kwargs", default=None, help="YAML mapping of env kwargs for source and target")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--seeds", default="3", help="number of seeds (0..N-1) or a comma-separated list, e.g. 0,1,2")
    parser.add_argument("--out", required=True, help="output folder (resumed when it holds finished cells)")
    parser.add_argument("--draw-checkpoint", default=None, metavar="DIR",
                        help="pretrained DRAW checkpoint (run or checkpoint folder) for every seed instead of pretraining one per seed")
    parser.add_argument("--dreamer-checkpoint", default=None, metavar="DIR",
                        help="pretrained Dreamer checkpoint for every seed instead of pretraining one per seed")
    parser.add_argument("--preset", action="append", default=[], metavar="NAME",
                        help=f"size preset(s) for the models pretrained here (default tiny); one of {preset_names()}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help="config override for every stage; a key only one world model reads (rssm.*, dreamer.*, ...: config.MODEL_KEYS) goes to that model's stages")
    parser.add_argument("--explore", default="plan2explore", choices=("task", "plan2explore", "scripted"), help="pretraining data collection")
    parser.add_argument("--pretrain-steps", type=int, default=None, help="env steps of pretraining (default: config run.steps)")
    parser.add_argument("--updates", type=int, default=None, help="offline updates of ReDRAW and the finetunes (default: calibrate.updates)")
    parser.add_argument("--sizes", default="2000", help="target dataset size(s) in transitions, comma-separated (a sweep when several)")
    parser.add_argument("--target-driver", default="auto", choices=TARGET_DRIVERS,
                        help="who collects the target data: auto = the exploration driver (redraw_sim ExploreDriver) for lane envs, "
                        "random actions otherwise; policy = the seed's pretrained source task policy with action noise (--target-noise)")
    parser.add_argument("--target-noise", type=float, default=0.3,
                        help="--target-driver policy: std of the Gaussian noise added to the policy's actions (clipped to [-1, 1])")
    parser.add_argument("--eval-episodes", type=int, default=10, help="evaluation episodes per policy and seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (and Ray CPUs) per cell")
    parser.add_argument("--jobs", type=int, default=None, help="CPUs of the local Ray instance, i.e. cells run at once at "
                        "--threads 1 (default: this machine's cores); ignored with --ray-address")
    parser.add_argument("--record", default=None, metavar="DIR",
                        help="keep the sweep's records in DIR (each finished cell as it ends, without its weights, episodes "
                        "and other files over 512 KiB, which are named with their sha256; the models used; at the end the results): restored into --out first, so a sweep committed as "
                        "records resumes on a fresh clone, recomputing a record only where a cell still to run needs it; "
                        "to recompute a cell, remove its folder from both")
    parser.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                        help="run the cells on this Ray cluster (ray start --head ...; 'auto' = the one this machine "
                        "belongs to) instead of a local Ray instance")
    args = parser.parse_args(argv)
    seeds = _ints(args.seeds, "--seeds")
    if len(seeds) == 1 and "," not in args.seeds:
        seeds = list(range(seeds[0]))
    env, user_kwargs = args.env, parse_kwargs(args.env_kwargs)
    env_kwargs = dict(user_kwargs)
    given = args.draw_checkpoint or args.dreamer_checkpoint
    for flag, path in (("--draw-checkpoint", args.draw_checkpoint), ("--dreamer-checkpoint", args.dreamer_checkpoint)):
        if path is not None and not Path(path).exists():
            fail(f"{flag} {path}: no such folder")
    recorded = {}
    for model, path in (("draw", args.draw_checkpoint), ("dreamer", args.dreamer_checkpoint)):
        if path is not None:
            try:
                recorded[model] = checkpoint_env(path)
            except (OSError, ValueError, KeyError) as exc:
                fail(f"cannot read the env of {path}: {exc}")
    if env is None:
        if not given:
            fail("give --env, or a pretrained --draw-checkpoint / --dreamer-checkpoint to take the env from")
        env = recorded["draw" if args.draw_checkpoint else "dreamer"][0]
    # each given model acts in its own checkpoint's env settings (DRAW: velocity + past actions; Dreamer: velocity),
    # with --env-kwargs on top; the target data is collected with DRAW's, whose vector extends Dreamer's
    model_env_kwargs = {model: {**kwargs, **user_kwargs} for model, (env_id, kwargs) in recorded.items() if env_id == env}
    if model_env_kwargs:
        env_kwargs = dict(model_env_kwargs.get("draw", model_env_kwargs.get("dreamer")))
    settings = CompareSettings(
        env=env, target_perturbs=parse_conditions(args.target_perturb), out=Path(args.out),
        methods=[m.strip() for m in args.methods.split(",") if m.strip()], seeds=seeds,
        presets=[p for name in (args.preset or ["tiny"]) for p in name.split(",") if p], overrides=args.overrides,
        explore=args.explore, source_perturb=args.train_perturb, env_kwargs=env_kwargs, model_env_kwargs=model_env_kwargs,
        pretrain_steps=args.pretrain_steps, updates=args.updates, sizes=_ints(args.sizes, "--sizes"),
        target_driver=args.target_driver, target_noise=args.target_noise, eval_episodes=args.eval_episodes, threads=args.threads, jobs=args.jobs,
        ray_address=args.ray_address, draw_checkpoint=args.draw_checkpoint, dreamer_checkpoint=args.dreamer_checkpoint,
        record=Path(args.record) if args.record else None)
    try:
        settings.check()
    except CompareError as exc:
        fail(str(exc))
    conditions = [p or "nominal" for p in settings.target_perturbs]
    pretraining = []
    for model, path in (("DRAW", settings.draw_checkpoint), ("Dreamer", settings.dreamer_checkpoint)):
        if path:
            pretraining.append(f"{model}: {path} for every seed")
    if len(pretraining) < 2:
        pretraining.append(f"{'others' if pretraining else 'all'}: pretrained per seed, presets {settings.presets}, explore {settings.explore}, "
                           f"{settings.pretrain_steps or 'config'} env steps")
    say([
        f"compare: {', '.join(settings.methods)} in {settings.env}, target conditions {conditions}, seeds {settings.seeds}, "
        f"dataset sizes {settings.sizes}",
        f"  pretrained models: {'; '.join(pretraining)}",
        *(["  (given checkpoints: the seeds vary the target data collection, the calibration / finetune seed and the evaluation "
           "episodes' seeds, not the pretraining)"] if given else []),
        f"  offline: {settings.updates or 'config'} updates on {settings.target_driver}-driver target data; evaluation: "
        f"{settings.eval_episodes} episodes per policy",
        f"  writing {args.out}/: pretrain/, data/, runs/, evals/, logs/, results.json, table.md, plot.png; look: cat {args.out}/table.md",
    ])
    try:
        results = compare(settings)
    except (CompareError, ClusterError, ConfigError, ValueError) as exc:
        fail(str(exc))
    failed = results["failed"]
    say([(Path(args.out) / "table.md").read_text(), f"done in {results['seconds']:.0f} s"
         + (f"; {len(failed)} cell(s) FAILED (listed under the table; logs in {args.out}/logs/)" if failed else "")])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
