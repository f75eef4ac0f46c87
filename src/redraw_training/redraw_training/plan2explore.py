"""Plan2Explore pretraining (METHOD.md section 4): reward-free exploration by ensemble disagreement.

    agent = P2EAgent(config, image_shape=(32, 32, 3), action_dim=2)    # config.explore == "plan2explore"
    metrics = agent.train_step(batch)       # WM update, disagreement ensemble update, task AC and exploration AC
    action = agent.explore_policy(obs)      # the exploration actor collects the data
    action = agent.policy(obs)              # the task actor (trained alongside from the same replay) is deployed

* `Disagreement`: `members` MLPs (layers x Linear(units) -> Linear_out(embed dim)), each predicting the encoder
  embedding of the next step e_{t+1} from concat[sigma_t, z_t, a_t]. Inputs and targets are stop-gradient; loss
  = sum over members of the mean over (B, T-1) of the summed squared error; its own Adam (expl.lr/eps/clip).
  Pairs that cross an episode boundary (is_first at t+1) are left out.
* Intrinsic reward of an imagined step t = 1..H: mean over embedding dims of the std over members of
  pred_m(sigma_t, z_t, a_t).
* The exploration actor-critic is an `ImagActorCritic` that imagines in the same (residual-free) DRAW model; it
  sees the model through `ExplorationModel`, which swaps the reward head for expl.disag * disagreement +
  expl.extr * reward head. While pretraining with plan2explore both actor-critics use a return normaliser
  floor of 1 / expl.retnorm_max (METHOD.md 4); a calibration starts a fresh task actor-critic with retnorm.max.

Weights: `wm.*`, `task.*` (as Agent) plus `disag.*` and `expl_behavior.*`; once calibrated the exploration parts
are dropped (a calibrated checkpoint is an ordinary calibrated Agent).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .behavior import ImagActorCritic
from .config import Config
from .draw_agent import Agent
from .nets import LN_EPS, mode_onehot
from .optim import Optimizer
from .residual import EnsembleLinear
from .worldmodel import autocast


def member_std(pred: torch.Tensor) -> torch.Tensor:
    """(M, ..., D) -> (...): mean over D of the (population) std over the M members. Written out because
    torch's std over a leading dim is a slow strided reduction on CPU."""
    pred = pred.float()
    mean = pred.mean(0)
    return ((pred - mean) ** 2).mean(0).sqrt().mean(-1)


