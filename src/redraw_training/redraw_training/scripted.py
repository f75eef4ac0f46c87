"""Scripted exploration drivers for `pretrain --explore scripted` (same interface as redraw_sim.drivers:
`input`, `reset(seed)`, `act(obs_or_state) -> action`).

`scripted_driver(env, seed)` asks the env's package: envs with a lane state (redraw_sim's Duckietown envs) get
redraw_sim's ExploreDriver (noisy lane keeping with drifts, stops and reverses); the synthetic PointGoal env of this
package gets `WaypointExplorer` (reads the true position); any other env gets `PersistentExplorer` (reads nothing).
`driver_input(env, driver, obs)` gives a driver what its `input` asks for.
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


class WaypointExplorer:
    """Reward-free exploration of a point robot that knows its position (PointGoal's `position()`): draw a waypoint
    uniformly in the bounds, drive towards it at a random speed with a little noise until it is reached or a
    timeout passes, then draw the next one. Covers the whole arena instead of sticking to walls."""

    input = "position"

    def __init__(self, bounds: tuple[float, float] = (-1.0, 1.0), seed: int | None = None, speed: tuple[float, float] = (0.5, 1.0),
                 reach: float = 0.1, timeout: int = 25, noise: float = 0.15, gain: float = 5.0):
        self.low, self.high = float(bounds[0]), float(bounds[1])
        self.speed, self.reach, self.timeout, self.noise, self.gain = speed, reach, timeout, noise, gain
        self.rng = np.random.default_rng(seed)
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.target: np.ndarray | None = None
        self.left = 0
        self.max_speed = 1.0

    def act(self, position: Any) -> np.ndarray:
        pos = np.asarray(position, np.float64).reshape(2)
        if self.target is None or self.left <= 0 or np.linalg.norm(self.target - pos) < self.reach:
            self.target = self.rng.uniform(self.low, self.high, 2)
            self.left = self.timeout
            self.max_speed = float(self.rng.uniform(*self.speed))
        self.left -= 1
        command = np.clip(self.gain * (self.target - pos), -self.max_speed, self.max_speed)
        return np.clip(command + self.noise * self.rng.standard_normal(2), -1.0, 1.0).astype(np.float32)


def scripted_driver(env, seed: int | None = None):
    """The env package's exploration driver for `env` (see the module docstring)."""
    if hasattr(env.unwrapped, "lane_state"):
        from redraw_sim.collect import make_driver

        return make_driver("explore", env, seed=seed)
    bounds = getattr(env.unwrapped, "position_bounds", None)
    if hasattr(env.unwrapped, "position") and bounds is not None and int(np.prod(env.action_space.shape)) == 2:
        return WaypointExplorer(tuple(bounds), seed=seed)
    return PersistentExplorer(int(np.prod(env.action_space.shape)), seed=seed)


def driver_input(env, driver, obs: Any) -> Any:
    """What `driver.act` reads: the lane state ('state'), the true position ('position') or the observation."""
    kind = getattr(driver, "input", "none")
    if kind == "state":
        return env.unwrapped.lane_state()
    if kind == "position":
        return env.unwrapped.position()
    return obs


class DriverActor:
    """The env's scripted driver (`scripted_driver`) as an actor of rollout.run_episodes: obs -> what the driver's
    `input` asks for -> action; episode k of a run starts the driver afresh with seed + k."""

    def __init__(self, env, seed: int):
        self.env, self.seed, self.episodes = env, seed, 0
        self.driver = scripted_driver(env, seed)

    def reset(self) -> None:
        self.driver.reset(self.seed + self.episodes)
        self.episodes += 1

    def __call__(self, obs: Any) -> np.ndarray:
        return self.driver.act(driver_input(self.env, self.driver, obs))
