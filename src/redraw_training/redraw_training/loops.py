"""Training and evaluation loops.

    pretrain(config, out)                online: env -> replay (on disk) -> updates at config.run.train_ratio,
                                         periodic evaluation, checkpoints; resumes from out/checkpoint
    calibrate(config, pretrained, data, out)
                                         offline ReDRAW: frozen world model, cached target posteriors, one residual
                                         update + one actor-critic update (corrected imagination) per step
    evaluate(checkpoint, env_id, ...)    roll the policy in an env, metrics dict
    collect(env_id, out, policy, ...)    write episodes of a policy (random or a checkpoint's) to a folder

A run folder holds checkpoint/, replay/ (pretraining), tb/ (TensorBoard), scalars.jsonl, report.png/.json and
summary.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from redraw_common.episodes import make_flags, save_episode

from .agent import Agent
from .agents import build_agent
from .checkpoint import CheckpointError, load_agent, read_manifest, resolve, save_checkpoint
from .collectors import Collector
from .config import Config
from .datasets import DatasetError, load_target_dataset
from .envs import env_spec, make_env, preprocess_config_of
from .evaluation import evaluate_agent
from .logger import Logger, Mean
from .replay import Replay
from .report import write_report
from .runtime import setup_torch, to_torch

#: config sections that define the world model: a calibration may not change them
MODEL_KEYS = ("encoder", "decoder", "rssm", "reward_head", "cont_head")


def obs_to_torch(obs: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    out = {"image": torch.from_numpy(np.ascontiguousarray(obs["image"]))[None].to(device)}
    if "vector" in obs:
        out["vector"] = torch.from_numpy(np.asarray(obs["vector"], np.float32))[None].to(device)
    return out


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float) + "\n")
    tmp.replace(path)


# ----------------------------------------------------------------------------------------------------------
# Episodes


class EpisodeBuilder:
    """Collects one episode in the DreamerV3 row convention (row t: obs t, reward with it, action after it)."""

    def __init__(self, obs: dict[str, np.ndarray], action_dim: int):
        self.action_dim = action_dim
        self.images = [obs["image"]]
        self.vectors = [obs["vector"]] if "vector" in obs else None
        self.rewards = [0.0]
        self.actions: list[np.ndarray] = []

    def step(self, action: np.ndarray, obs: dict[str, np.ndarray], reward: float) -> None:
        self.actions.append(np.asarray(action, np.float32))
        self.images.append(obs["image"])
        if self.vectors is not None:
            self.vectors.append(obs["vector"])
        self.rewards.append(float(reward))

    def finish(self, terminal: bool) -> dict[str, np.ndarray]:
        length = len(self.images)
        ep = {
            "image": np.stack(self.images).astype(np.uint8),
            "action": np.stack(self.actions + [np.zeros(self.action_dim, np.float32)]).astype(np.float32),
            "reward": np.asarray(self.rewards, np.float32),
            **make_flags(length, terminal),
        }
        if self.vectors is not None:
            ep["vector"] = np.stack(self.vectors).astype(np.float32)
        return ep


class Driver:
    """Steps one env; returns finished episodes and their final info."""

    def __init__(self, env, action_dim: int, seed: int):
        self.env, self.action_dim, self.seed = env, action_dim, seed
        self.episode_index = 0
        self.builder: EpisodeBuilder | None = None
        self.obs: dict[str, np.ndarray] | None = None
        self.reset()

    def reset(self) -> None:
        self.obs, _ = self.env.reset(seed=self.seed + self.episode_index)
        self.builder = EpisodeBuilder(self.obs, self.action_dim)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], dict] | None:
        action = np.clip(np.asarray(action, np.float32).reshape(self.action_dim), -1.0, 1.0)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.builder.step(action, obs, reward)
        self.obs = obs
        if terminated or truncated:
            ep = self.builder.finish(bool(terminated))
            self.episode_index += 1
            self.reset()
            return ep, info
        return None


def run_episodes(env, act: Callable[[dict[str, np.ndarray]], np.ndarray], episodes: int, seed: int,
                 keep: bool = False) -> tuple[dict[str, Any], list[dict[str, np.ndarray]]]:
    """Roll `act` for `episodes` episodes (reset seeds seed, seed+1, ...). Returns metrics and (optionally) episodes."""
    action_dim = env.action_space.shape[0]
    returns, lengths, infos, kept = [], [], [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        builder = EpisodeBuilder(obs, action_dim) if keep else None
        total, steps = 0.0, 0
        while True:
            action = np.clip(np.asarray(act(obs), np.float32).reshape(action_dim), -1.0, 1.0)
            obs, reward, terminated, truncated, info = env.step(action)
            if builder is not None:
                builder.step(action, obs, reward)
            total += float(reward)
            steps += 1
            if terminated or truncated:
                break
        returns.append(total)
        lengths.append(steps)
        infos.append({k: float(v) for k, v in info.items() if isinstance(v, (int, float, bool, np.number))})
        if builder is not None:
            kept.append(builder.finish(bool(terminated)))
    metrics: dict[str, Any] = {
        "episodes": episodes,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "return_min": float(np.min(returns)),
        "return_max": float(np.max(returns)),
        "length_mean": float(np.mean(lengths)),
        "returns": [float(r) for r in returns],
    }
    for key in sorted({k for info in infos for k in info}):
        values = [info[key] for info in infos if key in info]
        metrics[f"info_{key}_mean"] = float(np.mean(values))
    return metrics, kept


def agent_actor(agent: Agent, device: torch.device, sample: bool = True) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        return agent.policy(obs_to_torch(obs, device), sample=sample)[0].cpu().numpy()

    return act


# ----------------------------------------------------------------------------------------------------------
# Online pretraining


def has_checkpoint(folder: str | Path) -> bool:
    try:
        resolve(folder)
        return True
    except CheckpointError:
        return False


def _model_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    diffs = []
    for section in MODEL_KEYS:
        for key in sorted(set(a.get(section, {})) | set(b.get(section, {}))):
            va, vb = a.get(section, {}).get(key), b.get(section, {}).get(key)
            if va != vb:
                diffs.append(f"{section}.{key}: checkpoint {va!r}, now {vb!r}")
    return diffs


def pretrain(config: Config, out: str | Path, progress: bool = True, resume: bool = True) -> dict[str, Any]:
    """Online pretraining of DRAW + the task actor-critic in config.env (a gymnasium id)."""
    device = setup_torch(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = make_env(config.env.id, config.env.perturb, **dict(config.env.kwargs))
    spec = env_spec(env)
    preprocessing = preprocess_config_of(env).to_dict()
    ckpt_dir = out / "checkpoint"
    run = config.run
    counters = {"env_steps": 0, "updates": 0, "episodes": 0}
    updates_due = 0.0
    resumed = False
    replay = Replay(run.replay_capacity, out / "replay", seed=config.seed)
    if resume and has_checkpoint(out):
        _, manifest = read_manifest(out)
        diffs = _model_differences(manifest["config"], config.to_dict())
        if diffs or manifest["kind"] != "pretrain":
            raise CheckpointError(f"{out} holds a {manifest['kind']} checkpoint of a different model ({'; '.join(diffs[:4])}); "
                                  "use another --out folder or the same settings to resume")
        with torch.device(device):
            agent, manifest, _ = load_agent(out, device, optimizers=True, restore_rng=True, overrides=_runtime_overrides(config))
        counters.update(manifest["counters"])
        updates_due = float(manifest.get("extra", {}).get("updates_due", 0.0))
        replay.load_directory()
        if "replay" in manifest.get("rng", {}):
            replay.set_rng_state(manifest["rng"]["replay"])
        resumed = True
    else:
        torch.manual_seed(config.seed)
        with torch.device(device):
            agent = build_agent(config, spec["image_shape"], spec["action_dim"], spec["vector_dim"])
        if any((out / "replay").glob("*.npz")):
            replay.load_directory()  # episodes of a run that crashed before its first checkpoint
    if config.compile:
        agent.compile()
    batch_size, length = config.batch_size, config.batch_length
    ratio = run.train_ratio / (batch_size * length)
    rng = np.random.default_rng(config.seed + counters["env_steps"])
    driver = Driver(env, spec["action_dim"], seed=config.seed * 100003 + counters["episodes"])
    collector = Collector(config.explore, agent, env, device, rng, seed=config.seed * 100003 + counters["episodes"])
    eval_env = make_env(config.env.id, config.env.perturb, **dict(config.env.kwargs))
    logger = Logger(out, total=run.steps, desc="pretrain", unit="env step", initial=counters["env_steps"], progress=progress)
    mean = Mean()
    last_eval: dict[str, Any] = {}
    started = time.time()

    def save(final: bool = False) -> None:
        save_checkpoint(ckpt_dir, agent, kind="pretrain", counters=counters, metrics={**logger.last, **{f"eval/{k}": v for k, v in last_eval.items() if k != "returns"}},
                        data={"replay": {"folder": str(out / "replay"), "episodes": replay.episodes, "steps": replay.steps_added,
                                          "sha256": replay.digest()}},
                        preprocessing=preprocessing, rng={"replay": replay.rng_state()},
                        extra={"updates_due": updates_due, "env": {"id": config.env.id, "perturb": config.env.perturb,
                               "kwargs": dict(config.env.kwargs)}, "action_names": _action_names(env, spec["action_dim"]),
                               "control_hz": _control_hz(env), "final": final, "collection": collector.summary()})

    def evaluate_now() -> None:
        nonlocal last_eval
        agent.eval()
        last_eval = evaluate_agent(agent, eval_env, run.eval_eps, seed=10_000_000 + counters["env_steps"], device=device)
        agent.train()
        logger.write(counters["env_steps"], {"eval/return": last_eval["return_mean"], "eval/return_std": last_eval["return_std"]})

    try:
        while counters["env_steps"] < run.steps:
            action = collector.act(driver.obs, prefill=counters["env_steps"] < run.prefill and not resumed)
            done = driver.step(action)
            counters["env_steps"] += 1
            logger.advance()
            if done is not None:
                collector.episode_end()
                ep, info = done
                replay.add_episode(ep)
                counters["episodes"] += 1
                mean.add({"train/episode_return": float(ep["reward"].sum()), "train/episode_length": len(ep["reward"])})
            if counters["env_steps"] >= run.prefill and len(replay) >= length:
                updates_due += ratio
                while updates_due >= 1.0:
                    batch = to_torch(replay.sample(batch_size, length), device)
                    mean.add(agent.train_step(batch))
                    counters["updates"] += 1
                    updates_due -= 1.0
            step = counters["env_steps"]
            if step % run.log_every == 0 or step == run.steps:
                metrics = mean.result()
                metrics.update({"run/updates": counters["updates"], "run/replay_steps": len(replay),
                                "run/env_steps_per_s": step / max(1e-9, time.time() - started)})
                logger.write(step, metrics)
            if run.eval_every and step % run.eval_every == 0 and step < run.steps:
                evaluate_now()
            if run.report_every and step % run.report_every == 0 and len(replay) >= length and hasattr(agent.wm, "draw"):
                _report(agent, replay, out / f"report_{step:08d}.png", device, length)
            if run.save_every and step % run.save_every == 0 and step < run.steps:
                save()
        if run.eval_eps:
            evaluate_now()
        save(final=True)
        report = _report(agent, replay, out / "report.png", device, length) if len(replay) >= length and hasattr(agent.wm, "draw") else {}
    finally:
        logger.close()
    summary = {"kind": "pretrain", "out": str(out), "counters": counters, "eval": last_eval, "report": report,
               "collection": collector.summary(), "last_metrics": logger.last, "seconds": time.time() - started}
    _write_json(out / "summary.json", summary)
    return summary


def _runtime_overrides(config: Config) -> dict[str, Any]:
    """Keys that may differ between a checkpoint and the run that resumes it."""
    return {"device": config.device, "threads": config.threads, "compile": config.compile, "run": config.run.to_dict()}


def _action_names(env, action_dim: int) -> list[str]:
    names = getattr(env.unwrapped, "action_names", None)
    if names and len(names) == action_dim:
        return [str(n) for n in names]
    return ["forward", "turn"] if action_dim == 2 else [f"a{i}" for i in range(action_dim)]


def _control_hz(env) -> float:
    hz = getattr(env.unwrapped, "control_hz", None) or env.metadata.get("render_fps") or 10.0
    return float(min(100.0, max(0.1, hz)))


def _report(agent: Agent, replay: Replay, path: Path, device: torch.device, length: int, count: int = 4) -> dict[str, Any]:
    state = replay.rng.bit_generator.state
    replay.rng = np.random.default_rng(1234)  # the same sequences every time, without touching the training RNG
    batch = to_torch(replay.sample(count, length), device)
    replay.rng.bit_generator.state = state
    agent.eval()
    numbers = write_report(agent, batch, path, context=min(5, length - 1))
    agent.train()
    return numbers


# ----------------------------------------------------------------------------------------------------------
# Offline calibration (ReDRAW)


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
    diffs = _model_differences(src_manifest["config"], config.to_dict())
    if diffs:
        raise CheckpointError(f"the calibration config changes the pretrained model ({'; '.join(diffs[:4])}); "
                              "calibrate with the checkpoint's model settings (omit those overrides)")
    if out is not None and has_checkpoint(out):
        _, manifest = read_manifest(out)
        if manifest["kind"] != "calibrate" or manifest["data"].get("pretrained", {}).get("weights_sha256") != src_manifest["files"]["weights.safetensors"]:
            raise CheckpointError(f"{out} holds a checkpoint that was not calibrated from {src_dir}; use another --out folder")


def calibrate(config: Config, pretrained: str | Path, data: str | Path, out: str | Path, eval_env: str | None = None,
              perturb: str = "", eval_kwargs: dict[str, Any] | None = None, progress: bool = True, resume: bool = True) -> dict[str, Any]:
    """ReDRAW on an offline target dataset against a pretrained checkpoint (METHOD.md 6.2-6.4)."""
    device = setup_torch(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cal = config.calibrate
    ckpt_dir = out / "checkpoint"
    src_dir, src_manifest = read_manifest(pretrained)
    check_calibration_source(src_dir, src_manifest, config, out if resume else None)
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
    env = make_env(eval_env, perturb, **(eval_kwargs or {})) if eval_env else None
    logger = Logger(out, total=cal.updates, desc="calibrate", unit="update", initial=counters["updates"], progress=progress)
    mean = Mean()
    last_eval: dict[str, Any] = {}
    data_info = {"target": dataset.describe(), "pretrained": {"path": str(src_dir), "weights_sha256": src_manifest["files"]["weights.safetensors"]}}
    started = time.time()

    def evaluate_now() -> None:
        nonlocal last_eval
        if env is None:
            return
        agent.eval()
        last_eval, _ = run_episodes(env, agent_actor(agent, device), cal.eval_eps, seed=20_000_000 + counters["updates"])
        logger.write(counters["updates"], {"eval/return": last_eval["return_mean"], "eval/return_std": last_eval["return_std"]})

    def holdout_metrics() -> dict[str, float]:
        if holdout is None:
            return {}
        kl = holdout(agent, residual=True)
        return {"holdout/kl_sim": kl_sim, "holdout/kl_redraw": kl, "holdout/kl_reduction": 1.0 - kl / max(kl_sim, 1e-9)}

    def save() -> None:
        save_checkpoint(ckpt_dir, agent, kind="calibrate", counters=counters,
                        metrics={**logger.last, **{f"eval/{k}": v for k, v in last_eval.items() if k != "returns"}},
                        data=data_info, preprocessing=src_manifest.get("preprocessing", {}), rng={"replay": dataset.train.rng_state()},
                        extra={**{k: v for k, v in src_manifest.get("extra", {}).items() if k in ("action_names", "control_hz", "env")},
                               "eval_env": {"id": eval_env, "perturb": perturb}})

    try:
        while counters["updates"] < cal.updates:
            index = dataset.train.sample_indices(batch_size, length)
            arrays = dataset.train.gather(index)
            batch = to_torch({k: arrays[k] for k in ("action", "is_first", "is_terminal") + (("vector",) if agent.hist_dim else ())}, device)
            batch["post_logit"] = cache[torch.from_numpy(index).to(device)]
            mean.add(agent.calibrate_step(batch))
            counters["updates"] += 1
            logger.advance()
            step = counters["updates"]
            if step % cal.log_every == 0 or step == cal.updates:
                logger.write(step, {**mean.result(), **holdout_metrics(), "run/updates_per_s": step / max(1e-9, time.time() - started)})
            if cal.eval_every and step % cal.eval_every == 0 and step < cal.updates:
                evaluate_now()
            if cal.save_every and step % cal.save_every == 0 and step < cal.updates:
                save()
        final = holdout_metrics()
        evaluate_now()
        save()
        report = {}
        if len(dataset.train) >= length:
            index = np.random.default_rng(1234).integers(0, len(dataset.train) - length + 1, 4)[:, None] + np.arange(length)
            batch = to_torch(dataset.train.gather(index), device)
            report = write_report(agent, batch, out / "report.png", context=min(5, length - 1),
                                  title="ReDRAW vs the sim model on target data: context frames left of the red line, then actions only")
    finally:
        logger.close()
    summary = {"kind": "calibrate", "out": str(out), "counters": counters, "holdout": final, "eval": last_eval,
               "dataset": dataset.describe(), "report": report, "last_metrics": logger.last, "seconds": time.time() - started}
    _write_json(out / "summary.json", summary)
    return summary


# ----------------------------------------------------------------------------------------------------------
# Evaluation and data collection


def evaluate(checkpoint: str | Path, env_id: str | None = None, perturb: str = "", episodes: int = 10, seed: int = 0,
             sample: bool = True, device: str = "cpu", env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Roll the checkpoint's policy (posterior of the frame -> z -> actor) in an env and return metrics."""
    agent, manifest, directory = load_agent(checkpoint, device, optimizers=False)
    agent.eval()
    env_info = manifest.get("extra", {}).get("env", {})
    env_id = env_id or env_info.get("id") or manifest["config"]["env"]["id"]
    kwargs = dict(env_info.get("kwargs", {}) if env_kwargs is None else env_kwargs)
    env = make_env(env_id, perturb, **kwargs)
    spec = env_spec(env)
    if tuple(spec["image_shape"]) != tuple(agent.image_shape) or spec["action_dim"] != agent.action_dim:
        raise ValueError(f"env {env_id} has images {spec['image_shape']} and {spec['action_dim']} action dims; the checkpoint expects "
                         f"{tuple(agent.image_shape)} and {agent.action_dim}")
    metrics = evaluate_agent(agent, env, episodes, seed, torch.device(device), sample=sample)
    metrics.update({"checkpoint": str(directory), "kind": manifest["kind"], "env": env_id, "perturb": perturb, "seed": seed,
                    "policy": "sample" if sample else "mean", "env_kwargs": kwargs})
    return metrics


