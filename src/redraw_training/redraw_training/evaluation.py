"""The one evaluation path of every method (pretrained, calibrated, finetuned; DRAW or Dreamer):

    metrics = evaluate_agent(agent, env, episodes=10, seed=0, device=torch.device("cpu"))

Episode i is reset with seed + i and rolled with actions sampled from the policy (METHOD.md 5: the paper's
evaluation samples), the recurrent state of Dreamer agents reset at every episode start. The metrics are those
of `loops.run_episodes` (return_mean/std/min/max, returns, length_mean, info_*_mean).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .collectors import PolicyRunner


def evaluate_agent(agent, env, episodes: int, seed: int, device: torch.device, sample: bool = True) -> dict[str, Any]:
    from .loops import run_episodes

    was_training = agent.training
    agent.eval()
    runner = PolicyRunner(agent, device, sample=sample)
    per_episode = []
    try:
        for i in range(episodes):
            runner.reset()
            metrics, _ = run_episodes(env, runner, 1, seed + i)
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
    return out
