"""Property-based tests (hypothesis) of the parsers and rules every bad input meets first: the perturbation parser,
the wheel kinematics, and the alignment rule that the recorder counts by online and the converter applies offline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redraw_common.alignment import AlignmentRule, UsableCounter
from redraw_common.errors import KinematicsError
from redraw_common.kinematics import KinematicsConfig, action_to_wheels, wheels_to_action
from redraw_common.perturb import PerturbError, parse_perturb
from redraw_sim.perturb import DUCKIETOWN_PERTURBATIONS

NAMES = sorted(DUCKIETOWN_PERTURBATIONS)
NS = 1_000_000_000


# --- the perturbation parser --------------------------------------------------------------------------------------

item = st.one_of(
    st.sampled_from(NAMES),
    st.tuples(st.sampled_from(NAMES), st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                                                st.text(max_size=6))).map(lambda t: f"{t[0]}:{t[1]}"),
    st.text(max_size=10),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(item, max_size=4).map(",".join))
def test_perturbation_text_parses_to_known_finite_values_or_is_refused_with_a_perturb_error(text):
    try:
        parsed = parse_perturb(text, DUCKIETOWN_PERTURBATIONS)
    except PerturbError as exc:
        assert str(exc)                     # a message, never another exception type
        return
    assert set(parsed) <= set(NAMES)
    assert all(isinstance(v, float) and math.isfinite(v) for v in parsed.values())
    # what parsed is accepted again, written back as text
    assert parse_perturb(",".join(f"{k}:{v!r}" for k, v in parsed.items()), DUCKIETOWN_PERTURBATIONS) == parsed


# --- the kinematics -----------------------------------------------------------------------------------------------

kinematics = st.builds(
    lambda gain, trim_frac, limit: KinematicsConfig(gain=gain, trim=trim_frac * gain, limit=limit),
    st.floats(0.2, 3.0), st.floats(-0.9, 0.9), st.floats(0.1, 1.0))
unit = st.floats(-1.0, 1.0)


@settings(max_examples=300, deadline=None)
@given(kinematics, unit, unit)
def test_wheel_commands_stay_within_the_limit_and_invert_when_not_clamped(kin, forward, turn):
    wheels = action_to_wheels(forward, turn, kin, strict=False)
    assert abs(wheels.left) <= kin.limit + 1e-9 and abs(wheels.right) <= kin.limit + 1e-9
    if not wheels.clamped:
        back = wheels_to_action(wheels.left, wheels.right, kin)
        assert back.forward == pytest.approx(forward, abs=1e-6) and back.turn == pytest.approx(turn, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_kinematics_refuse_non_finite_or_out_of_range_settings_with_their_own_error(gain, trim):
    try:
        kin = KinematicsConfig(gain=gain, trim=trim)
    except KinematicsError as exc:
        assert "kinematics" in str(exc)
        return
    assert math.isfinite(kin.gain) and kin.gain > 0 and abs(kin.trim) < kin.gain


# --- the alignment rule: online (recorder) == offline (converter) -------------------------------------------------

@st.composite
def recording(draw):
    """Commands at the control rate with up to 40 ms of jitter (a loaded driver) and some silent stretches (gaps), frames at 30 Hz with
    dropped bursts; header stamps in ns."""
    n = draw(st.integers(20, 120))
    jitter = draw(st.lists(st.integers(-40_000_000, 40_000_000), min_size=n, max_size=n))
    silent = draw(st.sets(st.integers(0, n - 1), max_size=n // 4))
    cmds = [k * NS // 10 + 12_000_000 + jitter[k] for k in range(n) if k not in silent]
    frames_n = n * 3
    dropped = draw(st.sets(st.integers(0, frames_n - 1), max_size=frames_n // 3))
    frames = [i * NS // 30 for i in range(frames_n) if i not in dropped]
    return cmds, frames


@settings(max_examples=150, deadline=None)
@given(recording())
def test_the_recorders_online_count_equals_the_converters_transitions(rec):
    from redraw_training.bagalign import control_ticks, plan_episodes
    from redraw_training.bagread import Streams

    cmds, frames = rec
    rule = AlignmentRule()
    counter = UsableCounter(rule, needs_odometry=False)
    events = sorted([(t, "frame") for t in frames] + [(t, "cmd") for t in cmds])
    for t, kind in events:          # in stamp order: a frame and the command after it, as they arrive
        counter.frame(t) if kind == "frame" else counter.command(t)
    counter.finish()                # the recording ends: its last ticks are decided, the last episode counts if long enough
    if not cmds or not frames:
        assert counter.usable == 0
        return
    streams = Streams(camera_topic="/cam", frame_stamp=np.asarray(frames, np.int64), frame_part=np.zeros(len(frames), int),
                      frame_index=np.arange(len(frames)), cmd_stamp=np.asarray(cmds, np.int64),
                      cmd_action=np.zeros((len(cmds), 2), np.float32), action_source="action", events=[])
    ticks = control_ticks(streams.cmd_stamp, streams.cmd_action, rule.control_hz, rule.max_gap_s)
    plan = plan_episodes(streams, ticks, rule.max_frame_age_s, rule.min_episode_length)
    offline = sum(b - a for a, b, _ in plan.episodes)
    assert counter.usable == offline, (counter.usable, offline, plan.stats)
