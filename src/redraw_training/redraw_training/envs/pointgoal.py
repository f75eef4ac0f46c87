"""PointGoal: the small synthetic environment of redraw_training, for tests and quick experiments.

It is not a simulator of anything real. A point robot moves on the square [-1, 1]^2 (a grey floor; outside
is dark). The observation is a small RGB image (default 32x32; `size=64` for 64x64) from a camera that looks
down and follows the robot (`camera="follow"`, default: the robot is the red disc in the middle, the floor's
edges and the green goal disc move in view, 3 x 3 world units are visible), or from a fixed camera over the
whole arena (`camera="fixed"`). The follow camera makes the robot's position a large-scale image feature,
which small world models learn in a few hundred updates (the fixed camera's small disc takes several times
longer). Actions are 2-D velocity commands in [-1, 1]^2:

    p_{t+1} = clip(p_t + speed * (gain * s * a_t + drift), -1, 1)      s = -1 if reversed else +1

Reward (dense, in [0, 1]): r_t = 1 - |p_t - g| / max_dist, where max_dist is the largest possible distance
to the goal. The goal is fixed at the centre (`goal="center"`, default) or drawn at random per episode
(`goal="random"`). Episodes last `max_steps` steps (default 50) and are truncated, never terminal.

Dynamics shifts (`perturb`, "name[:value][,name[:value]...]", "" = nominal):
    reversed        a -> -a: the robot moves opposite to the command (zero-shot sim policies fail badly)
    gain:x          a -> x * a (0 < x <= 100)
    drift:x         constant velocity x (per unit of speed) along +x on top of the command (|x| <= 10)
(the syntax and its parser are every env's: redraw_common.perturb; "reversed:1" == "reversed", a name at most once)

`info` holds `distance`, `success` (distance < goal radius) and, at the end, `episode_return`,
`final_distance`. Registered as gymnasium id `redraw/PointGoal-v0` when `redraw_training.envs` is imported.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from redraw_common.perturb import PerturbSpec, parse_perturb
from redraw_common.preprocessing import PreprocessConfig

#: the synthetic env's dynamics shifts, in the project's one perturbation vocabulary (redraw_common.perturb)
PERTURBATIONS = {
    "reversed": PerturbSpec("a -> -a: the robot moves opposite to the command", 0.0, 1.0, lambda v: v in (0.0, 1.0), "0 or 1"),
    "gain": PerturbSpec("a -> x * a", 1.0, None, lambda v: 0.0 < v <= 100.0, "in (0, 100]"),
    "drift": PerturbSpec("constant velocity x (per unit of speed) along +x on top of the command", 0.0, None,
                         lambda v: abs(v) <= 10.0, "in [-10, 10]"),
}


class PointGoalEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    #: bounds of `position()` on both axes (for coverage measurements)
    position_bounds = (-1.0, 1.0)

    def __init__(self, perturb: str = "", size: int = 32, max_steps: int = 50, speed: float = 0.15, goal: str = "center",
                 camera: str = "follow", vector: bool = False, render_mode: str | None = None):
        if size not in (16, 32, 64, 128):
            raise ValueError(f"size must be 16, 32, 64 or 128, found {size!r}")
        if goal not in ("center", "random"):
            raise ValueError(f"goal must be 'center' or 'random', found {goal!r}")
        if camera not in ("follow", "fixed"):
            raise ValueError(f"camera must be 'follow' or 'fixed', found {camera!r}")
        if max_steps < 2:
            raise ValueError(f"max_steps must be >= 2, found {max_steps}")
        self.perturb = perturb
        shifts = parse_perturb(perturb, PERTURBATIONS)
        self.sign = -1.0 if shifts.get("reversed") else 1.0
        self.gain = shifts.get("gain", 1.0)
        self.drift = shifts.get("drift", 0.0)
        self.size, self.max_steps, self.speed, self.goal_mode, self.with_vector = size, max_steps, speed, goal, vector
        self.camera = camera
        self.render_mode = render_mode
        obs = {"image": spaces.Box(0, 255, (size, size, 3), np.uint8)}
        if vector:
            obs["vector"] = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.preprocess_config = PreprocessConfig(mode="rgb", height=size, width=size, horizon_crop=0.0)
        self.robot_radius, self.goal_radius = (0.15, 0.2) if camera == "follow" else (0.3, 0.15)
        # pixel centres relative to the camera centre (row 0 = top = +y)
        extent = 1.5 if camera == "follow" else 1.1
        coords = (np.arange(size) + 0.5) / size * 2 * extent - extent
        self._gx, self._gy = np.meshgrid(coords, -coords)
        self._pixel = 2 * extent / size
        self._colors = {"floor": 150.0, "outside": 60.0, "goal": np.array([40.0, 200.0, 60.0], np.float32),
                        "robot": np.array([230.0, 40.0, 40.0], np.float32)}
        self._pos = np.zeros(2)
        self._goal = np.zeros(2)
        self._vel = np.zeros(2)
        self._t = 0
        self._return = 0.0

    # ------------------------------------------------------------------------------------------------------

    def _disc(self, center: np.ndarray, radius: float) -> np.ndarray:
        d = np.sqrt((self._gx - center[0]) ** 2 + (self._gy - center[1]) ** 2)
        return np.clip((radius - d) / self._pixel + 0.5, 0.0, 1.0)[..., None]

    def _render(self) -> np.ndarray:
        cam = self._pos if self.camera == "follow" else np.zeros(2)
        wx, wy = self._gx + cam[0], self._gy + cam[1]
        # floor coverage of each pixel, anti-aliased at the arena edge
        cover = (np.clip((1.0 - np.abs(wx)) / self._pixel + 0.5, 0, 1) * np.clip((1.0 - np.abs(wy)) / self._pixel + 0.5, 0, 1))[..., None]
        c = self._colors
        img = np.repeat(c["outside"] + cover * (c["floor"] - c["outside"]), 3, -1).astype(np.float32)
        goal = self._disc(self._goal - cam, self.goal_radius)
        img = img * (1 - goal) + goal * c["goal"]
        robot = self._disc(self._pos - cam, self.robot_radius)
        img = img * (1 - robot) + robot * c["robot"]
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    def _obs(self) -> dict[str, np.ndarray]:
        obs = {"image": self._render()}
        if self.with_vector:
            obs["vector"] = (self._vel / self.speed).astype(np.float32)
        return obs

    def _distance(self) -> float:
        return float(np.linalg.norm(self._pos - self._goal))

    def _max_distance(self) -> float:
        corners = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], float)
        return float(np.max(np.linalg.norm(corners - self._goal, axis=1)))

    def reward(self) -> float:
        return 1.0 - self._distance() / self._max_distance()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self._goal = rng.uniform(-0.7, 0.7, 2) if self.goal_mode == "random" else np.zeros(2)
        while True:
            self._pos = rng.uniform(-0.9, 0.9, 2)
            if np.linalg.norm(self._pos - self._goal) > 0.4:
                break
        self._vel = np.zeros(2)
        self._t = 0
        self._return = 0.0
        return self._obs(), {"distance": self._distance(), "success": False}

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, found {a}")
        a = np.clip(a, -1.0, 1.0)
        move = self.speed * (self.gain * self.sign * a + np.array([self.drift, 0.0]))
        new = np.clip(self._pos + move, -1.0, 1.0)
        self._vel = new - self._pos
        self._pos = new
        self._t += 1
        reward = self.reward()
        self._return += reward
        truncated = self._t >= self.max_steps
        dist = self._distance()
        info: dict[str, Any] = {"distance": dist, "success": bool(dist < self.goal_radius)}
        if truncated:
            info.update(episode_return=self._return, final_distance=dist)
        return self._obs(), reward, False, truncated, info

    def render(self):
        return self._render()

    def position(self) -> np.ndarray:
        """The robot's true position (x, y) in [-1, 1]^2: not an observation, for measuring data coverage."""
        return self._pos.copy()


def register() -> None:
    if "redraw/PointGoal-v0" not in gym.registry:
        gym.register(id="redraw/PointGoal-v0", entry_point="redraw_training.envs.pointgoal:PointGoalEnv", disable_env_checker=True)
