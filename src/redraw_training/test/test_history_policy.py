"""history_to_policy: the Duckiebot vector's past actions go to the actor and critic, not to the world model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from redraw_training.agents import build_agent
from redraw_training.behavior import ImagActorCritic, shift_history
from redraw_training.config import load_config
from redraw_training.nets import mode_onehot


def _agent(vector_dim: int = 6, **sets):
    config = load_config(["tiny"], ["history_to_policy=true", *(f"{k}={v}" for k, v in sets.items())])
    torch.manual_seed(0)
    return build_agent(config, (16, 16, 3), 2, vector_dim)


def _obs(n: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randint(0, 255, (n, 16, 16, 3), generator=g, dtype=torch.uint8),
            "vector": torch.rand(n, 6, generator=g) * 2 - 1}


def _perturbed_history(obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    vector = obs["vector"].clone()
    vector[:, 2:] = -vector[:, 2:] + 0.5
    return {**obs, "vector": vector}


def test_the_world_model_encodes_the_velocity_and_the_policy_reads_the_past_actions():
    agent = _agent()
    assert agent.wm.model_vector_dim == 2 and agent.hist_dim == 4 and agent.vector_dim == 6
    # make the actor's history weights non-zero, so that the history can matter
    with torch.no_grad():
        for p in agent.task.actor.parameters():
            p.add_(0.1 * torch.randn_like(p))
    obs, other = _obs(), _perturbed_history(_obs())
    with torch.no_grad():
        assert torch.equal(agent.wm.posterior_logits(obs), agent.wm.posterior_logits(other))
        z = mode_onehot(agent.wm.posterior_logits(obs)).flatten(-2)
        a = agent.task.policy(z, sample=False, hist=obs["vector"][:, 2:])
        b = agent.task.policy(z, sample=False, hist=other["vector"][:, 2:])
        assert torch.allclose(agent.policy(obs, sample=False), a.clamp(-1, 1))
    assert (a - b).abs().max() > 1e-3


def test_a_policy_with_history_needs_it_and_a_vector_of_another_layout_is_refused():
    agent = _agent()
    z = torch.zeros(2, agent.wm.zdim)
    with pytest.raises(ValueError, match="last 4 action entries"):
        agent.task.policy(z, hist=None)
    with pytest.raises(ValueError, match="vector. observation"):
        agent.policy({"image": _obs()["image"]})
    velocity_only = _agent(vector_dim=2)    # nothing to route: the model encodes the velocity, the policy reads z
    assert velocity_only.hist_dim == 0 and velocity_only.wm.model_vector_dim == 2
    with pytest.raises(ValueError, match="2 \\+ 2k"):
        _agent(vector_dim=5)


def test_imagination_carries_the_history_of_the_imagined_actions():
    agent = _agent()
    ac: ImagActorCritic = agent.task
    n = 5
    start = {"z": torch.zeros(n, agent.wm.zdim), "sigma": torch.full((n, agent.wm.zdim), 1.0 / 8),
             "cont": torch.ones(n), "hist": torch.rand(n, 4)}
    start["z"].view(n, -1, agent.wm.draw.stoch)[:, 0] = 1.0    # one valid one-hot per latent (class 0)
    traj = ac.imagine(agent.wm, start)
    feat, action = traj["feat"], traj["action"]
    hist = feat[..., agent.wm.zdim:]
    assert torch.equal(hist[0], start["hist"])
    for t in range(ac.config.imag_horizon):
        assert torch.equal(hist[t + 1], shift_history(hist[t], action[t]))
        assert torch.equal(hist[t + 1][:, :2], action[t]) and torch.equal(hist[t + 1][:, 2:], hist[t][:, :2])


def test_training_steps_run_with_the_history_in_pretraining_and_calibration():
    agent = _agent(imag_starts=16)
    g = torch.Generator().manual_seed(3)
    b, t = 2, 8
    batch = {"image": torch.randint(0, 255, (b, t, 16, 16, 3), generator=g, dtype=torch.uint8),
             "vector": torch.rand(b, t, 6, generator=g), "action": torch.rand(b, t, 2, generator=g) * 2 - 1,
             "reward": torch.rand(b, t, generator=g), "is_first": torch.zeros(b, t, dtype=torch.bool),
             "is_terminal": torch.zeros(b, t, dtype=torch.bool)}
    batch["is_first"][:, 0] = True
    before = agent.task.actor.mlp.hidden[0].linear.weight.detach().clone()
    metrics = agent.train_step(batch)
    assert np.isfinite(float(metrics["actor/loss"]))
    assert not torch.equal(before, agent.task.actor.mlp.hidden[0].linear.weight)
    agent.start_calibration()
    with torch.no_grad():
        post = agent.wm.posterior_logits(batch)
    metrics = agent.calibrate_step({**{k: batch[k] for k in ("action", "is_first", "is_terminal", "vector")}, "post_logit": post})
    assert np.isfinite(float(metrics["residual/loss"])) and np.isfinite(float(metrics["actor/loss"]))


def test_widening_a_velocity_only_run_into_a_history_policy_keeps_its_actions():
    """--init-from a velocity-only run: the actor's and critics' new history inputs start at zero weight, so the
    widened policy acts as the source did, whatever the history holds."""
    from redraw_training.offline import widen_vector_input

    config = load_config(["tiny"])
    torch.manual_seed(0)
    narrow = build_agent(config, (16, 16, 3), 2, 2)
    wide = build_agent(config.update({"history_to_policy": True}), (16, 16, 3), 2, 6)
    widen_vector_input(narrow, wide)
    obs, other = _obs(), _perturbed_history(_obs())
    with torch.no_grad():
        want = narrow.policy({**obs, "vector": obs["vector"][:, :2]}, sample=False)
        assert torch.allclose(wide.policy(obs, sample=False), want, atol=1e-6)
        assert torch.allclose(wide.policy(other, sample=False), want, atol=1e-6)


def test_calibration_imagines_over_calibrate_imag_horizon():
    """calibrate.imag_horizon > 0 sets the horizon of the fresh (ReDRAW) and the kept (DRAW finetune) actor-critic;
    0 keeps the model's imag_horizon."""
    from redraw_training.finetune import DrawFinetune

    agent = _agent(**{"calibrate.imag_horizon": 7})
    assert agent.task.config.imag_horizon == 15          # pretraining: the model's horizon (tiny preset)
    agent.start_calibration()
    assert agent.task.config.imag_horizon == 7
    n = 3
    start = {"z": torch.zeros(n, agent.wm.zdim), "sigma": torch.full((n, agent.wm.zdim), 1.0 / 8), "cont": torch.ones(n),
             "hist": torch.zeros(n, 4)}
    start["z"].view(n, -1, agent.wm.draw.stoch)[:, 0] = 1.0
    assert agent.task.imagine(agent.wm, start, agent.residual)["z"].shape[0] == 8
    kept = _agent(**{"calibrate.imag_horizon": 9})
    DrawFinetune(kept, kept.config)
    assert kept.task.config.imag_horizon == 9
    assert _agent().config.calibrate.imag_horizon == 0 and _agent().task.config.imag_horizon == 15


def test_the_dreamer_finetune_imagines_over_calibrate_imag_horizon(monkeypatch):
    """The Dreamer baseline's kept actor-critic imagines calibrate.imag_horizon steps too (not dreamer.imag_horizon),
    so that every transferred policy of a comparison looks equally far ahead."""
    from redraw_training.finetune import DreamerFinetune

    config = load_config(["tiny", "dreamer"], ["calibrate.imag_horizon=9"])
    torch.manual_seed(0)
    agent = build_agent(config, (16, 16, 3), 2, 2)
    assert agent.task.config.dreamer.imag_horizon == 15
    DreamerFinetune(agent, config)
    rssm, horizons = agent.wm.rssm, []
    imagine = rssm.imagine

    def spy(policy, h, z, horizon):
        horizons.append(horizon)
        return imagine(policy, h, z, horizon)

    monkeypatch.setattr(rssm, "imagine", spy)
    h, z = rssm.initial_state(3)
    metrics = agent.task.train_step(agent.wm, {"h": h, "z": z, "cont": torch.ones(3)})
    assert horizons == [9] and all(torch.isfinite(v).all() for v in metrics.values())
