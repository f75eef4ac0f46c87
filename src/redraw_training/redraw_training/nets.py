"""Network building blocks and distributions, as METHOD.md sections 2-5 describe them.

* `Dense`: hidden layer `x @ W` (no bias) -> LayerNorm(eps=1e-3) -> SiLU, truncated-normal init (fan avg).
* `Out`: output layer `x @ W + b`, no norm or activation; init `normal` (fan avg), `uniform` or `zero`.
* `ChannelNorm`: LayerNorm over the channels of every pixel (not GroupNorm(1, C), which would normalise
  over C, H and W together).
* `ImageEncoder` / `ImageDecoder`: strided (transposed) convs k=4 s=2 down to / up from `minres`.
* symlog / symexp, two-hot distributions over symlog bins, categorical helpers with unimix and
  straight-through samples, the actor's bounded Normal.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-3
_TRUNC_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]


# ----------------------------------------------------------------------------------------------------------
# Initialisers (METHOD.md section 2)


def init_weight(weight: torch.Tensor, fan_in: int, fan_out: int, kind: str = "normal", scale: float = 1.0) -> None:
    fan = (fan_in + fan_out) / 2.0
    with torch.no_grad():
        if kind == "zero" or scale == 0.0:
            weight.zero_()
        elif kind == "normal":
            std = math.sqrt(scale / fan) / _TRUNC_STD
            nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)
        elif kind == "uniform":
            limit = math.sqrt(3.0 * scale / fan)
            nn.init.uniform_(weight, -limit, limit)
        else:
            raise ValueError(f"unknown init {kind!r}; expected 'normal', 'uniform' or 'zero'")


# ----------------------------------------------------------------------------------------------------------
# Layers


class Dense(nn.Module):
    """Hidden layer: x @ W -> LayerNorm(eps 1e-3) -> SiLU."""

    def __init__(self, inp: int, out: int):
        super().__init__()
        self.linear = nn.Linear(inp, out, bias=False)
        self.norm = nn.LayerNorm(out, eps=LN_EPS)
        init_weight(self.linear.weight, inp, out, "normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.norm(self.linear(x)))


class Out(nn.Module):
    """Output layer: x @ W + b."""

    def __init__(self, inp: int, out: int, init: str = "normal"):
        super().__init__()
        self.linear = nn.Linear(inp, out, bias=True)
        init_weight(self.linear.weight, inp, out, init)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class MLP(nn.Module):
    """`layers` x Dense(units), optionally followed by Out(out)."""

    def __init__(self, inp: int, layers: int, units: int, out: int | None = None, out_init: str = "normal"):
        super().__init__()
        dims = [inp] + [units] * layers
        self.hidden = nn.Sequential(*[Dense(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.out_dim = dims[-1] if out is None else out
        self.head = None if out is None else Out(dims[-1], out, out_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden(x)
        return x if self.head is None else self.head(x)


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channel dim of an NCHW tensor, separately for every pixel."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NCHW -> NHWC (free for channels_last tensors), normalise over C, back to NCHW.
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


def conv_stages(height: int, width: int, minres: int) -> int:
    """Number of stride-2 stages from the image size down to `minres` (64 -> 4: 4, 32 -> 4: 3)."""
    small = min(height, width)
    if small < minres or small % minres:
        raise ValueError(f"image size {height}x{width} must be a multiple of minres={minres}")
    stages = int(round(math.log2(small / minres)))
    if minres * 2**stages != small or height % 2**stages or width % 2**stages:
        raise ValueError(f"image size {height}x{width} must be minres * 2**k (e.g. 32 or 64 with minres 4), found {height}x{width}")
    return stages


def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-0.5, 0.5] (the encoder's input; also the decoder's target, minus 0.5)."""
    return image.to(torch.float32).mul_(1.0 / 255.0).sub_(0.5)


