"""Shared simulators: building one costs ~0.3 s and a GL context, so the tests share them per session."""

import pytest


@pytest.fixture(scope="session")
def headless():
    """Fails (with what to install) where the Duckietown simulator cannot render without a display."""
    from redraw_sim.dt_import import check_headless_pyglet

    check_headless_pyglet()


@pytest.fixture(scope="session")
def nominal_env(headless):
    from redraw_sim.duckietown_env import DuckietownLaneEnv

    env = DuckietownLaneEnv(map_name="loop_empty", seed=0, time_limit=1000)
    yield env
    env.close()


@pytest.fixture(scope="session")
def reversed_env(headless):
    from redraw_sim.duckietown_env import DuckietownLaneEnv

    env = DuckietownLaneEnv(map_name="loop_empty", perturb="reversed", seed=0)
    yield env
    env.close()


@pytest.fixture(scope="session")
def straight_start(nominal_env):
    """Arc length 0.15 m into the first of loop_empty's four straight tiles in a row (2.3 m of straight)."""
    track = nominal_env.lane.track
    for i, seg in enumerate(track.segments):
        if all(track.segments[(i + k) % len(track.segments)].kind == "straight" for k in range(4)):
            return seg.s0 + 0.15
    raise AssertionError("loop_empty should have four straight tiles in a row")
