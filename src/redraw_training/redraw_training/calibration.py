"""ReDRAW calibration (METHOD.md 6.2-6.4): the sim-pretrained world model frozen, a residual on its dynamics logits
and a fresh policy fitted on an offline, reward-free target dataset.

    calibrate(config, "models/duckietown_draw", "data/dt_reversed", "runs/dt_redraw")

The posteriors of every target step are computed once (the encoder is frozen); each update is one residual update
plus one actor-critic update in the corrected imagination, with the sim reward head (the paper's schedule). With
residual.validation > 0 the residual is instead fitted first, alone, on the training episodes but a validation part,
and early-stopped on its KL (fit_residual); frozen at its selected weights, it is then the model the actor-critic
trains in for calibrate.updates. A held-out part of the data measures KL(q(z_t|x_t) || p(z_t|history)) with and
without the residual. With calibrate.warm_start the policy starts from the sim policy's weights instead of fresh; with
calibrate.select the calibrated policy is shipped only if its imagined return in the corrected model, from the held-out
start states, beats the sim policy's (select_policy), and the sim policy is shipped otherwise. The output is a
'calibrate' checkpoint that resumes when the same calibration is run again on the same data.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import MODEL_KEYS, CheckpointError, has_checkpoint, load_agent, model_differences, read_manifest, save_checkpoint
from .config import Config, ConfigError, config_from_dict
from .datasets import DatasetError, load_target_dataset
from .envs import make_env
from .logger import Logger, Mean
from .replay import Replay
from .report import write_report
from .runtime import setup_torch, to_torch
from .targetdata import target_data_folder
from .trainer import Cadence, Evaluation, Trainer

EVAL_SEED = 20_000_000  # evaluation episodes are reset with EVAL_SEED + update (the finetunes' too: the same episodes)
#: manifest `extra` entries a calibrated or finetuned checkpoint carries over from its pretrained source
INHERITED_EXTRA = ("action_names", "control_hz", "env")


@torch.no_grad()
def replay_features(replay: Replay, encode, device: torch.device, chunk: int = 512) -> torch.Tensor:
    """encode(obs) of every stored step (obs: its image [+ vector] as tensors), in physical replay order (for `index`
    gathers): what a frozen encoder gives once per run (DRAW: posterior log-probs; Dreamer: embeddings)."""
    arrays = replay.arrays
    keys = [k for k in ("image", "vector") if k in arrays]
    return torch.cat([encode({k: torch.from_numpy(arrays[k][i:i + chunk]).to(device) for k in keys}).float()
                      for i in range(0, len(arrays["image"]), chunk)])


def windows(replay: Replay, length: int) -> np.ndarray:
    """Consecutive non-overlapping windows (n, length) of physical indices covering the stream in order."""
    n = len(replay) // length
    if n == 0:
        raise ValueError(f"held-out data has {len(replay)} steps, fewer than one window of {length}")
    phys = len(replay.arrays["image"])
    start = replay._logical_start()
    return (start + np.arange(n * length).reshape(n, length)) % phys


class HoldoutKL:
    """KL(q(z_t|x_t) || p(z_t|history)) on fixed held-out windows: kl(features, action, is_first, generator, **options)
    on the features `encode` gives, with the posterior samples drawn from a generator seeded `seed` every time."""

    def __init__(self, replay: Replay, encode, kl, device: torch.device, length: int, seed: int = 0):
        index = windows(replay, length)
        batch = replay.gather(index)
        self.feats = replay_features(replay, encode, device)[torch.from_numpy(index).to(device)]
        #: the windows' action, is_first, is_terminal [, vector] (B, T, ...)
        self.batch = to_torch({k: batch[k] for k in ("action", "is_first", "is_terminal", "vector") if k in batch}, device)
        self.kl, self.seed = kl, seed

    def __call__(self, **options: Any) -> float:
        gen = torch.Generator(device=self.feats.device).manual_seed(self.seed)
        return float(self.kl(self.feats, self.batch["action"], self.batch["is_first"], generator=gen, **options))


@torch.no_grad()
def imagined_return(agent, task, hold: HoldoutKL, horizon: int, seed: int) -> float:
    """The mean, over every held-out step, of the discounted return sum_{t=1..H} gamma^(t-1) c_0..c_(t-1) r_t that
    `task`'s actor collects in the corrected model from that step's corrected posterior state (r: the sim reward
    head, c: the continue head's mode, c_0 = 1 - is_terminal). Posterior samples and actions draw from RNGs seeded
    `seed`, the same for every task compared; the caller's RNG state is left as it was."""
    device = hold.feats.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        gen = torch.Generator(device=device).manual_seed(seed)
        z, _, _, _, raw = agent.filter_with_residual(hold.feats, hold.batch["action"], hold.batch["is_first"], generator=gen)
        start = agent._starts({"z": z, "sigma": agent.wm.draw.belief(raw)}, hold.batch)
        traj = task.imagine(agent.wm, start, agent.residual, horizon)
        reward = agent.wm.imagined_reward(traj).float()                                         # r_1 .. r_H
        _, weight = task.discounts(agent.wm, traj["z"], start["cont"])                          # steps 0 .. H
        return float((weight[:-1] * reward).sum(0).mean())


def select_policy(agent, sim_task, hold: HoldoutKL, horizon: int, seed: int) -> dict[str, Any]:
    """calibrate.select: keep the calibrated policy (agent.task) only if its imagined return (imagined_return, over
    `horizon` steps) beats the sim policy's (`sim_task`, the pretrained actor-critic) in the same corrected model from
    the same held-out starts; otherwise put the sim policy's weights into agent.task. No real reward is used."""
    returns = {"calibrated": imagined_return(agent, agent.task, hold, horizon, seed),
               "sim": imagined_return(agent, sim_task, hold, horizon, seed)}
    kept = "calibrated" if returns["calibrated"] > returns["sim"] else "sim"
    if kept == "sim":
        agent.task.load_state_dict(sim_task.state_dict())
    return {"kept": kept, "imagined_return": returns, "horizon": horizon, "starts": int(hold.feats.shape[0] * hold.feats.shape[1])}


class TargetRun:
    """What ReDRAW and the finetune baselines share around their update (`step(batch)`): the pretrained source, the
    target dataset and a frozen-encoder feature of every step, the budget, cadence and evaluation (config calibrate.*,
    one Trainer), batches, the held-out KL and the checkpoint's data and inherited entries.

    encoding = (encode, feature, kl): `encode(obs)` is cached for every step (batches carry it as `feature`), and the
    held-out KL is kl(features, action, is_first, generator, ...) on it (HoldoutKL)."""

    def __init__(self, config: Config, kind: str, agent, src: tuple[Path, dict[str, Any]], dataset, out: Path, device: torch.device,
                 counters: dict[str, int], encoding: tuple, eval_env: str | None, eval_perturb: str, eval_kwargs: dict[str, Any] | None,
                 progress: bool, save_every: int, desc: str | None = None):
        cal, length = config.calibrate, config.batch_length
        if len(dataset.train) < length:
            raise DatasetError(f"{dataset.path}: the training part has {len(dataset.train)} steps, fewer than one sequence of "
                               f"batch_length={length}; record more data or lower batch_length")
        self.config, self.kind, self.agent, self.dataset, self.out, self.device = config, kind, agent, dataset, out, device
        self.src_dir, self.src_manifest = src
        self.eval_env = {"id": eval_env, "perturb": eval_perturb}
        env = make_env(eval_env, eval_perturb, **(eval_kwargs or {})) if eval_env else None
        self.trainer = Trainer(out, kind=kind, total=cal.updates, counters=counters, counter="updates", desc=desc,
                               cadence=Cadence(cal.log_every, cal.eval_every, save_every), agent=agent, device=device,
                               evaluation=Evaluation(env, cal.eval_eps, EVAL_SEED), progress=progress)
        self.data_info = {"target": dataset.describe(), "pretrained": {"path": str(self.src_dir),
                                                                        "weights_sha256": self.src_manifest["files"]["weights.safetensors"]}}
        encode, self.feature, kl = encoding
        agent.wm.eval()
        self.cache = replay_features(dataset.train, encode, device)
        hold = dataset.holdout
        self.holdout = HoldoutKL(hold, encode, kl, device, length, seed=config.seed) if hold is not None and len(hold) >= length else None

    def batch(self, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """A training batch (B, T) of the `keys` the data has, and the cached feature of its steps."""
        train = self.dataset.train
        index = train.sample_indices(self.config.batch_size, self.config.batch_length)
        arrays = train.gather(index)
        batch = to_torch({k: arrays[k] for k in keys if k in arrays}, self.device)
        batch[self.feature] = self.cache[torch.from_numpy(index).to(self.device)]
        return batch

    def save(self, final: bool, rng: dict[str, Any] | None = None, **extra: Any) -> None:
        """The checkpoint: the source's preprocessing and INHERITED_EXTRA entries, the eval env and `extra`."""
        inherited = {k: v for k, v in self.src_manifest.get("extra", {}).items() if k in INHERITED_EXTRA}
        save_checkpoint(self.out / "checkpoint", self.agent, kind=self.kind, counters=self.trainer.counters,
                        metrics=self.trainer.checkpoint_metrics(), data=self.data_info, rng=rng,
                        preprocessing=self.src_manifest.get("preprocessing", {}), extra={**inherited, **extra, "eval_env": self.eval_env})


def fit_residual(agent, run: TargetRun, validation: HoldoutKL, config: Config, progress: bool) -> dict[str, Any]:
    """The residual alone, early-stopped: residual updates on the training batches, the validation KL every
    residual.check_every of them; after residual.patience checks without a new best, or calibrate.updates updates,
    the best weights (the residual as initialised, update 0, included) are put back. Scalars: <out>/residual."""
    r, total = config.residual, config.calibrate.updates
    shutil.rmtree(run.out / "residual", ignore_errors=True)   # a fit cut short before (nothing of it was saved) starts over
    logger = Logger(run.out / "residual", total=total, desc="residual (early-stopped)", unit="update", progress=progress)
    mean = Mean()

    def state() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in agent.residual.state_dict().items()}

    best = (validation(residual=True), 0, state())
    logger.write(0, {"residual/kl_validation": best[0]})
    update = 0
    try:
        while update < total:
            mean.add(agent.residual_step(run.batch(("action", "is_first"))))
            update += 1
            logger.advance()
            if update % r.check_every and update < total:
                continue
            kl = validation(residual=True)
            logger.write(update, {**mean.result(), "residual/kl_validation": kl})
            if kl < best[0]:
                best = (kl, update, state())
            elif (update - best[1]) // r.check_every >= r.patience:
                break
    finally:
        logger.close()
    agent.residual.load_state_dict(best[2])
    return {"selected_update": best[1], "updates": update, "kl_validation": best[0], "stopped_early": update < total}


def check_residual_config(config: Config) -> None:
    """Refuse (ConfigError) residual settings calibrate cannot use."""
    r = config.residual
    if r.out_init not in ("uniform", "zero"):
        raise ConfigError(f"residual.out_init must be 'uniform' or 'zero', found {r.out_init!r}")
    if not 0.0 <= r.validation < 1.0:
        raise ConfigError(f"residual.validation must be a fraction of the training episodes in [0, 1), found {r.validation}")
    if r.validation and (r.check_every < 1 or r.patience < 1):
        raise ConfigError(f"early stopping needs residual.check_every >= 1 and residual.patience >= 1, found {r.check_every} and {r.patience}")
    if config.calibrate.select and not config.calibrate.holdout > 0:
        raise ConfigError("calibrate.select compares the policies on held-out target episodes: set calibrate.holdout > 0, "
                          f"found {config.calibrate.holdout}")


def check_calibration_source(src_dir: Path, src_manifest: dict[str, Any], config: Config, out: str | Path | None) -> None:
    """Refuse (CheckpointError) a calibration that cannot run: a source that is not sim-pretrained, a config that
    changes the pretrained model, or an `out` (resumed) holding a calibration of other weights; and (ConfigError)
    residual settings it cannot use. `calibrate` checks it again; the CLI calls it before it converts any bag."""
    check_residual_config(config)
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
        # the stored config on today's defaults: a checkpoint made before a residual key existed ran with its default
        stored = config_from_dict(manifest["config"], manifest.get("presets", []))
        keys = [f"residual.{k}" for k in sorted(config.residual)] + ["calibrate.warm_start"]
        changed = [f"{k}: checkpoint {stored.get(k)!r}, now {config.get(k)!r}" for k in keys if stored.get(k) != config.get(k)]
        if changed:
            raise CheckpointError(f"{out} holds a calibration with other settings ({'; '.join(changed)}); resume with "
                                  "the same settings or use another --out folder")


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
    dataset = load_target_dataset(data, holdout=cal.holdout, seed=config.seed, validation=config.residual.validation, **agent_spec(agent))
    if resumed and manifest["data"].get("target", {}).get("sha256") != dataset.digest:
        raise CheckpointError(f"{out} was calibrated on a different dataset (sha256 {manifest['data'].get('target', {}).get('sha256')}), "
                              f"{data} has {dataset.digest}")
    if resumed and "replay" in manifest.get("rng", {}):
        dataset.train.set_rng_state(manifest["rng"]["replay"])
    if config.compile:
        agent.wm.draw.compile_step()
    run = TargetRun(config, "calibrate", agent, (src_dir, src_manifest), dataset, out, device, counters,
                    (agent.wm.posterior_logits, "post_logit", agent.prior_kl), eval_env, eval_perturb, eval_kwargs, progress,
                    save_every=cal.save_every)
    holdout = run.holdout
    if cal.select and holdout is None:
        raise DatasetError(f"{data}: calibrate.select needs held-out episodes of at least batch_length={config.batch_length} steps, "
                           f"the held-out part has {len(dataset.holdout) if dataset.holdout is not None else 0}; raise calibrate.holdout "
                           "or record more data")
    kl_sim = holdout(residual=False) if holdout is not None else None
    keys = ("action", "is_first", "is_terminal") + (("vector",) if agent.hist_dim else ())
    early = None   # the early-stopped residual's selection (residual.validation > 0), fitted before the actor-critic
    if config.residual.validation:
        early = manifest.get("extra", {}).get("residual_fit") if resumed else None
        if early is None:
            if dataset.validation is None or len(dataset.validation) < config.batch_length:
                have = len(dataset.validation) if dataset.validation is not None else 0
                raise DatasetError(f"{data}: the validation episodes hold {have} steps, fewer than one sequence of batch_length="
                                   f"{config.batch_length}; raise residual.validation or record more data")
            validation = HoldoutKL(dataset.validation, agent.wm.posterior_logits, agent.prior_kl, device, config.batch_length, seed=config.seed)
            early = fit_residual(agent, run, validation, config, progress)
            run.save(False, rng={"replay": dataset.train.rng_state()}, residual_fit=early)

    def holdout_metrics() -> dict[str, float]:
        if holdout is None:
            return {}
        kl = holdout(residual=True)
        return {"holdout/kl_sim": kl_sim, "holdout/kl_redraw": kl, "holdout/kl_reduction": 1.0 - kl / max(kl_sim, 1e-9)}

    extras = {"residual_fit": early} if early is not None else {}   # what the checkpoint and summary.json carry

    def select() -> None:
        """calibrate.select, once the budget is spent (again on a resumed run that trained further)."""
        done = manifest.get("extra", {}).get("policy_selection") if resumed else None
        if done is None or done.get("updates") != counters["updates"]:
            sim_task = load_agent(src_dir, device, optimizers=False)[0].task
            done = {**select_policy(agent, sim_task, holdout, agent.task.config.imag_horizon, config.seed), "updates": counters["updates"]}
        extras["policy_selection"] = done

    run.trainer.run(lambda: agent.calibrate_step(run.batch(keys), fit_residual=early is None), log=holdout_metrics,
                    save=lambda final: run.save(final, rng={"replay": dataset.train.rng_state()}, **extras),
                    last=select if cal.select else None)
    length = config.batch_length
    index = np.random.default_rng(1234).integers(0, len(dataset.train) - length + 1, 4)[:, None] + np.arange(length)
    report = write_report(agent, to_torch(dataset.train.gather(index), device), out / "report.png", context=min(5, length - 1),
                          title="ReDRAW vs the sim model on target data: context frames left of the red line, then actions only")
    return run.trainer.finish(holdout=holdout_metrics(), dataset=dataset.describe(), report=report, **extras)


def agent_spec(agent) -> dict[str, Any]:
    """What a target dataset must fit: the agent's image shape, action and vector dims."""
    return {"image_shape": agent.image_shape, "action_dim": agent.action_dim, "vector_dim": agent.vector_dim}