class ImageEncoder(nn.Module):
    """uint8 (N, H, W, C) -> (N, out_dim): input/255 - 0.5, k=4 s=2 convs (channel-LN, SiLU), flatten.
    A float input is taken as already normalised (`normalize_image`)."""

    def __init__(self, shape: tuple[int, int, int], depth: int, minres: int):
        super().__init__()
        height, width, channels = shape
        self.stages = conv_stages(height, width, minres)
        layers = []
        inp = channels
        for i in range(self.stages):
            out = depth * 2**i
            conv = nn.Conv2d(inp, out, 4, 2, 1, bias=False)
            init_weight(conv.weight, inp * 16, out * 16, "normal")
            layers += [conv, ChannelNorm(out), nn.SiLU()]
            inp = out
        self.net = nn.Sequential(*layers)
        self.out_shape = (height // 2**self.stages, width // 2**self.stages, inp)
        self.out_dim = math.prod(self.out_shape)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = normalize_image(image) if image.dtype == torch.uint8 else image
        x = x.permute(0, 3, 1, 2)  # NHWC memory viewed as NCHW = channels_last
        x = self.net(x)
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


class ImageDecoder(nn.Module):
    """(N, inp) -> float (N, H, W, C) in about [0, 1]: Out -> (minres, minres, D), transposed convs, +0.5.
    `centered(x)` gives the output before the +0.5 (compared with `normalize_image` in the loss)."""

    def __init__(self, inp: int, shape: tuple[int, int, int], depth: int, minres: int):
        super().__init__()
        height, width, channels = shape
        self.stages = conv_stages(height, width, minres)
        top = depth * 2 ** (self.stages - 1)
        self.start = (height // 2**self.stages, width // 2**self.stages, top)
        self.linear = Out(inp, math.prod(self.start))
        layers: list[nn.Module] = []
        ch = top
        for i in range(self.stages):
            last = i == self.stages - 1
            out = channels if last else ch // 2
            conv = nn.ConvTranspose2d(ch, out, 4, 2, 1, bias=last)
            # ConvTranspose2d weight is (in, out, k, k)
            init_weight(conv.weight, ch * 16, out * 16, "normal")
            if last:
                nn.init.zeros_(conv.bias)
                layers.append(conv)
            else:
                layers += [conv, ChannelNorm(out), nn.SiLU()]
            ch = out
        self.net = nn.Sequential(*layers)

    def centered(self, x: torch.Tensor) -> torch.Tensor:
        h, w, c = self.start
        x = self.linear(x).reshape(-1, h, w, c).permute(0, 3, 1, 2)
        x = self.net(x)
        return x.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.centered(x) + 0.5


# ----------------------------------------------------------------------------------------------------------
# symlog and two-hot


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(torch.abs(x))


class TwoHot:
    """Categorical over `bins` (symlog space); mean = symexp(E[bin]); loss = two-hot cross-entropy."""

    def __init__(self, logits: torch.Tensor, bins: torch.Tensor):
        self.logits = logits.float()
        self.bins = bins
        self.log_probs = F.log_softmax(self.logits, -1)

    def mean(self) -> torch.Tensor:
        return symexp(torch.softmax(self.logits, -1) @ self.bins)

    def log_prob(self, target: torch.Tensor) -> torch.Tensor:
        return (twohot(symlog(target.float()), self.bins) * self.log_probs).sum(-1)


def twohot(x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Two-hot encoding of x (already in bin space) over sorted `bins`; values outside are clipped."""
    n = bins.shape[0]
    x = x.clamp(bins[0], bins[-1])
    above = torch.bucketize(x, bins, right=False).clamp(1, n - 1)  # first bin >= x
    below = above - 1
    lo, hi = bins[below], bins[above]
    w_above = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    out = torch.zeros(*x.shape, n, dtype=x.dtype, device=x.device)
    out.scatter_(-1, below.unsqueeze(-1), (1.0 - w_above).unsqueeze(-1))
    out.scatter_add_(-1, above.unsqueeze(-1), w_above.unsqueeze(-1))
    return out


class TwoHotHead(nn.Module):
    """MLP -> Out(bins) with zero-initialised output (reward head, critic)."""

    def __init__(self, inp: int, layers: int, units: int, bins: int, low: float, high: float, out_init: str = "zero"):
        super().__init__()
        self.mlp = MLP(inp, layers, units, bins, out_init)
        self.register_buffer("bins", torch.linspace(low, high, bins), persistent=False)

    def forward(self, x: torch.Tensor) -> TwoHot:
        return TwoHot(self.mlp(x), self.bins)


# ----------------------------------------------------------------------------------------------------------
# Categorical latents
#
# Latent tensors are laid out (..., C, K): classes on dim -2, the K latents innermost. Reductions over the
# few classes then run vectorised over K; with classes innermost, PyTorch's CPU softmax/argmax over a
# last dim of 4-16 entries are 10-25x slower. Flattened latents (K*C) use this order too.

CLASS_DIM = -2


def unimix_probs(raw: torch.Tensor, unimix: float) -> torch.Tensor:
    """0.99 softmax(raw) + 0.01 / C over the class dim."""
    probs = torch.softmax(raw.float(), CLASS_DIM)
    if unimix:
        probs = (1.0 - unimix) * probs + unimix / probs.shape[CLASS_DIM]
    return probs


def unimix_logits(raw: torch.Tensor, unimix: float) -> torch.Tensor:
    """log(0.99 softmax(raw) + 0.01 / C): normalised log-probabilities."""
    if not unimix:
        return torch.log_softmax(raw.float(), CLASS_DIM)
    return torch.log(unimix_probs(raw, unimix))


def sample_onehot(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot sample (..., C, K) of probabilities (..., C, K) by inverting the CDF (one uniform per latent)."""
    classes = probs.shape[CLASS_DIM]
    u = torch.rand((*probs.shape[:-2], 1, probs.shape[-1]), device=probs.device, generator=generator)
    idx = (probs.detach().cumsum(CLASS_DIM) <= u).sum(CLASS_DIM, keepdim=True).clamp_(max=classes - 1)
    return (idx == torch.arange(classes, device=probs.device).view(classes, 1)).to(probs.dtype)


def straight_through(sample: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """sample + p - sg(p): forward value = the sample, gradient = d p."""
    return sample + probs - probs.detach()


def mode_onehot(logits: torch.Tensor) -> torch.Tensor:
    """One-hot argmax over the class dim (ties -> the first class)."""
    idx = torch.argmax(logits, CLASS_DIM, keepdim=True)
    return torch.zeros_like(logits).scatter_(CLASS_DIM, idx, 1.0)


def categorical_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) for normalised log-probabilities (..., C, K), summed over the K latents -> (...)."""
    return (logp.exp() * (logp - logq)).sum((-2, -1))


# ----------------------------------------------------------------------------------------------------------
# Actor distribution


class BoundedNormal:
    """Normal(tanh(m), (maxstd - minstd) sigmoid(s + 2) + minstd) per action dim (independent)."""

    def __init__(self, out: torch.Tensor, minstd: float, maxstd: float):
        mean, std = out.float().chunk(2, -1)
        self.mean = torch.tanh(mean)
        self.std = (maxstd - minstd) * torch.sigmoid(std + 2.0) + minstd

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, device=self.mean.device, generator=generator)
        return self.mean + self.std * noise

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return (-0.5 * z * z - torch.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (0.5 + 0.5 * math.log(2 * math.pi) + torch.log(self.std)).sum(-1)