class Disagreement(nn.Module):
    """An ensemble of next-embedding predictors; its spread is the novelty of (sigma, z, a)."""

    def __init__(self, inp: int, out: int, members: int, layers: int, units: int, lr: float, eps: float, clip: float):
        super().__init__()
        self.members, self.inp, self.out_dim = members, inp, out
        dims = [inp] + [units] * layers
        self.hidden = nn.ModuleList(EnsembleLinear(members, a, b, hidden=True) for a, b in zip(dims[:-1], dims[1:]))
        self.out = EnsembleLinear(members, dims[-1], out, hidden=False, init="normal")
        self.opt = Optimizer("disag", self.parameters(), lr, eps, clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., inp) -> (M, ..., out) predictions of every member."""
        lead, m = x.shape[:-1], self.members
        flat = x.reshape(-1, x.shape[-1])
        layers = list(self.hidden) + [self.out]
        first = layers[0]
        # the members share the input: one (N, inp) @ (inp, M * units) matmul instead of M copies of x
        w = first.weight.permute(1, 0, 2).reshape(flat.shape[-1], -1)
        h = (flat @ w).reshape(flat.shape[0], m, -1).transpose(0, 1)          # (M, N, units)
        h = _finish(first, h)
        for layer in layers[1:]:
            h = layer(h)
        return h.reshape(m, *lead, h.shape[-1])

    def intrinsic(self, x: torch.Tensor) -> torch.Tensor:
        """(..., inp) -> (...) mean over output dims of the std over members."""
        return member_std(self(x))

    def loss(self, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (..., inp), target (..., out), mask (...) -> sum over members of the mean over (...) of the summed
        squared error (masked entries left out)."""
        m = self.members
        err = ((self(x.detach()).float() - target.detach().float()[None]) ** 2).sum(-1).reshape(m, -1)   # (M, N)
        if mask is None:
            return err.mean(1).sum()
        mask = mask.float().reshape(1, -1)
        return ((err * mask).sum(1) / mask.sum().clamp(min=1)).sum()

    def train_step(self, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        loss = self.loss(x, target, mask)
        return self.opt.step(loss)


def _finish(layer: EnsembleLinear, y: torch.Tensor) -> torch.Tensor:
    """The part of EnsembleLinear.forward after the matmul: LayerNorm + SiLU (hidden) or the bias (output)."""
    if layer.hidden:
        return F.silu(F.layer_norm(y, y.shape[-1:], eps=LN_EPS) * layer.scale + layer.offset)
    return y + layer.bias


def disag_inputs(sigma: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """concat[sigma_t, z_t, a_t] (METHOD.md 4: disag_head.inputs = [stoch_params, stoch, action])."""
    return torch.cat([sigma.float(), z.float(), action.float()], -1)


class ExplorationModel:
    """The world model as the exploration actor-critic sees it: the same DRAW dynamics and continue head, but
    the reward of imagined step t = 1..H is expl.disag * disagreement(sigma_t, z_t, a_t) + expl.extr * reward
    head(z_t)."""

    def __init__(self, wm, disag: Disagreement, disag_scale: float, extr_scale: float):
        self.wm, self.draw, self.disag = wm, wm.draw, disag
        self.disag_scale, self.extr_scale = disag_scale, extr_scale

    @torch.no_grad()
    def imagined_reward(self, traj: dict[str, torch.Tensor]) -> torch.Tensor:
        z = traj["z"][1:]
        out = torch.zeros(z.shape[:-1], device=z.device)
        if self.disag_scale:
            out = out + self.disag_scale * self.disag.intrinsic(disag_inputs(traj["sigma"][1:], z, traj["action"][1:]))
        if self.extr_scale:
            out = out + self.extr_scale * self.wm.reward(z).mean().float()
        return out

    def cont_mode(self, z: torch.Tensor) -> torch.Tensor:
        return self.wm.cont_mode(z)


def pretraining_config(config: Config) -> Config:
    """The config of the actor-critics during Plan2Explore pretraining: return normaliser max = expl.retnorm_max."""
    return config.update({"retnorm": {"max": float(config.expl.retnorm_max)}})


class P2EAgent(Agent):
    def __init__(self, config: Config, image_shape: tuple[int, int, int], action_dim: int, vector_dim: int = 0,
                 calibrated: bool = False):
        super().__init__(config, image_shape, action_dim, vector_dim, calibrated=calibrated)
        self.disag: Disagreement | None = None
        self.expl_behavior: ImagActorCritic | None = None
        if not calibrated:
            ac_config = pretraining_config(config)
            self.task = ImagActorCritic(ac_config, self.wm.zdim, action_dim, self.hist_dim)
            e = config.expl
            zdim = self.wm.zdim
            self.disag = Disagreement(2 * zdim + action_dim, self.wm.encoder.out_dim, e.members, e.layers, e.units, e.lr, e.eps, e.clip)
            self.expl_behavior = ImagActorCritic(ac_config, zdim, action_dim, self.hist_dim)

    def optimizers(self) -> dict[str, Optimizer]:
        opts = super().optimizers()
        if self.disag is not None:
            opts["disag"] = self.disag.opt
            opts.update({f"expl_{k}": v for k, v in self.expl_behavior.optimizers().items()})
        return opts

    # ------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def explore_policy(self, obs: dict[str, torch.Tensor], sample: bool = True) -> torch.Tensor:
        """obs -> action of the exploration actor (posterior of the current frame -> z -> actor)."""
        if self.expl_behavior is None:
            raise RuntimeError("this agent has no exploration actor (calibrated agents drop it)")
        logits = self.wm.posterior_logits(obs)
        z = self.wm.draw.sample(logits, grad=False) if sample else mode_onehot(logits).flatten(-2)
        return self.expl_behavior.policy(z, sample, self.history(obs.get("vector"))).clamp(-1.0, 1.0)

    def disag_step(self, states: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Train the ensemble: (sigma_t, z_t, a_t) -> e_{t+1}, pairs within an episode only."""
        with torch.no_grad():
            embed = self.wm.embed(batch)
        x = disag_inputs(states["sigma"][:, :-1], states["z"][:, :-1], batch["action"][:, :-1])
        mask = ~batch["is_first"][:, 1:]
        return self.disag.train_step(x, embed[:, 1:], mask)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.calibrated or self.disag is None:
            raise RuntimeError("this agent is calibrated (frozen world model); use calibrate_step")
        states, metrics = self.wm.train_step(batch)
        start = self._starts(states, batch, self.config.imag_starts)
        e = self.config.expl
        with autocast(self.config, batch["image"].device):
            metrics.update(self.disag_step(states, batch))
            metrics.update(self.task.train_step(self.wm, start))
            model = ExplorationModel(self.wm, self.disag, e.disag, e.extr)
            expl = self.expl_behavior.train_step(model, start)
        metrics.update({f"expl_{k}": v for k, v in expl.items()})
        return metrics

    def start_calibration(self, config: Config | None = None) -> None:
        """As Agent.start_calibration, and drop the exploration parts (METHOD.md 6.3: not loaded for transfer)."""
        super().start_calibration(config)
        self.disag = None
        self.expl_behavior = None
