"""ReDRAW calibration (METHOD.md 6.2-6.4): the sim-pretrained world model frozen, a residual on its dynamics logits
and a fresh policy fitted on an offline, reward-free target dataset.

    calibrate(config, "models/duckietown_draw", "data/dt_reversed", "runs/dt_redraw")

The posteriors of every target step are computed once (the encoder is frozen); each update is one residual update
plus one actor-critic update in the corrected imagination, with the sim reward head. A held-out part of the data
measures KL(q(z_t|x_t) || p(z_t|history)) with and without the residual. The output is a 'calibrate' checkpoint
that resumes when the same calibration is run again on the same data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import MODEL_KEYS, CheckpointError, has_checkpoint, load_agent, model_differences, read_manifest, save_checkpoint
from .config import Config
from .datasets import DatasetError, load_target_dataset
from .draw_agent import Agent
from .envs import make_env
from .replay import Replay
from .report import write_report
from .runtime import setup_torch, to_torch
from .targetdata import target_data_folder
from .trainer import Cadence, Evaluation, Trainer

EVAL_SEED = 20_000_000  # evaluation episodes are reset with EVAL_SEED + update
#: manifest `extra` entries a calibrated or finetuned checkpoint carries over from its pretrained source
INHERITED_EXTRA = ("action_names", "control_hz", "env")


@torch.no_grad()
def posterior_cache(agent: Agent, replay: Replay, device: torch.device, chunk: int = 512) -> torch.Tensor:
    """Posterior log-probs (N_phys, C, K) of every stored step, in physical replay order (for `index` gathers)."""
    arrays = replay.arrays
    n = len(arrays["image"])
    out = []
    for start in range(0, n, chunk):
        obs = {"image": torch.from_numpy(arrays["image"][start:start + chunk]).to(device)}
        if "vector" in arrays:
            obs["vector"] = torch.from_numpy(arrays["vector"][start:start + chunk]).to(device)
        out.append(agent.wm.posterior_logits(obs).float())
    return torch.cat(out)


def windows(replay: Replay, length: int) -> np.ndarray:
    """Consecutive non-overlapping windows (n, length) of physical indices covering the stream in order."""
    n = len(replay) // length
    if n == 0:
        raise ValueError(f"held-out data has {len(replay)} steps, fewer than one window of {length}")
    phys = len(replay.arrays["image"])
    start = replay._logical_start()
    return (start + np.arange(n * length).reshape(n, length)) % phys


class HoldoutKL:
    """KL(q(z_t|x_t) || p(z_t|history)) on fixed held-out windows, with and without the residual."""

    def __init__(self, agent: Agent, replay: Replay, device: torch.device, length: int, seed: int = 0):
        index = windows(replay, length)
        batch = replay.gather(index)
        self.post = posterior_cache(agent, replay, device)[torch.from_numpy(index).to(device)]
        self.action = torch.from_numpy(batch["action"]).to(device)
        self.is_first = torch.from_numpy(batch["is_first"]).to(device)
        self.seed = seed

    def __call__(self, agent: Agent, residual: bool) -> float:
        gen = torch.Generator(device=self.post.device).manual_seed(self.seed)
        return float(agent.prior_kl(self.post, self.action, self.is_first, residual=residual, generator=gen))


def check_calibration_source(src_dir: Path, src_manifest: dict[str, Any], config: Config, out: str | Path | None) -> None:
    """Refuse (CheckpointError) a calibration that cannot run: a source that is not sim-pretrained, a config that
    changes the pretrained model, or an `out` (resumed) holding a calibration of other weights. `calibrate` checks it
    again; the CLI calls it before it converts any bag."""
    if src_manifest["kind"] != "pretrain":
        raise CheckpointError(f"{src_dir} is a {src_manifest['kind']!r} checkpoint; calibrate starts from a 'pretrain' checkpoint")
    diffs = model_differences(src_manifest["config"], config.to_dict())
    if diffs:
        raise CheckpointError(f"the calibration config changes the pretrained model ({'; '.join(diffs[:4])}); "
                              "calibrate with the checkpoint's model settings (omit those overrides)")
    if out is not None and has_checkpoint(out):
        _, manifest = read_manifest(out)
        if manifest["kind"] != "calibrate" or manifest["data"].get("pretrained", {}).get("weights_sha256") != src_manifest["files"]["weights.safetensors"]:
            raise CheckpointError(f"{out} holds a checkpoint that was not calibrated from {src_dir}; use another --out folder")


def calibrate(config: Config, pretrained: str | Path, data: str | Path, out: str | Path, eval_env: str | None = None,
              eval_perturb: str = "", eval_kwargs: dict[str, Any] | None = None, progress: bool = True, resume: bool = True,
              accept_unclean: bool = False) -> dict[str, Any]:
    """ReDRAW on an offline target dataset (a folder of episodes, or rosbag2 recordings: targetdata) against a
    pretrained checkpoint; returns the summary. `eval_env` (with `eval_perturb`, `eval_kwargs`): where the calibrated policy
    is evaluated during and after the run (none: no evaluation)."""
    device = setup_torch(config)
    out = Path(out)
    cal = config.calibrate
    src_dir, src_manifest = read_manifest(pretrained)
    check_calibration_source(src_dir, src_manifest, config, out if resume else None)
    data = target_data_folder(data, out, src_manifest, config.batch_length, accept_unclean)
    out.mkdir(parents=True, exist_ok=True)
    counters = {"updates": 0}
    resumed = False
    if resume and has_checkpoint(out):
        with torch.device(device):
            agent, manifest, _ = load_agent(out, device, optimizers=True, restore_rng=True,
                                            overrides={"device": config.device, "threads": config.threads, "calibrate": cal.to_dict()})
        counters.update(manifest["counters"])
        resumed = True
    else:
        with torch.device(device):
            agent, _, _ = load_agent(src_dir, device, optimizers=False)
            torch.manual_seed(config.seed)
            merged = config.update({k: src_manifest["config"][k] for k in MODEL_KEYS})
            agent.start_calibration(merged)
    spec = {"image_shape": agent.image_shape, "action_dim": agent.action_dim, "vector_dim": agent.vector_dim}
    dataset = load_target_dataset(data, holdout=cal.holdout, seed=config.seed, **spec)
    if resumed and manifest["data"].get("target", {}).get("sha256") != dataset.digest:
        raise CheckpointError(f"{out} was calibrated on a different dataset (sha256 {manifest['data'].get('target', {}).get('sha256')}), "
                              f"{data} has {dataset.digest}")
    if resumed and "replay" in manifest.get("rng", {}):
        dataset.train.set_rng_state(manifest["rng"]["replay"])
    if config.compile:
        agent.wm.draw.compile_step()
    batch_size, length = config.batch_size, config.batch_length
    if len(dataset.train) < length:
        raise DatasetError(f"{data}: the training part has {len(dataset.train)} steps, fewer than one sequence of "
                           f"batch_length={length}; record more data or lower batch_length")
    agent.wm.eval()
    cache = posterior_cache(agent, dataset.train, device)
    holdout = None
    if dataset.holdout is not None and len(dataset.holdout) >= length:
        holdout = HoldoutKL(agent, dataset.holdout, device, length, seed=config.seed)
    kl_sim = holdout(agent, residual=False) if holdout is not None else None
    env = make_env(eval_env, eval_perturb, **(eval_kwargs or {})) if eval_env else None
    trainer = Trainer(out, kind="calibrate", total=cal.updates, counters=counters, counter="updates",
                      cadence=Cadence(cal.log_every, cal.eval_every, cal.save_every), agent=agent, device=device,
                      evaluation=Evaluation(env, cal.eval_eps, EVAL_SEED), progress=progress)
    data_info = {"target": dataset.describe(), "pretrained": {"path": str(src_dir), "weights_sha256": src_manifest["files"]["weights.safetensors"]}}
    keys = ("action", "is_first", "is_terminal") + (("vector",) if agent.hist_dim else ())

    def step() -> dict[str, Any]:
        index = dataset.train.sample_indices(batch_size, length)
        arrays = dataset.train.gather(index)
        batch = to_torch({k: arrays[k] for k in keys}, device)
        batch["post_logit"] = cache[torch.from_numpy(index).to(device)]
        return agent.calibrate_step(batch)

    def holdout_metrics() -> dict[str, float]:
        if holdout is None:
            return {}
        kl = holdout(agent, residual=True)
        return {"holdout/kl_sim": kl_sim, "holdout/kl_redraw": kl, "holdout/kl_reduction": 1.0 - kl / max(kl_sim, 1e-9)}

    def save(final: bool) -> None:
        save_checkpoint(out / "checkpoint", agent, kind="calibrate", counters=counters, metrics=trainer.checkpoint_metrics(),
                        data=data_info, preprocessing=src_manifest.get("preprocessing", {}), rng={"replay": dataset.train.rng_state()},
                        extra={**{k: v for k, v in src_manifest.get("extra", {}).items() if k in INHERITED_EXTRA},
                               "eval_env": {"id": eval_env, "perturb": eval_perturb}})

    trainer.run(step, save=save, log=holdout_metrics)
    index = np.random.default_rng(1234).integers(0, len(dataset.train) - length + 1, 4)[:, None] + np.arange(length)
    report = write_report(agent, to_torch(dataset.train.gather(index), device), out / "report.png", context=min(5, length - 1),
                          title="ReDRAW vs the sim model on target data: context frames left of the red line, then actions only")
    return trainer.finish(holdout=holdout_metrics(), dataset=dataset.describe(), report=report)
