"""The DRAW world model (METHOD.md section 3): encoder, latent dynamics, heads on z, losses, training.

Batches are dicts of tensors with leading (B, T): image uint8 (B, T, H, W, C), action float (B, T, A),
is_first / is_last / is_terminal bool (B, T), optional reward float (B, T) and vector float (B, T, D).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from redraw_common.observation import ACTION_DIM, history_length

from .config import Config
from .draw import DRAW
from .nets import MLP, ImageDecoder, ImageEncoder, TwoHotHead, categorical_kl, normalize_image, symlog
from .optim import Optimizer


def autocast(config: Config, device: torch.device):
    if config.precision == "bfloat16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class Encoder(nn.Module):
    """e_t = concat[CNN(image), MLP(symlog(vector))]."""

    def __init__(self, image_shape: tuple[int, int, int], vector_dim: int, cfg: Config):
        super().__init__()
        self.cnn = ImageEncoder(image_shape, cfg.cnn_depth, cfg.minres)
        self.symlog_inputs = cfg.symlog_inputs
        self.mlp = MLP(vector_dim, cfg.mlp_layers, cfg.mlp_units) if vector_dim else None
        self.out_dim = self.cnn.out_dim + (self.mlp.out_dim if self.mlp is not None else 0)

    def forward(self, image: torch.Tensor, vector: torch.Tensor | None = None) -> torch.Tensor:
        lead = image.shape[:-3]
        out = self.cnn(image.reshape(-1, *image.shape[-3:])).reshape(*lead, -1)
        return self.with_vector(out, vector)

    def with_vector(self, cnn_out: torch.Tensor, vector: torch.Tensor | None) -> torch.Tensor:
        """The embedding from the CNN features (..., F) and the vector (..., D)."""
        if self.mlp is None:
            return cnn_out
        if vector is None:
            raise ValueError("this model encodes a 'vector' observation, but the batch has none")
        v = vector.float()
        return torch.cat([cnn_out, self.mlp(symlog(v) if self.symlog_inputs else v)], -1)


class Decoder(nn.Module):
    def __init__(self, zdim: int, image_shape: tuple[int, int, int], vector_dim: int, cfg: Config):
        super().__init__()
        self.image = ImageDecoder(zdim, image_shape, cfg.cnn_depth, cfg.minres)
        self.vector = MLP(zdim, cfg.mlp_layers, cfg.mlp_units, vector_dim) if vector_dim else None

    def forward(self, z: torch.Tensor, centered: bool = False) -> dict[str, torch.Tensor]:
        """Decoded image (..., H, W, C) in about [0, 1] (or minus 0.5 if `centered`) [+ symlog vector]."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1])
        image = self.image.centered(flat) if centered else self.image(flat)
        out = {"image": image.reshape(*lead, *self.image_shape)}
        if self.vector is not None:
            out["vector"] = self.vector(flat).reshape(*lead, -1)
        return out

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w, _ = self.image.start
        s = 2**self.image.stages
        return (h * s, w * s, self.image.net[-1].out_channels)


def history_dims(vector_dim: int, setting: str) -> int:
    """The entries of past actions at the end of a Duckiebot vector of size `vector_dim`, for the config switch
    `setting` that uses them (history_to_policy, history_counterfactual); 0 for no vector or the velocity alone."""
    if not vector_dim:
        return 0
    try:
        return ACTION_DIM * history_length(vector_dim)
    except ValueError as exc:
        raise ValueError(f"{setting} needs a Duckiebot vector (velocity + past actions): {exc}") from None


def heads(config: Config, feat_dim: int, image_shape: tuple[int, int, int], vector_dim: int) -> tuple[Decoder, TwoHotHead, MLP]:
    """The decoder, reward and continue heads on a latent feature of size `feat_dim` (DRAW: z; Dreamer: [h, z])."""
    r, c = config.reward_head, config.cont_head
    return (Decoder(feat_dim, image_shape, vector_dim, config.decoder),
            TwoHotHead(feat_dim, r.layers, r.units, r.bins, r.low, r.high, out_init="zero"),
            MLP(feat_dim, c.layers, c.units, 1, "normal"))


