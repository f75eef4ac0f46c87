"""Duckietown and DeepMind Control environments with perturbable dynamics, lane metrics, data-collection drivers, and the digital-twin robot node.

Importing this package registers the gymnasium ids (the simulators themselves load on first `make`):

    redraw/DuckietownLoop-v0             lane following, loop_empty, nominal ("sim"); kwargs: map_name,
                                         perturb, obs_mode, time_limit, camera_width/height, ...
    redraw/DuckietownLoopReversed-v0     the same with perturb="reversed" (the paper's "actions reversed" real)
    redraw/dmc_<task>-v0                 DMC sources cup_catch, finger_turn_hard, pendulum_swingup, reacher_easy
                                         and targets cup_catch_windy, finger_turn_hard_torque_applied,
                                         pendulum_swingup_reversed_actions, reacher_easy_reversed_actions
"""

from __future__ import annotations

import gymnasium as gym

DUCKIETOWN_IDS = ("redraw/DuckietownLoop-v0", "redraw/DuckietownLoopReversed-v0")
DMC_SOURCES = ("cup_catch", "finger_turn_hard", "pendulum_swingup", "reacher_easy")
DMC_TARGETS = ("cup_catch_windy", "finger_turn_hard_torque_applied", "pendulum_swingup_reversed_actions",
               "reacher_easy_reversed_actions")
DMC_IDS = tuple(f"redraw/dmc_{name}-v0" for name in DMC_SOURCES + DMC_TARGETS)


def _register() -> None:
    if "redraw/DuckietownLoop-v0" in gym.registry:
        return
    entry = "redraw_sim.duckietown_env:DuckietownLaneEnv"
    gym.register("redraw/DuckietownLoop-v0", entry_point=entry, kwargs={"map_name": "loop_empty"})
    gym.register("redraw/DuckietownLoopReversed-v0", entry_point=entry, kwargs={"map_name": "loop_empty", "perturb": "reversed"})
    for name in DMC_SOURCES + DMC_TARGETS:
        gym.register(f"redraw/dmc_{name}-v0", entry_point="redraw_sim.dmc_env:DMCEnv", kwargs={"task": name})


_register()
