"""Shared fixtures of the redraw_training tests.

`redraw_run` (session scope) runs the whole ReDRAW loop once on the tiny preset and the synthetic PointGoal
env, and the learning, export and CLI tests reuse it:

    1. pretrain online in the nominal env (DRAW world model + task policy)
    2. collect reward-free target data with random actions in the *reversed* env (training and held-out sets)
    3. calibrate: residual + fresh actor-critic on the target data, against the frozen pretrained model
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: the learning budget of the session fixture (env steps / updates); the tests state their margins
PRETRAIN_STEPS = 1100      # 500 random prefill steps, then one update per env step
CALIBRATE_UPDATES = 900
TARGET_EPISODES = 30


@dataclass
class RedrawRun:
    root: Path
    config: Any
    pretrain_dir: Path
    pretrain_summary: dict
    target_dir: Path
    calibrate_dir: Path
    calibrate_summary: dict


@pytest.fixture(scope="session")
def redraw_run(tmp_path_factory) -> RedrawRun:
    from redraw_training.calibration import calibrate
    from redraw_training.config import load_config
    from redraw_training.pretrain import pretrain
    from redraw_training.rollout import collect

    root = tmp_path_factory.mktemp("redraw_run")
    config = load_config(["tiny"], {
        "seed": 0,
        "threads": 1,
        "run.steps": PRETRAIN_STEPS,
        "run.eval_every": 0,
        "run.eval_eps": 5,
        "run.log_every": 100,
        "run.save_every": 0,
        "calibrate.updates": CALIBRATE_UPDATES,
        "calibrate.eval_every": 0,
        "calibrate.eval_eps": 5,
        "calibrate.log_every": 100,
        "calibrate.save_every": 0,
        "calibrate.holdout": 0.2,
    })
    pretrain_dir = root / "pretrain"
    pretrain_summary = pretrain(config, pretrain_dir, progress=False)
    target_dir = root / "target_reversed"
    collect("redraw/PointGoal-v0", target_dir, TARGET_EPISODES, "random", perturb="reversed", seed=123, keep_reward=False)
    calibrate_dir = root / "calibrate"
    calibrate_summary = calibrate(config, pretrain_dir, target_dir, calibrate_dir, eval_env="redraw/PointGoal-v0",
                                  eval_perturb="reversed", progress=False)
    return RedrawRun(root, config, pretrain_dir, pretrain_summary, target_dir, calibrate_dir, calibrate_summary)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs, loopback) for a module's tests; compare and run_graph use a session the caller
    holds instead of starting their own."""
    from redraw_training.cluster import ray_session

    with ray_session(None, 2, log=lambda line: None):
        yield
