"""Gymnasium env: Duckietown lane following from the robot camera, 10 Hz control, perturbable dynamics.

    env = gymnasium.make("redraw/DuckietownLoop-v0", map_name="loop_empty", perturb="trim:0.1", obs_mode="lane_mask")

Observation: Dict(image = redraw_common.preprocessing.preprocess(camera frame)) - the lane mask (64x64x2) by
default, RGB (64x64x3) with obs_mode="rgb"; the frame is the simulator camera at camera_width x
camera_height (160x120 by default: 1.9x the env throughput of 320x240 and 3.6x that of 640x480, while its
64x64 lane masks differ from a 640x480 camera's by about 1 uint8 level on average, as much as a JPEG q90
round trip changes them; bench/bench_sim.py measures both).
Observation "vector" (with velocity_obs=True, the default): the robot's measured (forward speed m/s, yaw rate
rad/s) after the last control step, as wheel-encoder odometry reports it on a real Duckiebot
(redraw_common.topics.ODOM_VELOCITY). A single frame does not show how fast the robot moves, and the
progress reward depends on it, so a model without a recurrent state needs it in its observation (the
paper's Duckiebot config encodes `yaw_and_forward_vel` the same way, ../shared/docs/METHOD.md section 8.2).
With action_history=k > 0 the vector goes on with the last k actions sent, newest first (zeros after a reset):
[forward m/s, yaw rate rad/s, forward_{t-1}, turn_{t-1}, ..., forward_{t-k}, turn_{t-k}]. The simulated motors
act on a command 0.15 s late and then accelerate, so the velocity alone does not say what the robot is about to
do; a model without a recurrent state needs the commands still in flight to steer through a curve
(redraw_common.observation holds this layout for the bag converter and the policy node).
Action: (forward, turn) in [-1, 1]^2 -> redraw_common.kinematics.action_to_wheels -> wheel commands, held
for `sim_hz / control_hz` simulator steps (3 at 10 Hz). Reward and metrics: duckietown_sim.LaneSim.
Episodes end when the robot leaves its lane (terminated) or after `time_limit` steps (truncated); the
final step's info holds `episode` (dense reward per step, centre offset cm, laps, lap times, distance...).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from redraw_common.kinematics import KinematicsConfig, action_to_wheels
from redraw_common.observation import ActionHistory, compose_vector, vector_dim
from redraw_common.preprocessing import PreprocessConfig, preprocess

from .duckietown_sim import SIM_HZ, LaneSim, RewardConfig, StartConfig


def _config(cls, value, name):
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        try:
            return cls.from_dict(value) if hasattr(cls, "from_dict") else cls(**value)
        except TypeError as exc:
            raise ValueError(f"bad {name} settings {value!r}: {exc}") from None
    raise ValueError(f"{name} must be a {cls.__name__} or a dict, found {type(value).__name__}")


class DuckietownLaneEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        map_name: str = "loop_empty",
        perturb: str = "",
        obs_mode: str = "lane_mask",
        obs_size: int = 64,
        preprocess_config: PreprocessConfig | dict | None = None,
        kinematics: KinematicsConfig | dict | None = None,
        camera_width: int = 160,
        camera_height: int = 120,
        control_hz: float = 10.0,
        time_limit: int = 1000,
        domain_rand: bool = False,
        reward: RewardConfig | dict | None = None,
        start: StartConfig | dict | None = None,
        seed: int | None = None,
        render_mode: str | None = None,
        velocity_obs: bool = True,
        action_history: int = 0,
    ):
        if preprocess_config is None:
            preprocess_config = PreprocessConfig(mode=obs_mode, height=obs_size, width=obs_size)
        self.preprocess_config = _config(PreprocessConfig, preprocess_config, "preprocess_config")
        self.kinematics_config = _config(KinematicsConfig, kinematics, "kinematics")
        substeps = SIM_HZ / float(control_hz)
        if control_hz <= 0 or abs(substeps - round(substeps)) > 1e-9:
            raise ValueError(f"control_hz must divide the simulator's {SIM_HZ:g} Hz (30, 15, 10, 6, 5...), found {control_hz}")
        self.substeps = int(round(substeps))
        self.control_hz = float(control_hz)
        if not isinstance(time_limit, int) or time_limit < 1:
            raise ValueError(f"time_limit must be a positive number of steps, found {time_limit!r}")
        self.time_limit = time_limit
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', found {render_mode!r}")
        self.render_mode = render_mode
        self.lane = LaneSim(
            map_name, perturb, camera_width, camera_height, domain_rand,
            reward=_config(RewardConfig, reward, "reward"), start=_config(StartConfig, start, "start"), seed=seed,
        )
        obs_spaces = {"image": spaces.Box(0, 255, self.preprocess_config.shape, dtype=np.uint8)}
        self.velocity_obs = bool(velocity_obs)
        if isinstance(action_history, bool) or not isinstance(action_history, int) or action_history < 0:
            raise ValueError(f"action_history must be a number of past actions >= 0, found {action_history!r}")
        if action_history and not self.velocity_obs:
            raise ValueError("action_history extends the velocity vector: it needs velocity_obs=True")
        self.history = ActionHistory(action_history)
        if self.velocity_obs:
            obs_spaces["vector"] = spaces.Box(-np.inf, np.inf, (vector_dim(action_history),), dtype=np.float32)
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.frame: np.ndarray | None = None     # the camera frame behind the last observation
        self._steps = 0

    # gymnasium API -----------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """options: optional start pose {"s": m along the lane, "offset": m (+ = left), "heading": rad (+ = left)}."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"s", "offset", "heading"})
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; expected a subset of ['heading', 'offset', 's']")
        # a seed restarts the start-pose stream; without one the stream continues (seeded by the constructor)
        lane_seed = int(self.np_random.integers(2**31)) if seed is not None else None
        self.lane.reset(seed=lane_seed, **options)
        self.history.reset()
        self._steps = 0
        info = self.lane.step_info()
        info["episode"] = None
        return self._observe(), info

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            raise ValueError(f"action must be 2 finite numbers (forward, turn) in [-1, 1], found {action.tolist()}")
        forward, turn = np.clip(action, -1.0, 1.0)
        wheels = action_to_wheels(float(forward), float(turn), self.kinematics_config)
        reward, terminated, info = self.lane.step(wheels.left, wheels.right, self.substeps)
        self.history.push((forward, turn))
        self._steps += 1
        truncated = not terminated and self._steps >= self.time_limit
        info["wheels"] = (wheels.left, wheels.right)
        info["episode"] = None
        if terminated or truncated:
            info["episode"] = self.lane.episode_metrics(end=None if terminated else "time_limit")
        return self._observe(), float(reward), bool(terminated), bool(truncated), info

    def render(self):
        return None if self.frame is None else self.frame.copy()

    def close(self):
        pass

    # helpers -----------------------------------------------------------------------------------------------
    def _observe(self) -> dict[str, np.ndarray]:
        self.frame = self.lane.render()
        obs = {"image": preprocess(self.frame, self.preprocess_config)}
        if self.velocity_obs:
            obs["vector"] = compose_vector(self.lane.sim.velocities(), self.history)
        return obs

    def lane_state(self) -> dict[str, float]:
        """Ground-truth lane pose for state-based drivers (the expert P-controller): offset m, heading rad."""
        return self.lane.lane_state()

    @property
    def perturb(self) -> str:
        return self.lane.perturb

    def describe(self) -> dict[str, Any]:
        """Settings worth recording next to a dataset made with this env."""
        return {
            "map": self.lane.map_name,
            "perturb": self.lane.perturb,
            "control_hz": self.control_hz,
            "substeps": self.substeps,
            "camera": [self.lane.sim.camera_width, self.lane.sim.camera_height],
            "time_limit": self.time_limit,
            "preprocess": self.preprocess_config.to_dict(),
            "velocity_obs": self.velocity_obs,
            "action_history": self.history.length,
            "kinematics": self.kinematics_config.to_dict(),
            "reward": asdict(self.lane.reward_config),
        }
