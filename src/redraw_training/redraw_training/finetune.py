"""The finetuning baselines of the paper (METHOD.md section 7), on the same offline target data as ReDRAW.

    finetune(config, "runs/pg_draw_p2e", "data/pg_reversed", "runs/pg_draw_ft", method="draw_finetune")
    finetune(config, "runs/pg_dreamer_p2e", "data/pg_reversed", "runs/pg_dreamer_ft", method="dreamer_finetune")

draw_finetune     DRAW checkpoint; trainable = the prior network (draw.img_in, img_hidden, img_out, img_stats) and the
                  initial logits (draw.initial); encoder, posterior, decoder, reward and continue heads frozen. Loss =
                  finetune.draw_dyn * max(free_bits, mask_t KL(sg q_t || p_t)) only (no head losses, no rep loss), Adam
                  finetune.lr. The pretrained task actor-critic is kept and continues (REINFORCE, imag_horizon) in the
                  finetuned model.
dreamer_finetune  Dreamer checkpoint; trainable = the whole RSSM (GRU, prior, posterior, initial); encoder, decoder, reward
                  and continue heads frozen, gradients reach the RSSM through the frozen decoder and continue head. Loss
                  = dreamer.dyn * dyn + dreamer.rep * rep + image + vector + cont (reward scale 0), Adam finetune.lr. The
                  pretrained actor-critic is kept and continues (backprop, dreamer.imag_horizon).

Budget, batch, evaluation and held-out split are those of the calibration (config `calibrate.*`), so the baselines
and ReDRAW spend the same updates on the same data; imagination starts from the first calibrate.imag_start_fraction
of each batch's posterior states, as in ReDRAW. The kept actor-critic gets the transfer return normaliser
(retnorm.max; the Plan2Explore pretraining one used expl.retnorm_max). The output is a 'finetune' checkpoint
(the whole agent; untouched modules bit-identical to the pretrained ones) plus held-out KL(posterior || prior)
before and after finetuning, which shows overfitting on small datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from redraw_common.errors import RedrawInputError

from .calibration import INHERITED_EXTRA, posterior_cache, windows
from .checkpoint import CheckpointError, has_checkpoint, load_agent, read_manifest, save_checkpoint
from .config import Config
from .datasets import load_target_dataset
from .draw_agent import calibration_config
from .envs import make_env
from .nets import categorical_kl
from .optim import Optimizer
from .runtime import setup_torch
from .targetdata import target_data_folder
from .trainer import Cadence, Evaluation, Trainer
from .worldmodel import autocast

METHODS = ("draw_finetune", "dreamer_finetune")
#: the DRAW modules the DRAW finetune trains (METHOD.md 7: img_in/img_hidden1/img_out/img_stats + initial)
DRAW_TRAINABLE = ("wm.draw.img_in.", "wm.draw.img_hidden.", "wm.draw.img_out.", "wm.draw.img_stats.", "wm.draw.initial")
#: the Dreamer modules the Dreamer finetune trains (the whole RSSM)
DREAMER_TRAINABLE = ("wm.rssm.",)
EVAL_SEED = 20_000_000  # as the calibration's: the baselines and ReDRAW are evaluated on the same episodes


class FinetuneError(RedrawInputError):
    """A finetune method does not fit the checkpoint or the settings."""


def trainable_prefixes(method: str) -> tuple[str, ...]:
    if method == "draw_finetune":
        return DRAW_TRAINABLE
    if method == "dreamer_finetune":
        return DREAMER_TRAINABLE
    raise FinetuneError(f"unknown finetune method {method!r}; expected one of {METHODS}")


def _set_trainable(agent, prefixes: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Freeze the world model except the parameters named by `prefixes`; returns those parameters."""
    agent.wm.requires_grad_(False)
    params = []
    for name, p in agent.named_parameters():
        if name.startswith("wm.") and name.startswith(prefixes):
            p.requires_grad_(True)
            params.append(p)
    if not params:
        raise FinetuneError(f"no world-model parameters match {prefixes}; is this the right kind of checkpoint?")
    return params


class _Finetune:
    """What both baselines share: Adam (finetune.*) on the world-model parameters named by `trainable`, the rest of
    the world model frozen; the kept actor-critic trained from the first calibrate.imag_start_fraction of each
    batch's states, as ReDRAW's."""

    trainable: tuple[str, ...] = ()

    def __init__(self, agent, config: Config):
        self.agent, self.config = agent, config
        f = config.finetune
        self.params = _set_trainable(agent, self.trainable)
        self.opt = Optimizer("finetune", self.params, f.lr, f.eps, f.clip)
        agent.wm.opt = None

    def train_policy(self, states: dict[str, torch.Tensor], is_terminal: torch.Tensor) -> dict[str, torch.Tensor]:
        """states: name -> (B, T, ...) latent states of the batch; the imagination starts from the first of them."""
        cfg = self.config
        b, t = is_terminal.shape
        count = max(1, int(b * t * cfg.calibrate.imag_start_fraction))
        start = {k: v.reshape(b * t, -1)[:count] for k, v in states.items()}
        start["cont"] = 1.0 - is_terminal.reshape(-1)[:count].float()
        with autocast(cfg, is_terminal.device):
            return self.agent.task.train_step(self.agent.wm, start)


