"""The one evaluation path of every method (pretrained, calibrated, finetuned; DRAW or Dreamer):

    metrics = evaluate_agent(agent, env, episodes=10, seed=0, device=torch.device("cpu"))
    metrics = evaluate("runs/dt_redraw", "redraw/DuckietownLoop-v0", perturb="reversed")   # a checkpoint

Episode i is reset with seed + i and rolled with actions sampled from the policy (METHOD.md 5: the paper's
evaluation samples), the recurrent state of Dreamer agents reset at every episode start. The metrics are those
of `rollout.run_episodes` (return_mean/std/min/max, returns, length_mean, info_*_mean) and, for envs that put a
per-episode summary in the final step's `info["episode"]` (redraw_sim's Duckietown envs), `episode_info` (that
summary per episode) and, when it holds the lane metrics, `lane` (`lane_metrics`: the paper's Duckiebot columns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from .checkpoint import load_agent
from .envs import env_spec, make_env
from .rollout import PolicyRunner, run_episodes

#: the per-episode keys of redraw_sim's lane envs (duckietown_sim.LaneSim.episode_metrics) that `lane_metrics` reads
LANE_KEYS = ("length", "dense_reward", "centre_offset_cm", "laps", "lap_times_s")


class EpisodeInfoRecorder(gym.Wrapper):
    """Keeps the `info["episode"]` mapping of every finished episode (None for episodes that end without one)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.episodes: list[dict[str, Any] | None] = []

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            ep = info.get("episode") if isinstance(info, Mapping) else None
            self.episodes.append(_plain(ep) if isinstance(ep, Mapping) else None)
        return obs, reward, terminated, truncated, info


def _plain(value: Any) -> Any:
    """JSON-friendly copy: numpy scalars -> Python numbers, NaN -> None, tuples -> lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value if isinstance(value, str) or value is None else str(value)


def lane_metrics(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The paper's Duckiebot metrics of one evaluation (several episodes of one policy):

    dense_reward      reward per step, pooled over the episodes' steps (sum of dense_reward * length / steps)
    centre_offset_cm  mean distance from the lane centre per step, pooled the same way
    lap_time_s        mean time of the laps completed in all episodes (None when no lap was completed)
    laps              laps completed per episode (mean); laps_total their sum
    """
    missing = sorted({k for ep in episodes for k in LANE_KEYS if k not in ep})
    if not episodes or missing:
        raise ValueError(f"lane metrics need episode summaries with {list(LANE_KEYS)}; missing {missing or 'all (no episodes)'}")
    steps = np.asarray([max(int(ep["length"]), 1) for ep in episodes], np.float64)
    dense = np.asarray([ep["dense_reward"] for ep in episodes], np.float64)
    has_offset = np.asarray([ep["centre_offset_cm"] is not None for ep in episodes])
    offset = np.asarray([ep["centre_offset_cm"] or 0.0 for ep in episodes], np.float64)
    laps = np.asarray([ep["laps"] for ep in episodes], np.float64)
    lap_times = [float(t) for ep in episodes for t in (ep["lap_times_s"] or [])]
    out: dict[str, Any] = {
        "episodes": len(episodes),
        "steps": int(steps.sum()),
        "dense_reward": float((dense * steps).sum() / steps.sum()),
        "centre_offset_cm": float((offset * steps)[has_offset].sum() / steps[has_offset].sum()) if has_offset.any() else None,
        "lap_time_s": float(np.mean(lap_times)) if lap_times else None,
        "laps": float(laps.mean()),
        "laps_total": int(laps.sum()),
        "lap_times_s": lap_times,
    }
    for key in ("distance_m", "out_of_lane_events"):
        values = [ep[key] for ep in episodes if isinstance(ep.get(key), (int, float))]
        if values:
            out[key] = float(np.mean(values))
    return out


def evaluate_agent(agent, env, episodes: int, seed: int, device: torch.device, sample: bool = True) -> dict[str, Any]:
    was_training = agent.training
    agent.eval()
    recorder = EpisodeInfoRecorder(env)
    try:
        out, _ = run_episodes(recorder, PolicyRunner(agent, device, sample=sample), episodes, seed)
    finally:
        agent.train(was_training)
    infos = recorder.episodes
    if infos and all(ep is not None for ep in infos):
        out["episode_info"] = infos
        if all(all(k in ep for k in LANE_KEYS) for ep in infos):
            out["lane"] = lane_metrics(infos)
    return out


def evaluate(checkpoint: str | Path, env_id: str | None = None, perturb: str = "", episodes: int = 10, seed: int = 0,
             sample: bool = True, device: str = "cpu", env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Roll a checkpoint's policy in an env (by default the one it was trained in) and return the metrics. The sampled
    actions draw from torch's RNG seeded with `seed` (the caller's RNG state is left as it was), so the same call gives
    the same episodes in any process, whatever ran in it before."""
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
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        metrics = evaluate_agent(agent, env, episodes, seed, torch.device(device), sample=sample)
    env.close()
    metrics.update({"checkpoint": str(directory), "kind": manifest["kind"], "env": env_id, "perturb": perturb, "seed": seed,
                    "policy": "sample" if sample else "mean", "env_kwargs": kwargs})
    return metrics
