"""Actor-critic pieces (METHOD.md 5): lambda-returns, percentile normaliser, slow critic, REINFORCE update."""

from __future__ import annotations

import math

import torch

from redraw_training.behavior import ReturnNorm, lambda_return
from redraw_training.config import load_config
from redraw_training.draw_agent import Agent
from redraw_training.nets import BoundedNormal


def test_lambda_return_matches_the_recursion():
    torch.manual_seed(0)
    h, n, lam = 6, 4, 0.95
    reward, value, disc = torch.rand(h, n), torch.rand(h + 1, n), torch.rand(h, n)
    ret = lambda_return(reward, value, disc, lam)
    ref = [None] * h
    nxt = value[h]
    for t in reversed(range(h)):
        nxt = reward[t] + disc[t] * ((1 - lam) * value[t + 1] + lam * nxt)
        ref[t] = nxt
    assert torch.allclose(ret, torch.stack(ref), atol=1e-6)


def test_return_normaliser_tracks_percentiles_and_floors_the_scale():
    norm = ReturnNorm(load_config().retnorm)
    ret = torch.linspace(0, 100, 10001)
    for _ in range(2000):
        norm.update(ret)
    assert abs(float(norm.lo) - 5.0) < 0.01 and abs(float(norm.hi) - 95.0) < 0.01
    assert abs(float(norm.scale()) - 90.0) < 0.02
    small = ReturnNorm(load_config().retnorm)
    small.update(torch.zeros(10))
    assert float(small.scale()) == 1.0   # max(1 / max, hi - lo) with max = 1


def test_bounded_normal():
    out = torch.tensor([[10.0, -10.0, 100.0, -100.0]])
    dist = BoundedNormal(out, 0.1, 1.0)
    assert torch.allclose(dist.mean, torch.tanh(torch.tensor([[10.0, -10.0]])))
    assert torch.allclose(dist.std, torch.tensor([[1.0, 0.1]]), atol=1e-4)
    x = torch.tensor([[0.3, -0.2]])
    ref = torch.distributions.Normal(dist.mean, dist.std)
    assert torch.allclose(dist.log_prob(x), ref.log_prob(x).sum(-1))
    assert torch.allclose(dist.entropy(), ref.entropy().sum(-1))


class _LastActionReward(torch.nn.Module):
    """Stand-in reward head: r_t = first dim of the action that led to state t (read from the rollout)."""

    def __init__(self):
        super().__init__()
        self.traj = None

    def forward(self, z):
        action = self.traj["action"][:-1, :, 0].clamp(-1, 1)

        class Dist:
            def mean(self_inner):
                return action

        return Dist()


def test_actor_critic_update_moves_policy_towards_rewarded_actions():
    """With a reward that pays for the first action dim, REINFORCE raises the actor's mean there; the slow
    critic follows the critic as an EMA."""
    torch.manual_seed(0)
    config = load_config(["tiny"], {"actor_opt.lr": 1e-3, "critic_opt.lr": 1e-3, "imag_horizon": 5})
    agent = Agent(config, (32, 32, 3), 2)
    wm, task = agent.wm, agent.task
    reward = _LastActionReward()
    wm.reward = reward
    original = wm.draw.imagine

    def imagine(policy, sigma, z, horizon, residual=None):
        reward.traj = original(policy, sigma, z, horizon, residual)
        return reward.traj

    wm.draw.imagine = imagine
    n = 64
    start = {"z": wm.draw.sample(wm.draw.dist_logits(torch.randn(n, wm.zdim)), grad=False),
             "sigma": wm.draw.belief(torch.randn(n, wm.zdim)), "cont": torch.ones(n)}
    slow_before = [p.detach().clone() for p in task.slow_critic.parameters()]
    critic_before = [p.detach().clone() for p in task.critic.parameters()]
    means = [float(task.actor(start["z"]).mean[:, 0].mean().detach())]
    for _ in range(30):
        metrics = task.train_step(wm, start)
        means.append(float(task.actor(start["z"]).mean[:, 0].mean().detach()))
    assert means[-1] > means[0] + 0.3, means
    assert math.isfinite(float(metrics["actor/loss"])) and math.isfinite(float(metrics["critic/loss"]))
    moved_slow = sum(float((a.detach() - b).abs().sum()) for a, b in zip(task.slow_critic.parameters(), slow_before))
    moved_fast = sum(float((a.detach() - b).abs().sum()) for a, b in zip(task.critic.parameters(), critic_before))
    assert 0 < moved_slow < moved_fast
    assert int(task.updates) == 30


def test_optimizer_clips_and_skips_non_finite_steps():
    from redraw_training.optim import Optimizer

    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    opt = Optimizer("t", lin.parameters(), 1e-2, 1e-8, clip=0.5)
    x = torch.randn(4, 3)
    metrics = opt.step((lin(x) * 100).pow(2).sum())
    assert float(metrics["t/grad_norm"]) > 0.5        # reported before clipping
    before = [p.detach().clone() for p in lin.parameters()]
    moments = {k: v.clone() for k, v in opt.opt.state[opt.params[0]].items()}
    opt.step(lin(x).sum() * float("nan"))
    assert all(torch.equal(a, b) for a, b in zip(before, lin.parameters())) and opt.skipped == 1
    assert all(torch.equal(v, opt.opt.state[opt.params[0]][k]) for k, v in moments.items())
    opt.step(lin(x).pow(2).sum())
    assert not torch.equal(before[0], lin.weight) and opt.skipped == 1
