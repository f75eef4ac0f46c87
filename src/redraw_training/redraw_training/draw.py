"""DRAW latent dynamics (METHOD.md section 3.3): a purely stochastic multi-categorical state.

State per step: `z` (C x K one-hot sample, flattened to C*K; see nets.CLASS_DIM for the layout), `sigma` (belief = softmax of the raw prior
logits, no unimix), `raw` (the raw prior logits u_t), `logit` (normalised log-probs of the distribution).

    prior      u_t = f(clip(a_{t-1}), sigma_{t-1}, z_{t-1});  sigma_t = softmax(u_t);  p = Cat(unimix(softmax(u_t)))
    residual   u'_t = u_t + mean_m delta_m(z_{t-1}, clip(a_{t-1}));  sigma'_t = softmax(u'_t);  p' = Cat(softmax(u'_t))
    posterior  q(z_t | x_t) = Cat(unimix(softmax(Out(Dense(e_t)))))            (embedding only, no history)
    initial    sigma_init = softmax(theta_init), z_init = mode, a_{-1} = 0       (used wherever is_first)

Filtering (`observe`) computes the posterior for all steps at once; only the belief chain sigma_{t-1} -> sigma_t
is sequential, and the parts of the first prior layer that do not depend on sigma (action and z_{t-1}) are
precomputed for the whole sequence in one matmul, so the loop body is three small layers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .nets import CLASS_DIM, Dense, Out, mode_onehot, sample_onehot, straight_through, unimix_logits


class DRAW(nn.Module):
    def __init__(self, embed_dim: int, action_dim: int, stoch: int, classes: int, units: int, img_hidden_layers: int = 1,
                 unimix: float = 0.01, action_clip: float = 1.0):
        super().__init__()
        self.stoch, self.classes, self.action_dim = stoch, classes, action_dim
        self.zdim = stoch * classes
        self.unimix, self.action_clip = unimix, action_clip
        self.corrected_unimix = 0.0   # of the prior after a residual: none (METHOD 6.1) unless residual.keep_unimix
        self.img_in = Dense(action_dim + 2 * self.zdim, units)
        self.img_hidden = nn.Sequential(*[Dense(units, units) for _ in range(img_hidden_layers)])
        self.img_out = Dense(units, units)
        self.img_stats = Out(units, self.zdim, "uniform")
        self.obs_out = Dense(embed_dim, units)
        self.obs_stats = Out(units, self.zdim, "uniform")
        self.initial = nn.Parameter(torch.zeros(self.zdim))
        self._step_fn: Callable = self._prior_tail

    # ------------------------------------------------------------------------------------------------------
    # pieces

    def compile_step(self) -> None:
        """torch.compile the sequential part of the prior (used by observe and imagine)."""
        self._step_fn = torch.compile(self._prior_tail, dynamic=False)

    def clip(self, action: torch.Tensor) -> torch.Tensor:
        if not self.action_clip:
            return action
        return action * (self.action_clip / torch.clamp(action.abs(), min=self.action_clip)).detach()

    def initial_state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(sigma_init, z_init), each (K*C,)."""
        logits = self.initial.view(self.classes, self.stoch)
        sigma = torch.softmax(logits, CLASS_DIM).reshape(-1)
        z = mode_onehot(logits.detach()).reshape(-1)
        return sigma, z

    def split_in(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """img_in weight split into the columns for [action, sigma, z]."""
        w = self.img_in.linear.weight
        a, z = self.action_dim, self.zdim
        return w[:, :a], w[:, a:a + z], w[:, a + z:]

    def _prior_tail(self, pre: torch.Tensor, sigma: torch.Tensor, w_sigma: torch.Tensor) -> torch.Tensor:
        h = pre + sigma @ w_sigma.t()
        h = F.silu(self.img_in.norm(h))
        h = self.img_out(self.img_hidden(h))
        return self.img_stats(h)

    def prior_raw(self, sigma: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """u_t from the previous (sigma, z, clipped action); any leading shape."""
        return self.img_stats(self.img_out(self.img_hidden(self.img_in(torch.cat([action, sigma, z], -1)))))

    def dist_logits(self, raw: torch.Tensor, corrected: bool = False) -> torch.Tensor:
        """Normalised log-probs (..., C, K): unimix for the plain prior/posterior, corrected_unimix after a residual."""
        return unimix_logits(self.unflat(raw), self.corrected_unimix if corrected else self.unimix)

    def unflat(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.reshape(*flat.shape[:-1], self.classes, self.stoch)

    def belief(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.unflat(raw).float(), CLASS_DIM).reshape(raw.shape)

    def posterior_raw(self, embed: torch.Tensor) -> torch.Tensor:
        return self.obs_stats(self.obs_out(embed))

    def sample(self, logits: torch.Tensor, grad: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Flattened one-hot sample (..., C*K) of normalised log-probs (..., C, K), straight-through if grad."""
        probs = logits.exp()
        s = sample_onehot(probs, generator)
        if grad:
            s = straight_through(s, probs)
        return s.reshape(*logits.shape[:-2], self.zdim)

    # ------------------------------------------------------------------------------------------------------
    # filtering and imagination

    def previous(self, z: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_{t-1}, clip(a_{t-1})) for every t of (B, T, ...) sequences, the initial state where is_first."""
        _, z_init = self.initial_state()
        first = is_first.unsqueeze(-1)
        z_prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], 1)
        a_prev = torch.cat([torch.zeros_like(action[:, :1]), action[:, :-1]], 1)
        z_prev = torch.where(first, z_init.to(z.dtype), z_prev)
        a_prev = torch.where(first, torch.zeros_like(a_prev), self.clip(a_prev))
        return z_prev, a_prev

    def filter_prior(self, z_prev: torch.Tensor, a_prev: torch.Tensor, is_first: torch.Tensor,
                     delta: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The belief chain over (B, T): returns (u, u + delta) raw prior logits, both (B, T, K*C).

        `delta` (B, T, K*C) is the residual correction for every step; the chain then runs on the corrected
        belief sigma'_t = softmax(u_t + delta_t)."""
        w_a, w_sigma, w_z = self.split_in()
        # unbind (not pre[:, t]): its backward stacks the T gradients once instead of T zero-filled copies
        pres = (a_prev @ w_a.t() + z_prev @ w_z.t()).unbind(1)
        deltas = delta.unbind(1) if delta is not None else None
        firsts = is_first.unsqueeze(-1).unbind(1)
        sigma_init, _ = self.initial_state()
        batch = is_first.shape[0]
        base, corrected = [], []
        sigma = sigma_init.expand(batch, -1)
        for t, pre in enumerate(pres):
            if t:
                sigma = torch.where(firsts[t], sigma_init, sigma)
            u = self._step_fn(pre, sigma, w_sigma)
            base.append(u)
            if deltas is not None:
                u = u + deltas[t]
                corrected.append(u)
            sigma = self.belief(u)
        base_t = torch.stack(base, 1)
        return base_t, (torch.stack(corrected, 1) if delta is not None else base_t)

    def observe(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor,
                residual: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Posterior states of (B, T) sequences. Gradients flow through the straight-through samples, the
        belief chain and the initial logits; a residual (if given) gets stop-gradient inputs."""
        post_logit = self.dist_logits(self.posterior_raw(embed))
        z = self.sample(post_logit)
        z_prev, a_prev = self.previous(z, action, is_first)
        delta = None
        if residual is not None:
            delta = residual(z_prev.detach(), a_prev.detach()).mean(0)
        base, raw = self.filter_prior(z_prev, a_prev, is_first, delta)
        return {
            "z": z,
            "post_logit": post_logit,
            "prior_logit": self.dist_logits(raw, corrected=residual is not None),
            "sigma": self.belief(raw),
            "raw": raw,
            "raw_base": base,
        }

    def img_step(self, sigma: torch.Tensor, z: torch.Tensor, action: torch.Tensor, residual: nn.Module | None = None,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One imagined step: (sigma_{t-1}, z_{t-1}, a_{t-1}) -> (sigma_t, z_t sample, no gradient through it)."""
        a = self.clip(action)
        w_a, w_sigma, w_z = self.split_in()
        u = self._step_fn(a @ w_a.t() + z @ w_z.t(), sigma, w_sigma)
        if residual is not None:
            u = u + residual(z, a).mean(0)
        logits = self.dist_logits(u, corrected=residual is not None)
        return self.belief(u), self.sample(logits, grad=False, generator=generator)

    def imagine(self, policy: Callable[[torch.Tensor], torch.Tensor], sigma: torch.Tensor, z: torch.Tensor, horizon: int,
                residual: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Roll the policy (z -> action) for `horizon` steps from (N, K*C) start states, without gradients.
        Returns z, sigma (H+1, N, K*C) and action (H+1, N, A); action[t] is taken in state t."""
        zs, sigmas, actions = [z], [sigma], []
        with torch.no_grad():
            for _ in range(horizon):
                action = policy(z)
                actions.append(action)
                sigma, z = self.img_step(sigma, z, action, residual)
                zs.append(z)
                sigmas.append(sigma)
            actions.append(policy(z))
        return {"z": torch.stack(zs), "sigma": torch.stack(sigmas), "action": torch.stack(actions)}
