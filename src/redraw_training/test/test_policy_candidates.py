"""The policy-side options of calibrate (issue #19, results/duckietown/safety/PLAN_policy.md): calibrate.warm_start
(the policy starts from the sim policy's weights) and calibrate.select (ship the calibrated policy only if its
imagined return in the corrected model beats the sim policy's). Uses the session fixture `redraw_run` (tiny preset,
PointGoal: a nominal-pretrained DRAW, reversed target data, a 900-update calibration)."""

from __future__ import annotations

import pytest
import torch

from redraw_training.calibration import HoldoutKL, calibrate, check_calibration_source, imagined_return, select_policy
from redraw_training.checkpoint import CheckpointError, load_agent, read_manifest
from redraw_training.config import ConfigError
from redraw_training.datasets import load_target_dataset
from redraw_training.evaluation import evaluate
from redraw_training.rollout import collect

pytestmark = pytest.mark.slow


def _holdout(agent, run, data_dir):
    config = run.config
    data = load_target_dataset(data_dir, holdout=config.calibrate.holdout, seed=config.seed)
    return HoldoutKL(data.holdout, agent.wm.posterior_logits, agent.prior_kl, torch.device("cpu"), config.batch_length, seed=config.seed)


def test_warm_start_copies_the_sim_policy_and_a_fresh_start_does_not(redraw_run):
    agent, _, _ = load_agent(redraw_run.pretrain_dir, "cpu", optimizers=False)
    sim = {k: v.clone() for k, v in agent.task.state_dict().items()}
    assert int(sim["updates"]) > 0
    agent.start_calibration(agent.config.update({"calibrate.warm_start": True}))
    warm = agent.task.state_dict()
    assert all(torch.equal(warm[k], sim[k]) for k in sim if k != "updates") and int(warm["updates"]) == 0
    torch.manual_seed(0)
    agent.start_calibration(agent.config.update({"calibrate.warm_start": False}))
    fresh = agent.task.state_dict()
    actor = [k for k in sim if k.startswith("actor.")]
    assert actor and all(not torch.equal(fresh[k], sim[k]) for k in actor if k.endswith("weight"))


def test_imagined_return_is_seeded_and_leaves_the_callers_rng_alone(redraw_run):
    agent, _, _ = load_agent(redraw_run.calibrate_dir, "cpu", optimizers=False)
    hold = _holdout(agent, redraw_run, redraw_run.target_dir)
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    a = imagined_return(agent, agent.task, hold, 10, seed=3)
    after = torch.rand(3)
    assert torch.equal(before, after)
    assert imagined_return(agent, agent.task, hold, 10, seed=3) == a
    assert imagined_return(agent, agent.task, hold, 10, seed=4) != a


def test_select_keeps_the_policy_calibrated_on_reversed_data(redraw_run):
    """On reversed data the corrected model knows the reversal: the 900-update calibrated policy's imagined return
    beats the sim policy's (which drives the wrong way) and selection keeps it, weights untouched."""
    agent, _, _ = load_agent(redraw_run.calibrate_dir, "cpu", optimizers=False)
    sim_task = load_agent(redraw_run.pretrain_dir, "cpu", optimizers=False)[0].task
    before = {k: v.clone() for k, v in agent.task.state_dict().items()}
    choice = select_policy(agent, sim_task, _holdout(agent, redraw_run, redraw_run.target_dir), 15, seed=0)
    returns = choice["imagined_return"]
    assert choice["kept"] == "calibrated" and returns["calibrated"] > returns["sim"], choice
    assert all(torch.equal(v, before[k]) for k, v in agent.task.state_dict().items())


@pytest.fixture(scope="module")
def nominal_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("nominal") / "data"
    collect("redraw/PointGoal-v0", out, 20, "random", perturb="", seed=321, keep_reward=False)
    return out


def test_select_ships_the_sim_policy_over_an_undertrained_one(redraw_run, nominal_data, tmp_path):
    """On nominal data with 5 policy updates, the sim policy's imagined return is higher: the checkpoint then holds
    the sim policy, which drives exactly as the pretrained checkpoint does; the choice is in the summary and the
    manifest, and a resumed run keeps it without comparing again."""
    config = redraw_run.config.update({"calibrate.updates": 5, "calibrate.select": True})
    out = tmp_path / "cal"
    summary = calibrate(config, redraw_run.pretrain_dir, nominal_data, out, progress=False)
    choice = summary["policy_selection"]
    assert choice["kept"] == "sim" and choice["updates"] == 5, choice
    assert choice["imagined_return"]["sim"] > choice["imagined_return"]["calibrated"]
    assert read_manifest(out)[1]["extra"]["policy_selection"] == choice
    shipped = evaluate(out, perturb="", episodes=3, seed=500)
    sim = evaluate(redraw_run.pretrain_dir, perturb="", episodes=3, seed=500)
    assert shipped["returns"] == sim["returns"]
    import redraw_training.calibration as calibration

    with pytest.MonkeyPatch.context() as m:
        m.setattr(calibration, "select_policy", lambda *a, **k: pytest.fail("the policies were compared again"))
        again = calibrate(config, redraw_run.pretrain_dir, nominal_data, out, progress=False)
    assert again["policy_selection"] == choice


def test_the_options_are_refused_where_they_cannot_work(redraw_run):
    src = read_manifest(redraw_run.pretrain_dir)
    with pytest.raises(ConfigError, match=r"calibrate.select compares the policies on held-out .*found 0.0"):
        check_calibration_source(*src, redraw_run.config.update({"calibrate.select": True, "calibrate.holdout": 0.0}), None)
    with pytest.raises(CheckpointError, match=r"calibrate.warm_start: checkpoint False, now True"):
        check_calibration_source(*src, redraw_run.config.update({"calibrate.warm_start": True}), redraw_run.calibrate_dir)
