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
                  Both finetunes' kept actor-critics imagine calibrate.imag_horizon steps when it is set, as ReDRAW's
                  fresh one does (draw_agent.calibration_config; the paper's Dreamer imagines 15).

Budget, batch, evaluation and held-out split are those of the calibration (config `calibrate.*`), so the baselines
and ReDRAW spend the same updates on the same data; imagination starts from the first calibrate.imag_start_fraction
of each batch's posterior states, as in ReDRAW. The kept actor-critic gets the transfer return normaliser
(retnorm.max; the Plan2Explore pretraining one used expl.retnorm_max). The output is a 'finetune' checkpoint
(the whole agent; untouched modules bit-identical to the pretrained ones) plus held-out KL(posterior || prior)
before and after finetuning, which shows overfitting on small datasets.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch

from redraw_common.errors import RedrawInputError

from .behavior import start_states
from .calibration import TargetRun, agent_spec
from .checkpoint import CheckpointError, has_checkpoint, load_agent, read_manifest
from .config import Config
from .datasets import load_target_dataset
from .draw_agent import calibration_config
from .nets import categorical_kl
from .optim import Optimizer
from .runtime import setup_torch
from .targetdata import target_data_folder
from .worldmodel import autocast

METHODS = ("draw_finetune", "dreamer_finetune")
#: the DRAW modules the DRAW finetune trains (METHOD.md 7: img_in/img_hidden1/img_out/img_stats + initial)
DRAW_TRAINABLE = ("wm.draw.img_in.", "wm.draw.img_hidden.", "wm.draw.img_out.", "wm.draw.img_stats.", "wm.draw.initial")
#: the Dreamer modules the Dreamer finetune trains (the whole RSSM)
DREAMER_TRAINABLE = ("wm.rssm.",)


class FinetuneError(RedrawInputError):
    """A finetune method does not fit the checkpoint or the settings."""


def trainable_prefixes(method: str) -> tuple[str, ...]:
    if method not in METHODS:
        raise FinetuneError(f"unknown finetune method {method!r}; expected one of {METHODS}")
    return DRAW_TRAINABLE if method == "draw_finetune" else DREAMER_TRAINABLE


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
        agent.task.config = calibration_config(config)   # the kept actor-critic imagines as far as ReDRAW's

    def train_policy(self, states: dict[str, torch.Tensor], is_terminal: torch.Tensor) -> dict[str, torch.Tensor]:
        """states: name -> (B, T, ...) latent states of the batch; the imagination starts from the first of them."""
        cfg = self.config
        start = start_states(states, is_terminal, max(1, int(is_terminal.numel() * cfg.calibrate.imag_start_fraction)), first=True)
        with autocast(cfg, is_terminal.device):
            return self.agent.task.train_step(self.agent.wm, start)


class DrawFinetune(_Finetune):
    """One update = prior-network update on cached posteriors + one actor-critic update of the kept policy."""

    trainable = DRAW_TRAINABLE

    def __init__(self, agent, config: Config):
        if not hasattr(agent.wm, "draw") or agent.calibrated:
            raise FinetuneError("draw_finetune needs an uncalibrated DRAW checkpoint (config model: draw)")
        super().__init__(agent, config)

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

    def encoding(self) -> tuple:
        """What the run caches per step, the batch key it goes under, and the held-out KL on it."""
        return self.agent.wm.posterior_logits, "post_logit", partial(self.agent.prior_kl, residual=False)


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

    def encoding(self) -> tuple:
        """What the run caches per step (encoder embeddings), the batch key it goes under, and the held-out KL on it."""
        return self.agent.wm.embed, "embed", self.holdout_kl

    @torch.no_grad()
    def holdout_kl(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Mean KL(q || p) over the held-out windows (posterior samples drawn from the generator's seed)."""
        with torch.random.fork_rng(devices=[embed.device] if embed.device.type == "cuda" else []):
            torch.manual_seed(generator.initial_seed())
            states = self.agent.wm.rssm.observe(embed, action, is_first)
        return categorical_kl(states["post_logit"], states["prior_logit"]).mean()


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
    dataset = load_target_dataset(data, holdout=config.calibrate.holdout, seed=config.seed, **agent_spec(agent))
    run = TargetRun(config, "finetune", agent, (src_dir, src_manifest), dataset, out, device, {"updates": 0}, runner.encoding(),
                    eval_env, eval_perturb, eval_kwargs, progress, save_every=0, desc=method)   # a finetune saves at its end only
    run.data_info.update(method=method, trainable=list(trainable_prefixes(method)))
    kl_before = run.holdout() if run.holdout is not None else None
    if method == "draw_finetune":
        keys = ("action", "is_first", "is_terminal") + (("vector",) if agent.hist_dim else ())   # vector: the policy's past actions
    else:
        keys = ("image", "vector", "action", "is_first", "is_terminal")

    def holdout_scalars() -> dict[str, float]:
        return {} if run.holdout is None else {"holdout/kl": run.holdout()}

    run.trainer.run(lambda: runner.step(run.batch(keys)), save=lambda final: run.save(final, finetune=method), log=holdout_scalars)
    holdout = {"holdout/kl_before": kl_before, "holdout/kl_after": run.holdout()} if run.holdout is not None else {}
    return run.trainer.finish(method=method, holdout=holdout, dataset=dataset.describe())
