"""Actor-critic trained in imagination (METHOD.md section 5), DreamerV3-v1 style with REINFORCE.

Per update, from N start states (z, sigma): roll the policy H steps in the world model (optionally under a
ReDRAW residual), rewards from the reward head on z_1..z_H, continue flags from the continue head's mode,
lambda-returns bootstrapped with the fast critic, percentile return normalisation, REINFORCE actor loss
with entropy bonus, two-hot critic regularised towards a slow EMA critic. The policy reads z only, or z and the
last k actions (`hist_dim` = k * A entries, newest first, as in a Duckiebot vector): those start from each start
state's `hist` and follow the imagined actions.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .config import Config
from .nets import MLP, BoundedNormal, TwoHotHead, symlog, twohot
from .optim import Optimizer


class Actor(nn.Module):
    def __init__(self, zdim: int, action_dim: int, cfg: Config):
        super().__init__()
        self.mlp = MLP(zdim, cfg.layers, cfg.units, 2 * action_dim, "normal")
        self.minstd, self.maxstd = cfg.minstd, cfg.maxstd

    def forward(self, z: torch.Tensor) -> BoundedNormal:
        return BoundedNormal(self.mlp(z), self.minstd, self.maxstd)


class ReturnNorm(nn.Module):
    """EMA of the 5th and 95th return percentiles; scale = max(1 / max, hi - lo)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.decay, self.max = cfg.decay, cfg.max
        self.q = torch.tensor([cfg.perclo / 100.0, cfg.perchi / 100.0])
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def update(self, ret: torch.Tensor) -> None:
        flat = ret.detach().float().reshape(-1)
        if flat.numel() > 1 << 24:
            flat = flat[torch.randperm(flat.numel(), device=flat.device)[: 1 << 24]]
        lo, hi = torch.quantile(flat, self.q.to(flat.device))
        d = self.decay
        self.lo.mul_(d).add_((1 - d) * lo)
        self.hi.mul_(d).add_((1 - d) * hi)
        self.initialised.fill_(True)

    def scale(self) -> torch.Tensor:
        return torch.clamp(self.hi - self.lo, min=1.0 / self.max)


def lambda_return(reward: torch.Tensor, value: torch.Tensor, disc: torch.Tensor, lam: float) -> torch.Tensor:
    """R_t = r_{t+1} + disc_{t+1} ((1 - lam) v_{t+1} + lam R_{t+1}), R_H = v_H. Inputs (H, N) rewards and
    discounts for steps 1..H, values (H+1, N); returns (H, N) for t = 0..H-1."""
    interm = reward + disc * value[1:] * (1.0 - lam)
    out = []
    last = value[-1]
    for t in range(reward.shape[0] - 1, -1, -1):
        last = interm[t] + disc[t] * lam * last
        out.append(last)
    return torch.stack(out[::-1])


def start_states(states: dict[str, torch.Tensor], is_terminal: torch.Tensor, count: int = 0, first: bool = False) -> dict[str, torch.Tensor]:
    """Imagination starts from the (B, T, ...) states of a batch: each flattened to (B*T, ...), with cont = 1 -
    is_terminal; `count` of them (0: all) at random, or with `first` the first `count` (ReDRAW and the finetunes)."""
    n = is_terminal.numel()
    start = {k: v.reshape(n, -1) for k, v in states.items()}
    start["cont"] = 1.0 - is_terminal.reshape(-1).float()
    if first:
        return {k: v[:count] for k, v in start.items()}
    if 0 < count < n:
        idx = torch.randperm(n, device=is_terminal.device)[:count]
        start = {k: v[idx] for k, v in start.items()}
    return start