def collect(env_id: str, out: str | Path, episodes: int, policy: str = "random", perturb: str = "", seed: int = 0,
            env_kwargs: dict[str, Any] | None = None, keep_reward: bool = True, device: str = "cpu",
            action_noise: float = 0.0) -> dict[str, Any]:
    """Write `episodes` episodes of `policy` ('random' or a checkpoint path) in env_id to the folder `out`."""
    env = make_env(env_id, perturb, **(env_kwargs or {}))
    rng = np.random.default_rng(seed)
    action_dim = env.action_space.shape[0]
    if policy == "random":
        def act(obs):
            return rng.uniform(-1, 1, action_dim)
    else:
        agent, _, _ = load_agent(policy, device, optimizers=False)
        agent.eval()
        base = agent_actor(agent, torch.device(device))

        def act(obs):
            a = base(obs)
            return a + action_noise * rng.standard_normal(action_dim) if action_noise else a
    metrics, eps = run_episodes(env, act, episodes, seed, keep=True)
    out = Path(out)
    for i, ep in enumerate(eps):
        if not keep_reward:
            ep.pop("reward")
        save_episode(out / f"ep_{i:06d}.npz", ep)
    metrics.update({"out": str(out), "env": env_id, "perturb": perturb, "policy": policy, "steps": int(sum(len(e["image"]) for e in eps))})
    return metrics
