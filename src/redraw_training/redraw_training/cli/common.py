"""Shared command-line pieces: preset/override options and the config they build; the options and up-front
checks of the commands that train on offline target data (calibrate, finetune)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from redraw_common.cli import CommandError, renamed

from ..config import Config, ConfigError, apply, config_from_dict, load_config, preset_names


def add_config_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration (configs.yaml)")
    group.add_argument("--preset", action="append", default=[], metavar="NAME",
                       help=f"named preset(s) applied over the defaults, in order; one of {preset_names()} (repeat or comma-separate)")
    group.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                       help="override one config key (dotted, YAML value), e.g. --set rssm.units=128 --set env.kwargs.size=64")
    group.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: config 'device')")
    group.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: config 'threads'; 0 = one per free core)")
    group.add_argument("--seed", type=int, default=None, help="random seed (default: config 'seed')")
    group.add_argument("--no-progress", action="store_true", help="no progress bar (logs and TensorBoard are still written)")


def set_threads(threads: int) -> None:
    if threads and threads > 0:
        import torch

        torch.set_num_threads(threads)


def runtime(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys --device, --threads and --seed set (those given)."""
    return {key: getattr(args, key) for key in ("device", "threads", "seed") if getattr(args, key) is not None}


def build_config(args: argparse.Namespace, base: Config | None = None, extra: dict[str, Any] | None = None) -> Config:
    try:
        config = load_config(args.preset, args.overrides) if base is None else apply(base, args.preset, args.overrides)
        return config.update({**runtime(args), **(extra or {})})
    except ConfigError as exc:
        fail(str(exc))
        raise  # unreachable


def parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        fail(f"--env-kwargs must be a YAML mapping like '{{size: 64}}': {exc}")
    if not isinstance(value, dict):
        fail(f"--env-kwargs must be a YAML mapping like '{{size: 64}}', found {text!r}")
    return value


def fail(message: str, code: int = 2) -> NoReturn:
    """Refuse: the CLI's entry_point prints `PROG: error: MESSAGE` and exits with `code`."""
    raise CommandError(message, code)


def check_out_dir(path: str | Path, option: str = "--out") -> None:
    """Refuse an output folder that cannot be made (redraw_common.paths), before anything is written."""
    from redraw_common.paths import out_dir_problem

    problem = out_dir_problem(path, option)
    if problem:
        fail(problem)


def say(lines: list[str]) -> None:
    for line in lines:
        print(line, flush=True)


def add_target_args(parser: argparse.ArgumentParser, verb: str, checkpoint_help: str, out_help: str) -> None:
    """The options of a command that trains a pretrained checkpoint on offline target data (`verb`: calibrate,
    finetune): the checkpoint, the data, the output folder, the budget, the evaluation env, the configuration."""
    parser.add_argument("--checkpoint", required=True, help=checkpoint_help)
    parser.add_argument("--data", required=True, help="target dataset folder (.npz episodes; reward not needed) or rosbag2 recording(s), "
                                                      "converted once with the checkpoint's settings into OUT/dataset/")
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--updates", type=int, default=None, help="offline updates (default: config calibrate.updates)")
    parser.add_argument("--eval-env", default=None, help="gymnasium id of the target env for periodic evaluation (optional)")
    parser.add_argument("--eval-perturb", default="", help="perturbation of the evaluation env, e.g. reversed")
    renamed(parser, "--perturb", "--eval-perturb (the evaluation env)")
    parser.add_argument("--env-kwargs", default=None, help="YAML mapping of eval env kwargs (default: the pretraining env's)")
    parser.add_argument("--accept-unclean", action="store_true",
                        help=f"{verb} on converted bags that fail the data checks (redraw_training.datacheck) instead of refusing")
    add_config_args(parser)


@dataclass(frozen=True)
class TargetRun:
    """What `prepare_target_run` checked: the pretrained checkpoint, the config to train with, the eval env's kwargs."""

    src_dir: Path
    manifest: dict[str, Any]
    config: Config
    eval_kwargs: dict[str, Any]

    @property
    def presets(self) -> list[str]:
        return list(self.manifest.get("presets", []))


def prepare_target_run(args: argparse.Namespace) -> TargetRun:
    """Everything checked before anything is written or converted: the output folder, the checkpoint (manifest,
    weights' sha256, the model they describe), the config built over the checkpoint's, the evaluation env (its id,
    kwargs and perturbation, built once so that a bad one is refused first)."""
    from ..checkpoint import CheckpointError, load_agent, read_manifest

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
    if args.env_kwargs:
        eval_kwargs = parse_kwargs(args.env_kwargs)
    else:
        eval_kwargs = dict(src_env.get("kwargs", {})) if args.eval_env == src_env.get("id") else {}
    if args.eval_env:
        from ..envs import make_env

        try:
            make_env(args.eval_env, args.eval_perturb, **eval_kwargs).close()
        except (ValueError, TypeError) as exc:     # EnvSpecError, PerturbError; TypeError: an unknown env kwarg
            fail(f"--eval-env {args.eval_env} --eval-perturb {args.eval_perturb!r}: {exc}")
    return TargetRun(src_dir, src, config, eval_kwargs)


def eval_plan(args: argparse.Namespace, every: int) -> str:
    """The evaluation a target run will do (every `every` updates and at the end), as a phrase for its plan."""
    if not args.eval_env:
        return "none (no --eval-env)"
    return f"{args.eval_env} perturb {args.eval_perturb!r}" + (f" every {every} updates and" if every else "") + " at the end"


def eval_result(args: argparse.Namespace, summary: dict[str, Any]) -> list[str]:
    """The final evaluation of a target run's summary, as lines (none without one)."""
    ev = summary.get("eval") or {}
    if not ev:
        return []
    return [f"  eval return in {args.eval_env} ({args.eval_perturb or 'nominal'}): {ev['return_mean']:.2f} +- {ev['return_std']:.2f}"]
