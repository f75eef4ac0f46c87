"""Shared command-line pieces: preset/override options and the config they build."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

import yaml

from redraw_common.cli import CommandError

from ..config import Config, ConfigError, apply, load_config, preset_names


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
    changes: dict[str, Any] = {}
    if args.device is not None:
        changes["device"] = args.device
    if args.threads is not None:
        changes["threads"] = args.threads
    if args.seed is not None:
        changes["seed"] = args.seed
    return changes


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
