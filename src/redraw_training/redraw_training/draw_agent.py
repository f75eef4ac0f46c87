"""The DRAW agent: pretraining (DRAW world model + task actor-critic) and ReDRAW calibration.

    agent = Agent(config, image_shape=(32, 32, 3), action_dim=2)
    metrics = agent.train_step(batch)            # world-model update + actor-critic update in imagination

    agent.start_calibration(config)              # freeze the WM, add a residual and a fresh actor-critic
    metrics = agent.calibrate_step(batch)        # residual update on cached posteriors + actor-critic update
                                                 # under the corrected dynamics (METHOD.md 6.2-6.4)
    metrics = agent.residual_step(batch)         # the residual update alone (an early-stopped residual, fitted first)
    action = agent.policy(obs)                   # posterior of the current frame -> z -> actor

Weights of an Agent: `wm.*`, `task.*`, and `residual.*` once calibrated.
"""

from __future__ import annotations

import torch
from torch import nn

from .behavior import ImagActorCritic, start_states
from .config import Config
from .nets import categorical_kl, mode_onehot
from .optim import Optimizer
from .residual import EnsembleResidual
from .worldmodel import WorldModel, autocast


def calibration_config(config: Config) -> Config:
    """The actor-critic's config after transfer: calibrate.imag_horizon, when set (> 0), is the imagination horizon of
    every transferred policy (ReDRAW's fresh one and both finetunes' kept ones: DRAW's imag_horizon and Dreamer's
    dreamer.imag_horizon), so that the methods of a comparison imagine equally far."""
    horizon = int(config.calibrate.imag_horizon)
    return config.update({"imag_horizon": horizon, "dreamer.imag_horizon": horizon}) if horizon > 0 else config


