"""The one evaluation path of every method (pretrained, calibrated, finetuned; DRAW or Dreamer):

    metrics = evaluate_agent(agent, env, episodes=10, seed=0, device=torch.device("cpu"))

Episode i is reset with seed + i and rolled with actions sampled from the policy (METHOD.md 5: the paper's
evaluation samples), the recurrent state of Dreamer agents reset at every episode start. The metrics are those
of `loops.run_episodes` (return_mean/std/min/max, returns, length_mean, info_*_mean) and, for envs that put a
per-episode summary in the final step's `info["episode"]` (redraw_sim's Duckietown envs), `episode_info` (that
summary per episode) and, when it holds the lane metrics, `lane` (`lane_metrics`: the paper's Duckiebot columns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from .collectors import PolicyRunner

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
    from .loops import run_episodes

    was_training = agent.training
    agent.eval()
    runner = PolicyRunner(agent, device, sample=sample)
    recorder = EpisodeInfoRecorder(env)
    per_episode = []
    try:
        for i in range(episodes):
            runner.reset()
            metrics, _ = run_episodes(recorder, runner, 1, seed + i)
            per_episode.append(metrics)
    finally:
        agent.train(was_training)
    returns = [m["returns"][0] for m in per_episode]
    out: dict[str, Any] = {
        "episodes": episodes,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "return_min": float(np.min(returns)),
        "return_max": float(np.max(returns)),
        "length_mean": float(np.mean([m["length_mean"] for m in per_episode])),
        "returns": [float(r) for r in returns],
    }
    for key in sorted({k for m in per_episode for k in m if k.startswith("info_")}):
        out[key] = float(np.mean([m[key] for m in per_episode if key in m]))
    infos = recorder.episodes
    if infos and all(ep is not None for ep in infos):
        out["episode_info"] = infos
        if all(all(k in ep for k in LANE_KEYS) for ep in infos):
            out["lane"] = lane_metrics(infos)
    return out
