"""The alignment rule online (UsableCounter): the transitions the recorder counts are the ones the converter keeps."""

import pytest

from redraw_common.alignment import EVENT_END, EVENT_START, NS, AlignmentRule, UsableCounter


def feed(counter, seconds=2.0, command_hz=10.0, frames=True, odometry=True, frame_lag=0.012):
    """Camera (+ odometry) at 30 Hz; commands at command_hz, each `frame_lag` s after a frame."""
    for k in range(int(seconds * 30) + 1):
        t = int(k * NS / 30)
        if frames:
            counter.frame(t)
        if odometry:
            counter.odometry_stamp(t)
    for k in range(int(seconds * command_hz) + 1):
        counter.command(int(k * NS / command_hz + frame_lag * NS))
    counter.finish()
    return counter


def test_counts_control_periods_with_fresh_frames():
    assert feed(UsableCounter(AlignmentRule(), needs_odometry=False)).usable == 21
    # 50 Hz commands for 2 s: still 10 Hz transitions
    assert feed(UsableCounter(AlignmentRule(), needs_odometry=False), command_hz=50.0).usable == 21
    # no camera: nothing usable
    blind = feed(UsableCounter(AlignmentRule(), needs_odometry=False), frames=False)
    assert blind.usable == 0 and blind.unusable == 21


def test_odometry_is_required_when_recorded_and_frames_must_be_fresh():
    assert feed(UsableCounter(AlignmentRule(), needs_odometry=True), odometry=False).usable == 0
    assert feed(UsableCounter(AlignmentRule(), needs_odometry=True)).usable == 21
    # a camera at 2 Hz: most ticks' newest frame is older than one control period, and the fresh ones form
    # episodes of one tick, too short to keep
    slow = UsableCounter(AlignmentRule(), needs_odometry=False)
    for k in range(5):
        slow.frame(int(k * NS / 2))
    for k in range(21):
        slow.command(int((k / 10 + 0.012) * NS))
    slow.finish()
    assert slow.usable == 0 and slow.unusable == 16


def test_episodes_cut_at_events_and_short_ones_are_not_counted():
    c = UsableCounter(AlignmentRule(min_episode_length=8), needs_odometry=False)
    for k in range(61):
        c.frame(int(k * NS / 30))
    t = [int((k / 10 + 0.01) * NS) for k in range(21)]
    for x in t[:5]:
        c.command(x)             # 5 ticks, then the episode ends: too short to keep
    c.event(EVENT_END, t[4] + NS // 20)
    c.command(t[5])              # between episodes: not counted
    c.event(EVENT_START, t[5] + NS // 20)
    for x in t[6:]:
        c.command(x)             # 15 ticks in the new episode
    c.finish()
    assert c.usable == 15
    # a command gap longer than max_gap cuts the episode too
    g = UsableCounter(AlignmentRule(), needs_odometry=False)
    for k in range(200):
        g.frame(int(k * NS / 30))
    for k in list(range(6)) + list(range(20, 30)):
        g.command(int((k / 10 + 0.01) * NS))
    g.finish()
    assert g.usable == 10


def test_a_tick_is_counted_once_the_command_after_its_slot_has_arrived():
    # online, the tick of a slot waits for a command at least half a period past the slot (a command nearer the
    # slot may still come): the count trails the commands by a tick, and finish() decides the last one
    c = UsableCounter(AlignmentRule(min_episode_length=2), needs_odometry=False)
    for k in range(40):
        c.frame(int(k * NS / 30))
    c.command(int(0.01 * NS))    # the first tick
    c.command(int(0.11 * NS))    # at the slot 0.11 s
    c.command(int(0.14 * NS))    # within half a period of it, farther: not decided yet
    assert c.ticks == 1
    c.command(int(0.20 * NS))    # past 0.11 + 0.05 s: 0.11 s is the tick, 0.14 s is not one
    assert c.ticks == 2 and c.usable == 2
    c.finish()                   # 0.20 s is the command nearest the slot 0.21 s
    assert c.ticks == 3 and c.usable == 3


def test_rule_defaults_and_refusals():
    rule = AlignmentRule(control_hz=5.0)
    assert rule.max_frame_age_s == pytest.approx(0.2) and rule.max_odometry_age_s == pytest.approx(0.4)
    with pytest.raises(ValueError, match="control_hz"):
        AlignmentRule(control_hz=-5.0)
    with pytest.raises(ValueError, match="min_episode_length"):
        AlignmentRule(min_episode_length=1)


def test_frames_that_arrive_behind_the_commands_still_count_and_a_stopped_camera_does_not():
    # a loaded recorder runs the camera's callbacks 0.3 s behind the commands': the ticks wait for their frames
    late = UsableCounter(AlignmentRule(), needs_odometry=False)
    frames = [int(k * NS / 30) for k in range(61)]
    commands = [int((k / 10 + 0.012) * NS) for k in range(21)]
    arrivals = sorted([(f + int(0.3 * NS), "frame", f) for f in frames] + [(c, "command", c) for c in commands])
    for _, kind, stamp in arrivals:
        (late.frame if kind == "frame" else late.command)(stamp)
    assert late.usable >= 18     # all but the last ticks, which finish() decides
    late.finish()
    assert late.usable == 21 and late.unusable == 0
    # a camera that stopped after 1 s: the ticks after it are judged unusable once the commands go on 1 s past them
    stopped = UsableCounter(AlignmentRule(), needs_odometry=False)
    for f in frames[:31]:
        stopped.frame(f)
    for c in [int((k / 10 + 0.012) * NS) for k in range(41)]:
        stopped.command(c)
    assert stopped.usable == 11 and stopped.unusable >= 18   # ticks at 0.012 .. 1.012 s have a frame
