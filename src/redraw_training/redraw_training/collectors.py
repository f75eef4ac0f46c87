"""Who acts during online pretraining (config `explore`), and how much of the state space the data covers.

    collector = Collector(config.explore, agent, env, device, rng, seed)
    action = collector.act(obs, prefill)    # random during prefill, then task / exploration policy / scripted driver
    collector.episode_end()                 # resets recurrent policy state and scripted drivers
    collector.summary()                     # steps per source and the coverage of the data (when measurable)

Coverage needs the env to expose its true position: `env.unwrapped.position()` -> (x, y) and
`env.unwrapped.position_bounds` = (low, high) (the synthetic PointGoal env does). It is the fraction of the cells
of a `cells` x `cells` grid over the bounds that the recorded positions visit, next to the normalised entropy of the
visit histogram (1 = uniform over all cells).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .rollout import PolicyRunner
from .scripted import driver_input, scripted_driver

COVERAGE_CELLS = 10


def coverage(positions: np.ndarray, low: float, high: float, cells: int = COVERAGE_CELLS) -> dict[str, float]:
    """Fraction of grid cells visited and the normalised entropy of the visits, for (N, 2) positions."""
    positions = np.asarray(positions, np.float64).reshape(-1, 2)
    if len(positions) == 0:
        return {"coverage": 0.0, "visit_entropy": 0.0, "positions": 0}
    idx = np.clip(((positions - low) / (high - low) * cells).astype(int), 0, cells - 1)
    counts = np.bincount(idx[:, 0] * cells + idx[:, 1], minlength=cells * cells).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return {"coverage": float((counts > 0).mean()), "visit_entropy": float(-(p * np.log(p)).sum() / np.log(cells * cells)),
            "positions": int(len(positions))}


def position_of(env) -> np.ndarray | None:
    fn = getattr(env.unwrapped, "position", None)
    return None if fn is None else np.asarray(fn(), np.float64)


class Collector:
    def __init__(self, explore: str, agent, env, device: torch.device, rng: np.random.Generator, seed: int = 0):
        self.explore, self.env, self.rng = explore, env, rng
        self.action_dim = int(np.prod(env.action_space.shape))
        self.driver = None
        if explore == "scripted":
            self.driver = scripted_driver(env, seed)
            self.runner = None
        else:
            self.runner = PolicyRunner(agent, device, behavior="expl" if explore == "plan2explore" else "task")
        self.steps = {"prefill": 0, explore: 0}
        self.positions: dict[str, list[np.ndarray]] = {"prefill": [], explore: []}
        bounds = getattr(env.unwrapped, "position_bounds", None)
        self.bounds = tuple(float(b) for b in bounds) if bounds is not None else None

    def act(self, obs: dict[str, np.ndarray], prefill: bool) -> np.ndarray:
        source = "prefill" if prefill else self.explore
        self.steps[source] += 1
        if self.bounds is not None:
            pos = position_of(self.env)
            if pos is not None:
                self.positions[source].append(pos)
        if prefill:
            return self.rng.uniform(-1, 1, self.action_dim).astype(np.float32)
        if self.driver is not None:
            return np.asarray(self.driver.act(driver_input(self.env, self.driver, obs)), np.float32)
        return self.runner(obs)

    def episode_end(self) -> None:
        if self.runner is not None:
            self.runner.reset()
        if self.driver is not None:
            self.driver.reset()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"explore": self.explore, "steps": dict(self.steps)}
        if self.bounds is not None:
            for source, pos in self.positions.items():
                if pos:
                    out[f"coverage_{source}"] = coverage(np.stack(pos), *self.bounds)
        return out
