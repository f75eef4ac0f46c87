"""Environment lookup by gymnasium id.

`make_env("redraw/PointGoal-v0", perturb="reversed")` imports the packages that register redraw ids (this
package's synthetic PointGoal env, and `redraw_sim` when it is installed: Duckietown and DMC ids), makes the
env with the `perturb` keyword, and checks the project's env convention: a Dict observation space with a
uint8 (H, W, C) "image" and optionally a float32 "vector", and a Box action space in [-1, 1]^A.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np

from redraw_common.errors import RedrawInputError
from redraw_common.preprocessing import PreprocessConfig

from . import pointgoal

_IMPORTED = False


def import_env_packages() -> list[str]:
    """Register every env id we know of; returns the packages that were imported."""
    global _IMPORTED
    pointgoal.register()
    names = ["redraw_training.envs.pointgoal"]
    if not _IMPORTED:
        try:
            importlib.import_module("redraw_sim")
            names.append("redraw_sim")
        except ImportError:
            pass
        _IMPORTED = True
    return names


class EnvSpecError(RedrawInputError):
    """An environment does not follow the redraw env convention."""


def env_spec(env: gym.Env) -> dict[str, Any]:
    """image_shape, vector_dim, action_dim of an env that follows the convention (else EnvSpecError)."""
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, gym.spaces.Dict) or "image" not in obs.spaces:
        raise EnvSpecError(f"observation space must be a Dict with an 'image' entry, found {obs}")
    image = obs.spaces["image"]
    if not isinstance(image, gym.spaces.Box) or image.dtype != np.uint8 or len(image.shape) != 3:
        raise EnvSpecError(f"'image' must be a uint8 Box of shape (H, W, C), found {image}")
    vector_dim = 0
    if "vector" in obs.spaces:
        vec = obs.spaces["vector"]
        if not isinstance(vec, gym.spaces.Box) or len(vec.shape) != 1:
            raise EnvSpecError(f"'vector' must be a 1-D float Box, found {vec}")
        vector_dim = int(vec.shape[0])
    if not isinstance(act, gym.spaces.Box) or len(act.shape) != 1 or not (np.allclose(act.low, -1) and np.allclose(act.high, 1)):
        raise EnvSpecError(f"action space must be Box([-1, 1]^A), found {act}")
    return {"image_shape": tuple(int(s) for s in image.shape), "vector_dim": vector_dim, "action_dim": int(act.shape[0])}


def make_env(env_id: str, perturb: str = "", **kwargs: Any) -> gym.Env:
    import_env_packages()
    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("redraw/"))
        raise EnvSpecError(f"unknown environment id {env_id!r}; registered redraw ids: {known}")
    env = gym.make(env_id, perturb=perturb, disable_env_checker=True, **kwargs)
    env_spec(env)
    return env


def preprocess_config_of(env: gym.Env) -> PreprocessConfig:
    """The env's preprocessing settings (`env.unwrapped.preprocess_config`), else the default for its image shape."""
    cfg = getattr(env.unwrapped, "preprocess_config", None)
    return cfg if isinstance(cfg, PreprocessConfig) else PreprocessConfig.for_shape(env.observation_space.spaces["image"].shape)
