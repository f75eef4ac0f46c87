"""The ReDRAW latent dynamics residual (METHOD.md section 6.1).

    input   = concat[z_{t-1} (K*C), clip(a_{t-1}) (A)]                   (not sigma_{t-1})
    delta_m = Out(K*C, uniform or zero init, bias)( layers x [x @ W -> LayerNorm -> SiLU](input) )
    u'_t    = u_t + mean_m delta_m                                        (added to the raw prior logits)

The M members are evaluated together with batched matmuls (weights stacked along a member dim).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .nets import LN_EPS, init_weight


class EnsembleLinear(nn.Module):
    """M independent linear maps (M, ..., inp) -> (M, ..., out); hidden form: no bias + per-member LayerNorm + SiLU."""

    def __init__(self, members: int, inp: int, out: int, hidden: bool, init: str = "normal"):
        super().__init__()
        self.hidden = hidden
        self.weight = nn.Parameter(torch.empty(members, inp, out))
        for m in range(members):
            w = torch.empty(out, inp)
            init_weight(w, inp, out, init)
            with torch.no_grad():
                self.weight[m].copy_(w.t())
        if hidden:
            self.scale = nn.Parameter(torch.ones(members, 1, out))
            self.offset = nn.Parameter(torch.zeros(members, 1, out))
        else:
            self.bias = nn.Parameter(torch.zeros(members, 1, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members = self.weight.shape[0]
        shape = x.shape[1:-1]
        x = x.reshape(members, -1, x.shape[-1])
        y = torch.bmm(x, self.weight)
        if self.hidden:
            y = F.silu(F.layer_norm(y, y.shape[-1:], eps=LN_EPS) * self.scale + self.offset)
        else:
            y = y + self.bias
        return y.reshape(members, *shape, y.shape[-1])


class EnsembleResidual(nn.Module):
    def __init__(self, zdim: int, action_dim: int, members: int = 1, layers: int = 1, units: int = 256, out_init: str = "uniform"):
        """out_init: 'uniform' (the paper's output layer), or 'zero': delta = 0 until trained, the sim prior exactly."""
        super().__init__()
        if out_init not in ("uniform", "zero"):
            raise ValueError(f"residual out_init must be 'uniform' or 'zero', found {out_init!r}")
        self.members, self.zdim, self.action_dim = members, zdim, action_dim
        dims = [zdim + action_dim] + [units] * layers
        self.hidden = nn.ModuleList(EnsembleLinear(members, a, b, hidden=True) for a, b in zip(dims[:-1], dims[1:]))
        self.out = EnsembleLinear(members, dims[-1], zdim, hidden=False, init="uniform")
        if out_init == "zero":
            with torch.no_grad():
                self.out.weight.zero_()

    def forward(self, z_prev: torch.Tensor, a_prev: torch.Tensor) -> torch.Tensor:
        """(..., K*C), (..., A) -> (M, ..., K*C) corrections of the raw prior logits."""
        x = torch.cat([z_prev, a_prev], -1)
        x = x.unsqueeze(0).expand(self.members, *x.shape)
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)