def shift_history(hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """The history after `action`: newest first, the oldest action dropped."""
    return torch.cat([action, hist[..., : hist.shape[-1] - action.shape[-1]]], -1)


class ActorCriticBase(nn.Module):
    """What DRAW's REINFORCE actor-critic and the Dreamer backprop one share: actor, two-hot critic and its slow EMA
    copy, return normaliser, optimisers, discount, update count."""

    def __init__(self, config: Config, feat_dim: int, action_dim: int):
        super().__init__()
        self.config = config
        self.actor = Actor(feat_dim, action_dim, config.actor)
        c = config.critic
        self.critic = TwoHotHead(feat_dim, c.layers, c.units, c.bins, c.low, c.high, out_init="zero")
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.retnorm = ReturnNorm(config.retnorm)
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))
        self.actor_opt = Optimizer("actor", self.actor.parameters(), config.actor_opt.lr, config.actor_opt.eps, config.actor_opt.clip)
        self.critic_opt = Optimizer("critic", self.critic.parameters(), config.critic_opt.lr, config.critic_opt.eps, config.critic_opt.clip)
        self.gamma = 1.0 - 1.0 / config.discount_horizon

    def optimizers(self) -> dict[str, Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    @torch.no_grad()
    def discounts(self, wm, feat: torch.Tensor, start_cont: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Over an imagined trajectory (feat (H+1, N, ...)): the continue flags c_0..c_H (c_0 = start_cont, then the
        continue head's mode) and the weights gamma^t c_0..c_t of steps 0..H, both (H+1, N)."""
        cont = torch.cat([start_cont[None].float(), wm.cont_mode(feat[1:])], 0)
        return cont, torch.cumprod(self.gamma * cont, 0) / self.gamma

    def advantages(self, wm, feat: torch.Tensor, start_cont: torch.Tensor, reward: torch.Tensor, value: torch.Tensor):
        """Over an imagined trajectory (feat (H+1, N, ...), rewards (H, N), values (H+1, N)): the lambda-returns (H, N),
        the advantages normalised by the return scale, the discount weights of steps 0..H-1 (the continue head's mode,
        cumulated) and the scale. The returns carry the gradients that reward and value carry."""
        cont, weight = self.discounts(wm, feat, start_cont)
        ret = lambda_return(reward.float(), value, self.gamma * cont[1:], self.config.return_lambda)
        self.retnorm.update(ret)
        scale = self.retnorm.scale()
        return ret, (ret - value[:-1].detach()) / scale, weight[:-1], scale

    @staticmethod
    def summary(reward, ret, value, adv, ent, dist, scale) -> dict[str, torch.Tensor]:
        return {"ac/imag_reward": reward.detach().mean(), "ac/return": ret.detach().mean(), "ac/value": value.detach().mean(),
                "ac/adv_abs": adv.detach().abs().mean(), "ac/entropy": ent.detach().mean(), "ac/action_std": dist.std.detach().mean(),
                "ac/retnorm_scale": scale}

    def count_update(self) -> None:
        """One more update; the slow critic moves `slow_critic.fraction` towards the critic every `slow_critic.every`
        updates (every <= 1: every update, without a host sync)."""
        self.updates += 1
        sc = self.config.slow_critic
        if sc.every <= 1 or int(self.updates) % sc.every == 0:
            with torch.no_grad():
                for slow_p, p in zip(self.slow_critic.parameters(), self.critic.parameters()):
                    slow_p.lerp_(p, sc.fraction)


class ImagActorCritic(ActorCriticBase):
    def __init__(self, config: Config, zdim: int, action_dim: int, hist_dim: int = 0):
        super().__init__(config, zdim + hist_dim, action_dim)
        self.hist_dim = hist_dim

    def features(self, z: torch.Tensor, hist: torch.Tensor | None = None) -> torch.Tensor:
        """The actor's and critic's input: z, then the past actions when the policy reads them."""
        if not self.hist_dim:
            return z
        if hist is None or hist.shape[-1] != self.hist_dim:
            raise ValueError(f"this policy reads the last {self.hist_dim} action entries next to z, "
                             f"found {None if hist is None else tuple(hist.shape)}")
        return torch.cat([z, hist.to(z.dtype)], -1)

    def policy(self, z: torch.Tensor, sample: bool = True, hist: torch.Tensor | None = None) -> torch.Tensor:
        dist = self.actor(self.features(z, hist))
        return dist.sample() if sample else dist.mean

    def imagine(self, wm, start: dict[str, torch.Tensor], residual: nn.Module | None = None,
                horizon: int | None = None) -> dict[str, torch.Tensor]:
        """Roll the actor in the (corrected) model for `horizon` (default imag_horizon) steps; adds `feat` (H+1, N,
        zdim + hist_dim), the actor's inputs."""
        horizon = self.config.imag_horizon if horizon is None else horizon
        if not self.hist_dim:
            traj = wm.draw.imagine(lambda z: self.actor(z).sample(), start["sigma"], start["z"], horizon, residual)
            traj["feat"] = traj["z"]
            return traj
        hists = [start["hist"]]

        def act(z: torch.Tensor) -> torch.Tensor:
            action = self.actor(self.features(z, hists[-1])).sample()
            hists.append(shift_history(hists[-1], action))
            return action

        traj = wm.draw.imagine(act, start["sigma"], start["z"], horizon, residual)
        traj["feat"] = self.features(traj["z"], torch.stack(hists[:-1]))
        return traj

    def train_step(self, wm, start: dict[str, torch.Tensor], residual: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """start: z, sigma (N, K*C), cont (N,) = 1 - is_terminal [, hist (N, hist_dim)]. `wm` supplies draw,
        imagined_reward and cont_mode."""
        cfg = self.config
        traj = self.imagine(wm, start, residual)
        z, feat, action = traj["z"], traj["feat"], traj["action"]
        vdist = self.critic(feat)                                                    # fast critic (H+1, N), with grad
        with torch.no_grad():
            reward = wm.imagined_reward(traj)                                        # (H, N)
            value = vdist.mean().detach()
            ret, adv, w, scale = self.advantages(wm, z, start["cont"], reward, value)
            slow = self.slow_critic(feat[:-1]).mean()

        dist = self.actor(feat[:-1])
        logp = dist.log_prob(action[:-1])
        ent = dist.entropy()
        actor_loss = -(w * (logp * adv + cfg.actent * ent)).mean()
        metrics = self.actor_opt.step(actor_loss)

        log_probs = vdist.log_probs[:-1]
        target = twohot(symlog(ret), vdist.bins) + cfg.slowreg * twohot(symlog(slow), vdist.bins)
        critic_loss = -(w * (target * log_probs).sum(-1)).mean()
        metrics.update(self.critic_opt.step(critic_loss))

        self.count_update()
        metrics.update(self.summary(reward, ret, value, adv, ent, dist, scale))
        return metrics