class LatentWorldModel(nn.Module):
    """What the DRAW and the Dreamer world models share around their own `loss`: the shapes they model, one Adam over
    every parameter (config model_opt), freezing, the continue head's mode and the update."""

    def __init__(self, config: Config, image_shape: tuple[int, int, int], action_dim: int, vector_dim: int = 0):
        super().__init__()
        self.config = config
        self.image_shape, self.action_dim, self.vector_dim = tuple(image_shape), action_dim, vector_dim
        self.opt: Optimizer | None = None

    def make_optimizer(self) -> Optimizer:
        o = self.config.model_opt
        self.opt = Optimizer("model", self.parameters(), o.lr, o.eps, o.clip)
        return self.opt

    def freeze(self) -> None:
        self.requires_grad_(False)
        self.opt = None

    def cont_mode(self, feat: torch.Tensor) -> torch.Tensor:
        return (self.cont(feat).squeeze(-1) > 0).float()

    def train_step(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One update; returns the (detached) posterior states and metrics."""
        if self.opt is None:
            raise RuntimeError("world model has no optimizer (frozen?); call make_optimizer() first")
        with autocast(self.config, batch["image"].device):
            total, states, metrics = self.loss(batch)
        metrics.update(self.opt.step(total))
        return {k: v.detach() for k, v in states.items()}, metrics


class WorldModel(LatentWorldModel):
    def __init__(self, config: Config, image_shape: tuple[int, int, int], action_dim: int, vector_dim: int = 0):
        super().__init__(config, image_shape, action_dim, vector_dim)
        # history_to_policy: the past actions at the end of the observation's vector are the policy's, not the model's
        self.policy_history_dims = history_dims(vector_dim, "history_to_policy") if config.history_to_policy else 0
        vector_dim = self.model_vector_dim = vector_dim - self.policy_history_dims
        self.encoder = Encoder(self.image_shape, vector_dim, config.encoder)
        r = config.rssm
        self.draw = DRAW(self.encoder.out_dim, action_dim, r.stoch, r.classes, r.units, r.img_hidden_layers, r.unimix, r.action_clip)
        self.decoder, self.reward, self.cont = heads(config, self.draw.zdim, self.image_shape, vector_dim)
        self.scales = dict(config.loss_scales)
        # the action-history entries at the end of the vector, for the counterfactual heads' loss (0: none)
        self.history_dims = history_dims(vector_dim, "history_counterfactual") if config.history_counterfactual else 0

    @property
    def zdim(self) -> int:
        return self.draw.zdim

    def imagined_reward(self, traj: dict[str, torch.Tensor]) -> torch.Tensor:
        """The reward (H, N) of imagined steps 1..H: the reward head's mean on z."""
        return self.reward(traj["z"][1:]).mean()

    # ------------------------------------------------------------------------------------------------------

    def own_vector(self, vector: torch.Tensor | None) -> torch.Tensor | None:
        """The part of an observation's vector this model encodes (all of it unless history_to_policy)."""
        if vector is None or not self.policy_history_dims:
            return vector
        return vector[..., : self.model_vector_dim]

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder(batch["image"], self.own_vector(batch.get("vector")))

    def posterior_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalised log-probs (..., C, K) of q(z | x) for every step."""
        return self.draw.dist_logits(self.draw.posterior_raw(self.embed(batch)))

    def kl_terms(self, post_logit: torch.Tensor, prior_logit: torch.Tensor, is_first: torch.Tensor) -> dict[str, torch.Tensor]:
        """Masked, free-bits clipped dyn and rep losses (B, T) plus the raw KL (METHOD.md 3.5)."""
        mask = (~is_first).float()
        free = self.config.free_bits
        dyn = categorical_kl(post_logit.detach(), prior_logit)
        rep = categorical_kl(post_logit, prior_logit.detach())
        return {"dyn": torch.clamp(mask * dyn, min=free), "rep": torch.clamp(mask * rep, min=free), "kl": dyn.detach()}

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        image = normalize_image(batch["image"])       # encoder input and (+0.5) decoder target, computed once
        vector = self.own_vector(batch.get("vector"))
        embed = self.encoder(image, vector)
        states = self.draw.observe(embed, batch["action"], batch["is_first"])
        z = states["z"]
        losses = {}
        recon = self.decoder(z, centered=True)
        steps = image.shape[0] * image.shape[1]
        # squared error summed over pixels, mean over (B, T): one fused kernel forward and backward
        losses["image"] = F.mse_loss(recon["image"].float(), image, reduction="sum") / steps
        if self.model_vector_dim:
            losses["vector"] = ((recon["vector"].float() - symlog(vector.float())) ** 2).sum(-1)
        if "reward" in batch:
            losses["reward"] = -self.reward(z).log_prob(batch["reward"])
        cont_target = 1.0 - batch["is_terminal"].float()
        losses["cont"] = F.binary_cross_entropy_with_logits(self.cont(z).squeeze(-1).float(), cont_target, reduction="none")
        kl = self.kl_terms(states["post_logit"], states["prior_logit"], batch["is_first"])
        losses["dyn"], losses["rep"] = kl["dyn"], kl["rep"]
        total = sum(self.scales[k] * v.mean() for k, v in losses.items())
        if self.history_dims:
            counterfactual = self.counterfactual_losses(embed, {**batch, "vector": vector}, cont_target)
            total = total + sum(self.scales[k.removesuffix("_cf")] * v.mean() for k, v in counterfactual.items())
            losses.update(counterfactual)
        metrics = {f"wm/{k}": v.detach().mean() for k, v in losses.items()}
        mask = (~batch["is_first"]).float()
        metrics["wm/kl"] = (kl["kl"] * mask).sum() / mask.sum().clamp(min=1)
        metrics["wm/image_mse"] = losses["image"].detach() / image[0, 0].numel()
        return total, states, metrics

    def counterfactual_losses(self, embed: torch.Tensor, batch: dict[str, torch.Tensor], cont_target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reward, continue and vector losses (B, T) of posteriors whose action history comes from other steps of the
        batch (a random permutation): the targets are the true reward and continue flag and the swapped vector."""
        vector = batch["vector"].float()
        lead = vector.shape[:-1]
        h = self.history_dims
        perm = torch.randperm(vector[..., 0].numel(), device=vector.device)
        swapped = vector[..., -h:].reshape(-1, h)[perm].reshape(*lead, h)
        vector_cf = torch.cat([vector[..., :-h], swapped], -1)
        cnn_out = embed[..., : self.encoder.cnn.out_dim]
        z = self.draw.sample(self.draw.dist_logits(self.draw.posterior_raw(self.encoder.with_vector(cnn_out, vector_cf))))
        out = {"vector_cf": ((self.decoder.vector(z).float() - symlog(vector_cf)) ** 2).sum(-1),
               "cont_cf": F.binary_cross_entropy_with_logits(self.cont(z).squeeze(-1).float(), cont_target, reduction="none")}
        if "reward" in batch:
            out["reward_cf"] = -self.reward(z).log_prob(batch["reward"])
        return out
