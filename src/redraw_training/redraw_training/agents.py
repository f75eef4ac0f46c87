"""Which agent a config describes: `build_agent(config, ...)` for pretraining, checkpoints and baselines.

    model: draw,    explore: task | scripted  -> Agent        (DRAW + task actor-critic; ReDRAW calibration)
    model: draw,    explore: plan2explore     -> P2EAgent     (+ disagreement ensemble + exploration actor-critic)
    model: dreamer, explore: any              -> DreamerAgent (DreamerV3 RSSM + backprop actor-critic [+ P2E parts])
"""

from __future__ import annotations

from .config import Config, ConfigError
from .draw_agent import Agent

MODELS = ("draw", "dreamer")
EXPLORE = ("task", "plan2explore", "scripted")


def agent_class(config: Config) -> type:
    if config.model not in MODELS:
        raise ConfigError(f"config key 'model' must be one of {MODELS}, found {config.model!r}")
    if config.explore not in EXPLORE:
        raise ConfigError(f"config key 'explore' must be one of {EXPLORE}, found {config.explore!r}")
    if config.model == "dreamer":
        from .dreamer import DreamerAgent

        return DreamerAgent
    if config.explore == "plan2explore":
        from .plan2explore import P2EAgent

        return P2EAgent
    return Agent


def build_agent(config: Config, image_shape: tuple[int, int, int], action_dim: int, vector_dim: int = 0, calibrated: bool = False):
    return agent_class(config)(config, tuple(image_shape), int(action_dim), int(vector_dim), calibrated=calibrated)


def is_recurrent(agent) -> bool:
    """Agents whose acting carries a state from step to step (Dreamer's GRU); DRAW acts on the current frame."""
    return hasattr(agent, "policy_step")