class DrawFinetune(_Finetune):
    """One update = prior-network update on cached posteriors + one actor-critic update of the kept policy."""

    trainable = DRAW_TRAINABLE

    def __init__(self, agent, config: Config):
        if not hasattr(agent.wm, "draw") or agent.calibrated:
            raise FinetuneError("draw_finetune needs an uncalibrated DRAW checkpoint (config model: draw)")
        super().__init__(agent, config)
        agent.task.config = calibration_config(config)   # the kept actor-critic imagines as ReDRAW's does

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """batch: post_logit (B, T, C, K) cached posteriors, action, is_first, is_terminal [, vector]."""
        agent, cfg = self.agent, self.config
        draw = agent.wm.draw
        post, is_first = batch["post_logit"], batch["is_first"]
        with torch.no_grad():
            z = draw.sample(post, grad=False)
            z_prev, a_prev = draw.previous(z, batch["action"], is_first)
        with autocast(cfg, post.device):
            _, raw = draw.filter_prior(z_prev, a_prev, is_first)
            prior = draw.dist_logits(raw)
            kl = categorical_kl(post.detach(), prior)
            mask = (~is_first).float()
            loss = cfg.finetune.draw_dyn * torch.clamp(mask * kl, min=cfg.free_bits).mean()
        metrics = self.opt.step(loss)
        metrics["finetune/kl"] = (kl.detach() * mask).sum() / mask.sum().clamp(min=1)
        states = {"z": z, "sigma": draw.belief(raw.detach())}
        if agent.hist_dim:
            states["hist"] = agent.history(batch.get("vector"))
        metrics.update(self.train_policy(states, batch["is_terminal"]))
        return metrics

    @torch.no_grad()
    def holdout_kl(self, post: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor, seed: int) -> float:
        gen = torch.Generator(device=post.device).manual_seed(seed)
        return float(self.agent.prior_kl(post, action, is_first, residual=False, generator=gen))


class DreamerFinetune(_Finetune):
    """One update = RSSM update through the frozen decoders (no reward loss) + one backprop actor-critic update."""

    trainable = DREAMER_TRAINABLE

    def __init__(self, agent, config: Config):
        if not hasattr(agent.wm, "rssm"):
            raise FinetuneError("dreamer_finetune needs a Dreamer checkpoint (config model: dreamer)")
        super().__init__(agent, config)

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """batch: embed (B, T, E) cached embeddings, image (targets), action, is_first, is_terminal [, vector]."""
        agent, cfg = self.agent, self.config
        wm = agent.wm
        with autocast(cfg, batch["image"].device):
            total, states, metrics = wm.loss(batch, scales={"reward": 0.0}, embed=batch["embed"])
        metrics.update(self.opt.step(total))
        metrics.update(self.train_policy({"h": states["h"].detach(), "z": states["z"].detach()}, batch["is_terminal"]))
        return metrics

    @torch.no_grad()
    def holdout_kl(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor, seed: int) -> float:
        """Mean KL(q || p) over the held-out windows (posterior samples drawn with a fixed seed)."""
        with torch.random.fork_rng(devices=[embed.device] if embed.device.type == "cuda" else []):
            torch.manual_seed(seed)
            states = self.agent.wm.rssm.observe(embed, action, is_first)
        return float(categorical_kl(states["post_logit"], states["prior_logit"]).mean())


@torch.no_grad()
def embed_cache(agent, replay, device: torch.device, chunk: int = 512) -> torch.Tensor:
    """Encoder embeddings (N_phys, E) of every stored step, in physical replay order."""
    arrays = replay.arrays
    out = []
    for start in range(0, len(arrays["image"]), chunk):
        obs = {"image": torch.from_numpy(arrays["image"][start:start + chunk]).to(device)}
        if "vector" in arrays:
            obs["vector"] = torch.from_numpy(arrays["vector"][start:start + chunk]).to(device)
        out.append(agent.wm.embed(obs).float())
    return torch.cat(out)


def _to(batch: dict[str, np.ndarray], keys, device) -> dict[str, torch.Tensor]:
    out = {}
    for k in keys:
        if k in batch:
            t = torch.from_numpy(np.ascontiguousarray(batch[k]))
            out[k] = (t.float() if t.dtype == torch.float64 else t).to(device)
    return out


