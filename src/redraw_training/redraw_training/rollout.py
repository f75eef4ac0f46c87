"""Acting in an env: the one place that turns observations into actions and steps into episodes.

    runner = PolicyRunner(agent, device)                 # obs dict (numpy) -> action, for DRAW and Dreamer agents
    metrics, episodes = run_episodes(env, runner, 10, seed=0, keep=True)
    stepper = EnvStepper(env, action_dim, seed)          # one step at a time (online pretraining)
    collect(env_id, "data/x", episodes=20)               # episodes of a policy -> a dataset folder with dataset.json

Episodes follow the DreamerV3 row convention (row t: the observation t, the reward that came with it, the action
taken after it; the last row's action is zeros) and are saved with redraw_common.episodes. Episode i of
`run_episodes` is reset with seed + i; an actor with a `reset()` method (a PolicyRunner: a Dreamer agent's
recurrent state) is reset at every episode start. Actions are clipped to [-1, 1] before the env sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from redraw_common.episodes import make_flags, save_episode
from redraw_common.files import DATASET_JSON, write_json

from .agents import is_recurrent

Actor = Callable[[dict[str, np.ndarray]], np.ndarray]


def obs_to_torch(obs: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """One env observation -> a batch of one: image uint8 (1, H, W, C) [, vector float32 (1, D)]."""
    out = {"image": torch.from_numpy(np.ascontiguousarray(obs["image"]))[None].to(device)}
    if "vector" in obs:
        out["vector"] = torch.from_numpy(np.asarray(obs["vector"], np.float32))[None].to(device)
    return out


class PolicyRunner:
    """obs dict (numpy) -> action (numpy) for any agent; keeps the recurrent state of Dreamer agents (reset())."""

    def __init__(self, agent, device: torch.device, sample: bool = True, behavior: str = "task"):
        self.agent, self.device, self.sample, self.behavior = agent, device, sample, behavior
        self.recurrent = is_recurrent(agent)
        self.state = None

    def reset(self) -> None:
        self.state = None

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        t = obs_to_torch(obs, self.device)
        if self.recurrent:
            action, self.state = self.agent.policy_step(t, self.state, self.sample, behavior=self.behavior)
        elif self.behavior == "expl":
            action = self.agent.explore_policy(t, sample=self.sample)
        else:
            action = self.agent.policy(t, sample=self.sample)
        return action[0].float().cpu().numpy()


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


def clip_action(action, action_dim: int) -> np.ndarray:
    return np.clip(np.asarray(action, np.float32).reshape(action_dim), -1.0, 1.0)


class EnvStepper:
    """Steps one env an action at a time, resetting it (seed, seed+1, ...) when an episode ends; `step` returns
    (episode, final info) when it finished one, else None. `obs` is the observation the next action answers."""

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
        action = clip_action(action, self.action_dim)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.builder.step(action, obs, reward)
        self.obs = obs
        if terminated or truncated:
            ep = self.builder.finish(bool(terminated))
            self.episode_index += 1
            self.reset()
            return ep, info
        return None


def run_episodes(env, act: Actor, episodes: int, seed: int, keep: bool = False,
                 transitions: int | None = None) -> tuple[dict[str, Any], list[dict[str, np.ndarray]]]:
    """Roll `act` for `episodes` episodes, or with `transitions` for as many as it takes to make that many (reset
    seeds seed, seed+1, ...). Returns metrics (episodes, return_mean/std/min/max, returns, length_mean,
    info_<key>_mean of the final steps' numeric infos) and, with keep, the episodes."""
    action_dim = env.action_space.shape[0]
    reset_actor = getattr(act, "reset", None)
    returns, lengths, infos, kept = [], [], [], []
    while len(returns) < episodes if transitions is None else sum(lengths) < transitions:
        obs, _ = env.reset(seed=seed + len(returns))
        if reset_actor is not None:
            reset_actor()
        builder = EpisodeBuilder(obs, action_dim) if keep else None
        total, steps = 0.0, 0
        while True:
            action = clip_action(act(obs), action_dim)
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
        "episodes": len(returns),
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


class NoisyActor:
    """An actor's action plus Gaussian noise of std `noise` per dimension, clipped to [-1, 1] (so that what is
    recorded is what the env executes); reset with the actor."""

    def __init__(self, actor: PolicyRunner, noise: float, rng: np.random.Generator):
        self.actor, self.noise, self.rng = actor, noise, rng

    def reset(self) -> None:
        self.actor.reset()

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        action = self.actor(obs)
        return np.clip(action + self.noise * self.rng.standard_normal(action.shape), -1.0, 1.0)


def make_actor(env, policy: str, seed: int, device: str = "cpu", action_noise: float = 0.0) -> Actor:
    """The actor of `policy` in `env`: 'random' (uniform in [-1, 1]), 'scripted' (the env package's exploration driver,
    scripted.DriverActor) or a checkpoint whose policy acts (sampled actions, plus Gaussian noise of std
    `action_noise`); seeded by `seed` (a checkpoint's policy samples from torch's RNG, which this seeds)."""
    rng = np.random.default_rng(seed)
    if policy == "random":
        action_dim = env.action_space.shape[0]
        return lambda obs: rng.uniform(-1, 1, action_dim)
    if policy == "scripted":
        from .scripted import DriverActor

        return DriverActor(env, seed)
    from .checkpoint import load_agent

    agent, _, _ = load_agent(policy, device, optimizers=False)
    agent.eval()
    torch.manual_seed(seed)
    act = PolicyRunner(agent, torch.device(device))
    return NoisyActor(act, action_noise, rng) if action_noise else act


def save_episodes(folder: Path, episodes: list[dict[str, np.ndarray]], keep_reward: bool = True) -> list[int]:
    """Write episodes as folder/ep_000000.npz, ... (without their rewards unless keep_reward); returns their transitions."""
    for i, ep in enumerate(episodes):
        save_episode(folder / f"ep_{i:06d}.npz", ep if keep_reward else {k: v for k, v in ep.items() if k != "reward"})
    return [len(e["image"]) - 1 for e in episodes]


def collect(env_id: str, out: str | Path, episodes: int, policy: str = "random", perturb: str = "", seed: int = 0,
            env_kwargs: dict[str, Any] | None = None, keep_reward: bool = True, device: str = "cpu",
            action_noise: float = 0.0) -> dict[str, Any]:
    """Write `episodes` episodes of `policy` (make_actor: 'random', 'scripted' or a checkpoint path) in env_id to the
    folder `out`, with dataset.json."""
    from .envs import make_env

    env = make_env(env_id, perturb, **(env_kwargs or {}))
    metrics, eps = run_episodes(env, make_actor(env, policy, seed, device, action_noise), episodes, seed, keep=True)
    out = Path(out)
    lengths = save_episodes(out, eps, keep_reward)
    settings = env.unwrapped.describe() if hasattr(env.unwrapped, "describe") else {"perturb": perturb, **(env_kwargs or {})}
    metrics.update({"out": str(out), "env": env_id, "perturb": perturb, "policy": policy, "seed": seed,
                    "steps": int(sum(len(e["image"]) for e in eps)), "transitions": int(sum(lengths)), "episode_lengths": lengths,
                    "reward_free": not keep_reward, "env_settings": settings})
    write_json(out / DATASET_JSON, metrics)
    return metrics
