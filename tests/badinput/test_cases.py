"""Every generated bad input (cases.py) is refused: the expected exit code, a message naming the problem, no
traceback, and the case's folder byte for byte as the generator left it.

CLIs run in this process (their own `main`, so an exception that escapes it fails here as it would reach the
user); nodes run as processes, as `ros2 run` starts them, in their own DDS domain on loopback."""

from __future__ import annotations

import hashlib
import importlib
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from badinput.cases import CASES, CLIS, NODES
from helpers.rosproc import NodeGroup

from redraw_common.preprocessing import PreprocessConfig

PRE = PreprocessConfig(height=32, width=32)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root -> the sha256 of a file's bytes, or 'dir'."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> SimpleNamespace:
    """The valid inputs the cases spoil: an untrained tiny DRAW agent saved as a sim-pretrained checkpoint."""
    from redraw_training.checkpoint import save_checkpoint
    from redraw_training.config import load_config
    from redraw_training.draw_agent import Agent

    agent = Agent(load_config(["tiny"]), PRE.shape, 2)
    ckpt = save_checkpoint(tmp_path_factory.mktemp("fx") / "ckpt", agent, kind="pretrain", counters={}, preprocessing=PRE.to_dict())
    return SimpleNamespace(checkpoint=ckpt)


def run_cli(tool: str, argv: list[str], capsys) -> tuple[int, str]:
    main = importlib.import_module(CLIS[tool]).main
    try:
        code = main(argv)
    except SystemExit as exc:    # argparse's own usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def run_node(tool: str, params: dict, run_dir: Path) -> tuple[int, str]:
    with NodeGroup(run_dir) as group:
        proc = group.start_executable(NODES[tool], tool, params=params)
        code = proc.wait(60)
        return code, proc.output()


def test_the_suite_covers_every_class_with_at_least_40_cases():
    per_class = Counter(c.cls for c in CASES)
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES), per_class
    assert set(per_class) == {"bag", "garbage", "checkpoint", "onnx", "parameter"} and min(per_class.values()) >= 5, per_class


@pytest.mark.parametrize("c", CASES, ids=[f"{c.cls}-{c.name}" for c in CASES])
def test_bad_input_is_refused_naming_the_problem_and_writes_nothing(c, fx, tmp_path, capsys):
    root = tmp_path / "case"
    root.mkdir()
    made = c.make(root, fx)
    before = snapshot(root)
    if c.tool in CLIS:
        code, output = run_cli(c.tool, made, capsys)
    else:
        code, output = run_node(c.tool, made, tmp_path / "ros")
    assert code == c.code, f"{c.tool} exited {code}, expected {c.code}:\n{output}"
    assert re.search(c.message, output, re.S), f"{c.tool}'s output does not match {c.message!r}:\n{output}"
    assert "Traceback" not in output, output
    assert snapshot(root) == before, f"{c.tool} changed {root}:\n{output}"
    if c.tool == "policy_node":
        assert "No wheel command was sent" in output, output