def finetune(config: Config, pretrained: str | Path, data: str | Path, out: str | Path, method: str, eval_env: str | None = None,
             eval_perturb: str = "", eval_kwargs: dict[str, Any] | None = None, progress: bool = True,
             accept_unclean: bool = False) -> dict[str, Any]:
    """Finetune a pretrained checkpoint on an offline target dataset (a folder of episodes, or rosbag2 recordings:
    targetdata) with one of METHODS; returns the summary."""
    trainable_prefixes(method)
    device = setup_torch(config)
    out = Path(out)
    if has_checkpoint(out):
        raise CheckpointError(f"{out} already holds a checkpoint; finetune writes a new run folder (choose another --out)")
    cal = config.calibrate
    src_dir, src_manifest = read_manifest(pretrained)
    if src_manifest["kind"] != "pretrain":
        raise CheckpointError(f"{src_dir} is a {src_manifest['kind']!r} checkpoint; finetune starts from a 'pretrain' checkpoint")
    data = target_data_folder(data, out, src_manifest, config.batch_length, accept_unclean)
    out.mkdir(parents=True, exist_ok=True)
    with torch.device(device):
        agent, _, _ = load_agent(src_dir, device, optimizers=True)
    torch.manual_seed(config.seed)
    runner = (DrawFinetune if method == "draw_finetune" else DreamerFinetune)(agent, config)
    agent.task.retnorm.max = float(config.retnorm.max)
    spec = {"image_shape": agent.image_shape, "action_dim": agent.action_dim, "vector_dim": agent.vector_dim}
    dataset = load_target_dataset(data, holdout=cal.holdout, seed=config.seed, **spec)
    batch_size, length = config.batch_size, config.batch_length
    agent.wm.eval()
    is_draw = method == "draw_finetune"
    cache = posterior_cache(agent, dataset.train, device) if is_draw else embed_cache(agent, dataset.train, device)

    hold = None
    if dataset.holdout is not None and len(dataset.holdout) >= length:
        index = windows(dataset.holdout, length)
        arrays = dataset.holdout.gather(index)
        feats = (posterior_cache if is_draw else embed_cache)(agent, dataset.holdout, device)[torch.from_numpy(index).to(device)]
        hold = (feats, torch.from_numpy(arrays["action"]).to(device), torch.from_numpy(arrays["is_first"]).to(device))

    def holdout_kl() -> float | None:
        return None if hold is None else runner.holdout_kl(*hold, seed=config.seed)

    kl_before = holdout_kl()
    env = make_env(eval_env, eval_perturb, **(eval_kwargs or {})) if eval_env else None
    counters = {"updates": 0}
    trainer = Trainer(out, kind="finetune", total=cal.updates, counters=counters, counter="updates", desc=method,
                      cadence=Cadence(cal.log_every, cal.eval_every), agent=agent, device=device,
                      evaluation=Evaluation(env, cal.eval_eps, EVAL_SEED), progress=progress)
    data_info = {"target": dataset.describe(), "pretrained": {"path": str(src_dir), "weights_sha256": src_manifest["files"]["weights.safetensors"]},
                 "method": method, "trainable": list(trainable_prefixes(method))}

    def save(final: bool) -> None:
        save_checkpoint(out / "checkpoint", agent, kind="finetune", counters=counters, metrics=trainer.checkpoint_metrics(),
                        data=data_info, preprocessing=src_manifest.get("preprocessing", {}),
                        extra={**{k: v for k, v in src_manifest.get("extra", {}).items() if k in INHERITED_EXTRA},
                               "finetune": method, "eval_env": {"id": eval_env, "perturb": eval_perturb}})

    keys = ("action", "is_first", "is_terminal") if is_draw else ("image", "vector", "action", "is_first", "is_terminal")
    if is_draw and agent.hist_dim:
        keys += ("vector",)   # the policy's past actions

    def step() -> dict[str, Any]:
        index = dataset.train.sample_indices(batch_size, length)
        batch = _to(dataset.train.gather(index), keys, device)
        batch["post_logit" if is_draw else "embed"] = cache[torch.from_numpy(index).to(device)]
        return runner.step(batch)

    def holdout_scalars() -> dict[str, float]:
        kl = holdout_kl()
        return {} if kl is None else {"holdout/kl": kl}

    trainer.run(step, save=save, log=holdout_scalars)
    kl_after = holdout_kl()
    return trainer.finish(method=method, holdout={"holdout/kl_before": kl_before, "holdout/kl_after": kl_after} if hold is not None else {},
                          dataset=dataset.describe())
