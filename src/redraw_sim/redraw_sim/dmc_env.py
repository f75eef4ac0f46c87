"""DeepMind Control tasks and the paper's four source -> target pairs (METHOD.md 8.1), gymnasium API.

    env = gymnasium.make("redraw/dmc_cup_catch_windy-v0")      # = DMCEnv("cup_catch", perturb="wind:2")

Observation: Dict(image = 64x64x3 uint8 RGB from camera 0, vector = joint velocities float32). Action:
the task's actuators in [-1, 1]^A, repeated for 2 control steps; the reward is the last sub-step's (so in
[0, 1] per agent step). 20 s = 1000 control steps = 500 agent steps per episode (truncated at the end).
The target modifications act in `Task.before_step` on every control step, inside the physics:

    cup_catch_windy                    xfrc_applied[ball] = (-2, 0, 0, 0, 0, 0)    (perturb "wind:2")
    finger_turn_hard_torque_applied    xfrc_applied[spinner] = (0, 0, 0, 0, 4, 0)  (perturb "torque:4")
    pendulum_swingup_reversed_actions  set_control(-action)                         (perturb "reversed")
    reacher_easy_reversed_actions      set_control(-action) on both joints          (perturb "reversed")

Rendering is set up for speed: MSAA off (`vis.quality.offsamples = 0`), shadows and reflections off, one
persistent camera. `info` holds `gt_state` (qpos || qvel, not an observation) and `is_real` (any
perturbation), like the paper's DMCSimulationEnv.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from redraw_common.perturb import format_perturb, parse_perturb

from .perturb import DMC_PERTURBATIONS

#: source task -> (dm_control domain, task)
TASKS = {
    "cup_catch": ("ball_in_cup", "catch"),
    "finger_turn_hard": ("finger", "turn_hard"),
    "pendulum_swingup": ("pendulum", "swingup"),
    "reacher_easy": ("reacher", "easy"),
}
#: target task -> (source task, perturbation), METHOD.md 8.1
PAIRS = {
    "cup_catch_windy": ("cup_catch", "wind:2"),
    "finger_turn_hard_torque_applied": ("finger_turn_hard", "torque:4"),
    "pendulum_swingup_reversed_actions": ("pendulum_swingup", "reversed"),
    "reacher_easy_reversed_actions": ("reacher_easy", "reversed"),
}
_PERTURB_DOMAIN = {"wind": ("ball_in_cup", "ball"), "torque": ("finger", "spinner")}
_RENDER_FLAGS = {"shadow": False, "reflection": False}


def resolve_task(name: str, perturb: str = "") -> tuple[str, str]:
    """A source or target task name (+ extra perturbation) -> (source task, combined perturbation string)."""
    if name in PAIRS:
        source, target_perturb = PAIRS[name]
        return source, ",".join(p for p in (target_perturb, perturb) if p)
    if name in TASKS:
        return name, perturb
    raise ValueError(f"unknown DMC task {name!r}; expected one of {sorted(TASKS) + sorted(PAIRS)}")


class DMCEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, task: str = "pendulum_swingup", perturb: str = "", size: int = 64, action_repeat: int = 2,
                 episode_steps: int = 500, camera: int = 0, seed: int | None = None, render_mode: str | None = None):
        os.environ.setdefault("MUJOCO_GL", "egl")
        from dm_control import suite
        from dm_control.mujoco.engine import Camera

        self.task_name = task
        source, perturb = resolve_task(task, perturb)
        self.source = source
        self.perturbation = parse_perturb(perturb, DMC_PERTURBATIONS)
        self.perturb = format_perturb(self.perturbation, DMC_PERTURBATIONS)
        domain, task_id = TASKS[source]
        for name in self.perturbation:
            if name in _PERTURB_DOMAIN and _PERTURB_DOMAIN[name][0] != domain:
                raise ValueError(f"perturbation {name!r} applies to {_PERTURB_DOMAIN[name][0]} tasks only, found task {task!r}")
        if not isinstance(action_repeat, int) or action_repeat < 1:
            raise ValueError(f"action_repeat must be an int >= 1, found {action_repeat!r}")
        if not isinstance(episode_steps, int) or episode_steps < 1:
            raise ValueError(f"episode_steps must be an int >= 1, found {episode_steps!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', found {render_mode!r}")
        self.render_mode = render_mode
        self.size, self.action_repeat, self.episode_steps = int(size), action_repeat, episode_steps
        self._seed = seed
        probe = suite.load(domain, task_id)
        time_limit = episode_steps * action_repeat * probe.control_timestep()
        self._env = suite.load(domain, task_id, task_kwargs={"random": seed, "time_limit": time_limit})
        self.physics = self._env.physics
        self.physics.model.vis.quality.offsamples = 0          # MSAA off, before the first render
        self._camera = Camera(self.physics, height=self.size, width=self.size, camera_id=camera)
        self._install_perturbation()
        spec = self._env.action_spec()
        if not (np.allclose(spec.minimum, -1) and np.allclose(spec.maximum, 1)):
            raise ValueError(f"{task}: expected actuators in [-1, 1], found [{spec.minimum}, {spec.maximum}]")
        nv = int(self.physics.model.nv)
        self.action_space = spaces.Box(-1.0, 1.0, spec.shape, dtype=np.float32)
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (self.size, self.size, 3), dtype=np.uint8),
            "vector": spaces.Box(-np.inf, np.inf, (nv,), dtype=np.float32),
        })
        self.frame: np.ndarray | None = None
        self._steps, self._return = 0, 0.0

    def _install_perturbation(self) -> None:
        task, p = self._env.task, self.perturbation
        original = task.before_step
        sign = -1.0 if p.get("reversed", 0.0) else 1.0
        wrench = None
        if "wind" in p:
            wrench = ("ball", np.array([-p["wind"], 0, 0, 0, 0, 0], float))
        if "torque" in p:
            wrench = ("spinner", np.array([0, 0, 0, 0, p["torque"], 0], float))

        def before_step(action, physics):
            original(sign * np.asarray(action), physics)
            if wrench is not None:   # cleared by every reset: set on every control step
                physics.named.data.xfrc_applied[wrench[0]] = wrench[1]

        task.before_step = before_step

    # gymnasium API -----------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.task._random = np.random.RandomState(seed)
        ts = self._env.reset()
        self._steps, self._return = 0, 0.0
        return self._observe(ts), self._info()

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(self.action_space.shape)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, found {action.tolist()}")
        action = np.clip(action, -1.0, 1.0)
        reward, ts = 0.0, None
        for _ in range(self.action_repeat):
            ts = self._env.step(action)
            reward = float(ts.reward or 0.0)       # the last sub-step's reward
            if ts.last():
                break
        self._steps += 1
        self._return += reward
        truncated = bool(ts.last())
        info = self._info()
        if truncated:
            info["episode"] = {"return": self._return, "length": self._steps, "task": self.task_name, "perturb": self.perturb}
        return self._observe(ts), reward, False, truncated, info

    def render(self):
        return None if self.frame is None else self.frame.copy()

    def close(self):
        self._camera = None

    # helpers -----------------------------------------------------------------------------------------------
    def _observe(self, ts) -> dict[str, np.ndarray]:
        self.frame = self._camera.render(render_flag_overrides=dict(_RENDER_FLAGS))
        return {"image": np.ascontiguousarray(self.frame, dtype=np.uint8),
                "vector": np.asarray(ts.observation["velocity"], dtype=np.float32).reshape(-1)}

    def _info(self) -> dict[str, Any]:
        return {"gt_state": self.gt_state(), "is_real": bool(self.perturbation), "episode": None}

    def gt_state(self) -> np.ndarray:
        """qpos || qvel of the simulator (evaluation only: not part of the observation)."""
        return np.concatenate([self.physics.data.qpos, self.physics.data.qvel]).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"task": self.task_name, "source": self.source, "perturb": self.perturb, "size": self.size,
                "action_repeat": self.action_repeat, "episode_steps": self.episode_steps}
