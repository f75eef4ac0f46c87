"""Scripted exploration drivers for `pretrain --explore scripted` (same interface as redraw_sim.drivers:
`input`, `reset(seed)`, `act(obs_or_state) -> action`).

`scripted_driver(env, seed)` asks the env's package: envs with a lane state (redraw_sim's Duckietown envs) get
redraw_sim's ExploreDriver (noisy lane keeping with drifts, stops and reverses); every other env, including the
synthetic PointGoal env of this package, gets `PersistentExplorer`.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class PersistentExplorer:
    """Reward-free exploration for any Box([-1, 1]^A) env: hold a random direction at a random speed for a random
    number of steps (with a little Ornstein-Uhlenbeck noise), then draw a new one; sometimes stand still. On
    PointGoal this moves the robot in long straight runs across the arena (wider coverage than uniform random
    actions, which only jitter around the start)."""

    input = "none"

    def __init__(self, action_dim: int = 2, seed: int | None = None, hold: tuple[int, int] = (4, 20),
                 speed: tuple[float, float] = (0.5, 1.0), p_stop: float = 0.1, noise: float = 0.1, noise_tau: float = 3.0):
        if action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, found {action_dim}")
        if not 1 <= hold[0] <= hold[1]:
            raise ValueError(f"hold must be (min, max) steps with 1 <= min <= max, found {hold}")
        self.action_dim, self.hold, self.speed, self.p_stop = int(action_dim), hold, speed, p_stop
        self.noise_std, self.noise_tau = noise, noise_tau
        self.rng = np.random.default_rng(seed)
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.left = 0
        self.direction = np.zeros(self.action_dim)
        self.noise = np.zeros(self.action_dim)

    def _new_segment(self) -> None:
        self.left = int(self.rng.integers(self.hold[0], self.hold[1] + 1))
        if self.rng.uniform() < self.p_stop:
            self.direction = np.zeros(self.action_dim)
            return
        d = self.rng.standard_normal(self.action_dim)
        d /= max(np.linalg.norm(d), 1e-9)
        # scale so that the largest component reaches the drawn speed (full-speed runs along diagonals too)
        self.direction = d / np.abs(d).max() * self.rng.uniform(*self.speed)

    def act(self, obs_or_state: Any = None) -> np.ndarray:
        if self.left <= 0:
            self._new_segment()
        self.left -= 1
        a = np.exp(-1.0 / self.noise_tau)
        self.noise = a * self.noise + self.noise_std * np.sqrt(1 - a * a) * self.rng.standard_normal(self.action_dim)
        return np.clip(self.direction + self.noise, -1.0, 1.0).astype(np.float32)


def scripted_driver(env, seed: int | None = None):
    """The env package's exploration driver for `env` (see the module docstring)."""
    if hasattr(env.unwrapped, "lane_state"):
        from redraw_sim.collect import make_driver

        return make_driver("explore", env, seed=seed)
    return PersistentExplorer(int(np.prod(env.action_space.shape)), seed=seed)
