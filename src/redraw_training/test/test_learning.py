"""Learning effects on the tiny preset and the synthetic PointGoal env (the session fixture `redraw_run`
pretrains, collects reversed-action target data and calibrates once). Each test states its margin."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from redraw_training.checkpoint import load_agent
from redraw_training.draw_agent import Agent
from redraw_training.evaluation import evaluate
from redraw_training.replay import Replay
from redraw_training.runtime import to_torch

pytestmark = pytest.mark.slow


def _scalars(folder, key):
    rows = [json.loads(line) for line in (folder / "scalars.jsonl").read_text().splitlines()]
    return [(r["step"], r[key]) for r in rows if key in r]


def test_world_model_loss_falls(redraw_run):
    """The world-model loss of the last logging window is at most 10 % of the first one after prefill, and the
    image loss at most 5 %; the KL term does not blow up (posterior and prior stay close)."""
    model = _scalars(redraw_run.pretrain_dir, "model/loss")
    image = _scalars(redraw_run.pretrain_dir, "wm/image")
    assert len(model) >= 4, model
    assert model[-1][1] <= 0.10 * model[0][1], model
    assert image[-1][1] <= 0.05 * image[0][1], image
    kl = _scalars(redraw_run.pretrain_dir, "wm/kl")
    assert kl[-1][1] < 5.0, kl


def test_reconstructions_improve(redraw_run):
    """On the same replayed sequences, the trained model's posterior reconstructions have at most 10 % of the
    squared error of the untrained model (same architecture, same seed), and its open-loop predictions (5
    context frames, then actions only) at most 25 %."""
    from redraw_training.report import openloop

    trained, _, _ = load_agent(redraw_run.pretrain_dir, optimizers=False)
    torch.manual_seed(0)
    fresh = Agent(trained.config, trained.image_shape, trained.action_dim)
    replay = Replay(100_000, redraw_run.pretrain_dir / "replay", seed=7)
    replay.load_directory()
    batch = to_torch(replay.sample(8, 16), torch.device("cpu"))
    truth = batch["image"].float().numpy() / 255.0

    def errors(agent):
        torch.manual_seed(1)
        pred = openloop(agent, batch, context=5, residual=False)
        err = (pred - truth) ** 2
        return err[:, :5].mean(), err[:, 5:].mean()

    fresh_post, fresh_open = errors(fresh)
    post, open_ = errors(trained)
    assert post <= 0.10 * fresh_post, (post, fresh_post)
    assert open_ <= 0.25 * fresh_open, (open_, fresh_open)
    report = json.loads((redraw_run.pretrain_dir / "report.json").read_text())
    assert (redraw_run.pretrain_dir / "report.png").stat().st_size > 1000
    assert report["model_openloop_mse"] < fresh_open


def test_residual_lowers_heldout_kl(redraw_run):
    """On held-out reversed-action episodes, KL(posterior || corrected prior) is at least 30 % lower than
    KL(posterior || sim prior)."""
    hold = redraw_run.calibrate_summary["holdout"]
    assert hold["holdout/kl_sim"] > 0.5, hold  # the reversal is visible to the sim model
    assert hold["holdout/kl_redraw"] <= 0.70 * hold["holdout/kl_sim"], hold
    assert redraw_run.calibrate_summary["dataset"]["holdout_episodes"] >= 2


def test_frozen_weights_bit_identical(redraw_run):
    """Every world-model tensor of the calibrated checkpoint equals the pretrained one bit for bit; the
    residual and the fresh actor-critic exist and differ from the sim actor."""
    before = load_file(str(redraw_run.pretrain_dir / "checkpoint" / "weights.safetensors"))
    after = load_file(str(redraw_run.calibrate_dir / "checkpoint" / "weights.safetensors"))
    wm_keys = sorted(k for k in before if k.startswith("wm."))
    assert wm_keys and wm_keys == sorted(k for k in after if k.startswith("wm."))
    changed = [k for k in wm_keys if not torch.equal(before[k], after[k])]
    assert not changed, changed
    assert any(k.startswith("residual.") for k in after)
    actor = [k for k in before if k.startswith("task.actor.")]
    assert any(not torch.equal(before[k], after[k]) for k in actor)


def test_calibrated_policy_beats_zero_shot_in_shifted_env(redraw_run):
    """In the reversed-action env, over 3 evaluation seeds x 5 episodes, the policy trained in the corrected
    model scores at least 15 return points (of at most 50) more than the zero-shot sim policy on every seed.
    (Random actions score about 22, the sim policy drives away from the goal.)"""
    zero, cal = [], []
    for seed in (1000, 2000, 3000):
        zero.append(evaluate(redraw_run.pretrain_dir, perturb="reversed", episodes=5, seed=seed)["return_mean"])
        cal.append(evaluate(redraw_run.calibrate_dir, perturb="reversed", episodes=5, seed=seed)["return_mean"])
    diffs = np.array(cal) - np.array(zero)
    assert np.all(diffs >= 15.0), (zero, cal)


def test_sim_policy_works_in_the_nominal_env(redraw_run):
    """Sanity of pretraining: in the nominal env the sim policy beats random actions (about 22) by 10 points."""
    metrics = evaluate(redraw_run.pretrain_dir, episodes=5, seed=4000)
    assert metrics["return_mean"] >= 32.0, metrics