class Agent(nn.Module):
    def __init__(self, config: Config, image_shape: tuple[int, int, int], action_dim: int, vector_dim: int = 0,
                 calibrated: bool = False):
        super().__init__()
        self.config = config
        self.image_shape, self.action_dim, self.vector_dim = tuple(image_shape), action_dim, vector_dim
        self.wm = WorldModel(config, image_shape, action_dim, vector_dim)
        self.task = ImagActorCritic(config, self.wm.zdim, action_dim, self.hist_dim)
        self.residual: EnsembleResidual | None = None
        self.res_opt: Optimizer | None = None
        if calibrated:
            self.start_calibration(config)
        else:
            self.wm.make_optimizer()

    @property
    def hist_dim(self) -> int:
        """Vector entries (past actions, at its end) that the actor and critic read instead of the world model."""
        return self.wm.policy_history_dims

    def history(self, vector: torch.Tensor | None) -> torch.Tensor | None:
        """The policy's past actions from an observation's vector (None when the policy reads z only)."""
        if not self.hist_dim:
            return None
        if vector is None:
            raise ValueError(f"this policy reads the last {self.hist_dim} entries of the 'vector' observation (past actions), "
                             "but the observation has no vector")
        return vector[..., vector.shape[-1] - self.hist_dim:]

    @property
    def calibrated(self) -> bool:
        return self.residual is not None

    def optimizers(self) -> dict[str, Optimizer]:
        opts = dict(self.task.optimizers())
        if self.wm.opt is not None:
            opts["model"] = self.wm.opt
        if self.res_opt is not None:
            opts["residual"] = self.res_opt
        return opts

    def compile(self) -> None:
        """torch.compile the per-step prior and the conv nets. The methods are replaced, not the modules, so
        parameter names (and checkpoints) stay the same as without compilation."""
        self.wm.draw.compile_step()
        cnn, dec = self.wm.encoder.cnn, self.wm.decoder.image
        cnn.forward = torch.compile(cnn.forward, dynamic=False)
        dec.centered = torch.compile(dec.centered, dynamic=False)

    # ------------------------------------------------------------------------------------------------------
    # acting

    @torch.no_grad()
    def policy(self, obs: dict[str, torch.Tensor], sample: bool = True) -> torch.Tensor:
        """obs: image uint8 (N, H, W, C) [+ vector (N, D)] -> action (N, A) clipped to [-1, 1]."""
        logits = self.wm.posterior_logits(obs)
        z = self.wm.draw.sample(logits, grad=False) if sample else mode_onehot(logits).flatten(-2)  # (N, C*K)
        return self.task.policy(z, sample, self.history(obs.get("vector"))).clamp(-1.0, 1.0)

    # ------------------------------------------------------------------------------------------------------
    # pretraining

    def _starts(self, states: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], count: int = 0,
                first: bool = False) -> dict[str, torch.Tensor]:
        """Imagination start states (z, sigma, cont [, hist]) of a batch (behavior.start_states)."""
        hist = {"hist": self.history(batch.get("vector"))} if self.hist_dim else {}
        return start_states({"z": states["z"], "sigma": states["sigma"], **hist}, batch["is_terminal"], count, first)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.calibrated:
            raise RuntimeError("this agent is calibrated (frozen world model); use calibrate_step")
        states, metrics = self.wm.train_step(batch)
        start = self._starts(states, batch, self.config.imag_starts)
        with autocast(self.config, batch["image"].device):
            metrics.update(self.task.train_step(self.wm, start))
        return metrics

    # ------------------------------------------------------------------------------------------------------
    # ReDRAW calibration

    def start_calibration(self, config: Config | None = None) -> None:
        """Freeze the world model; new residual and optimiser; a fresh actor-critic (METHOD.md 6.3), or with
        calibrate.warm_start one that starts from the sim policy's weights (new optimisers, update count 0)."""
        config = config or self.config
        self.config = config
        self.wm.freeze()
        r = config.residual
        device = next(self.wm.parameters()).device
        self.residual = EnsembleResidual(self.wm.zdim, self.action_dim, r.members, r.layers, r.units, r.out_init).to(device)
        self.res_opt = Optimizer("residual", self.residual.parameters(), r.lr, r.eps, r.clip)
        self.wm.draw.corrected_unimix = self.wm.draw.unimix if r.keep_unimix else 0.0
        task = ImagActorCritic(calibration_config(config), self.wm.zdim, self.action_dim, self.hist_dim).to(device)
        if config.calibrate.warm_start:
            task.load_state_dict(self.task.state_dict())
            task.updates.zero_()
        self.task = task

    def filter_with_residual(self, post_logit: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor,
                             residual: bool = True, generator: torch.Generator | None = None):
        """Filter cached posteriors through the frozen model, without gradients. Returns z (B, T, K*C), the
        residual inputs (z_{t-1}, a_{t-1}), and the raw prior logits before and after the residual."""
        draw = self.wm.draw
        with torch.no_grad():
            z = draw.sample(post_logit, grad=False, generator=generator)
            z_prev, a_prev = draw.previous(z, action, is_first)
            delta = self.residual(z_prev, a_prev) if (residual and self.residual is not None) else None
            base, raw = draw.filter_prior(z_prev, a_prev, is_first, None if delta is None else delta.mean(0))
        return z, z_prev, a_prev, base, raw

    def residual_loss(self, post_logit, z_prev, a_prev, base, is_first) -> torch.Tensor:
        """mean_{b,t} mask_t sum_m KL(sg q_t || Cat(softmax(u_t + delta_m))) (METHOD.md 6.2)."""
        delta = self.residual(z_prev, a_prev)                                 # (M, B, T, K*C)
        logits = self.wm.draw.dist_logits(base[None] + delta, corrected=True)
        kl = categorical_kl(post_logit[None].detach(), logits)                # (M, B, T)
        mask = (~is_first).float()
        return (kl.sum(0) * mask).mean()

    def residual_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One residual update on a batch of cached posteriors (post_logit, action, is_first)."""
        return self._residual_update(batch)[2]

    def _residual_update(self, batch: dict[str, torch.Tensor]):
        """The residual update; returns the batch's posterior samples z and corrected raw prior logits (of the residual
        before this update) and the update's metrics."""
        post_logit, is_first = batch["post_logit"], batch["is_first"]
        z, z_prev, a_prev, base, raw = self.filter_with_residual(post_logit, batch["action"], is_first)
        loss = self.residual_loss(post_logit, z_prev, a_prev, base, is_first)
        metrics = self.res_opt.step(loss)
        with torch.no_grad():
            mask = (~is_first).float()
            prior = self.wm.draw.dist_logits(raw, corrected=True)
            metrics["residual/kl_corrected"] = (categorical_kl(post_logit, prior) * mask).sum() / mask.sum().clamp(min=1)
        return z, raw, metrics

    def calibrate_step(self, batch: dict[str, torch.Tensor], fit_residual: bool = True) -> dict[str, torch.Tensor]:
        """batch: post_logit (B, T, C, K) cached posteriors, action, is_first, is_terminal [, vector: the policy's past
        actions]. One residual update (unless `fit_residual` is False: a residual already fitted and frozen), then one
        actor-critic update in the corrected model."""
        if not self.calibrated:
            raise RuntimeError("call start_calibration() before calibrate_step")
        post_logit, is_first = batch["post_logit"], batch["is_first"]
        if fit_residual:
            z, raw, metrics = self._residual_update(batch)
        else:
            z, _, _, _, raw = self.filter_with_residual(post_logit, batch["action"], is_first)
            metrics = {}
        # imagination from the first fraction of the (corrected) posterior states, in the corrected model
        count = max(1, int(is_first.numel() * self.config.calibrate.imag_start_fraction))
        start = self._starts({"z": z, "sigma": self.wm.draw.belief(raw)}, batch, count, first=True)
        with autocast(self.config, post_logit.device):
            metrics.update(self.task.train_step(self.wm, start, self.residual))
        return metrics

    @torch.no_grad()
    def prior_kl(self, post_logit: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor, residual: bool,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean over non-first steps of KL(q(z_t|x_t) || p(z_t | filtered history)), with or without the residual."""
        use = residual and self.residual is not None
        _, _, _, _, raw = self.filter_with_residual(post_logit, action, is_first, residual=use, generator=generator)
        prior = self.wm.draw.dist_logits(raw, corrected=use)
        mask = (~is_first).float()
        return (categorical_kl(post_logit, prior) * mask).sum() / mask.sum().clamp(min=1)
