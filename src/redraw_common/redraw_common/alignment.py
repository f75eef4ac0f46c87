"""The alignment rule: which control tick of a recording becomes a usable transition. One rule, used by the
bag -> dataset converter (redraw_training.bagalign, over a whole recording) and by the recorder (redraw_recorder,
online, to count what the converter will keep and stop at `max_transitions` of them).

A control tick is a driving command (stamp t); commands faster than the control rate are thinned to one per control
period (the converter locks its ticks to the command nearest each period; online, a command at least 0.9 period
after the previous tick starts the next one: the same ticks for a driver at or above the control rate), and a period
the driver let pass without a command (within `max_gap_s`) is a tick holding the command in force. It is usable when
- the freshest camera frame stamped at or before t is at most `max_frame_age_s` old (default one control period),
- for a recording with odometry: the latest odometry stamped at or before that frame is at most
  `max_odometry_age_s` older than the frame (default two control periods),
- it lies inside an episode (not between an END and the next START event),
and its episode, cut at events, at command gaps longer than `max_gap_s` and at unusable ticks, has at least
`min_episode_length` ticks. All times are header stamps (simulated time next to a twin with /clock).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

NS = 1_000_000_000
EVENT_START, EVENT_END = 0, 1   # redraw_msgs/EpisodeEvent.event


@dataclass(frozen=True)
class AlignmentRule:
    control_hz: float = 10.0
    max_gap_s: float = 0.5
    max_frame_age_s: float | None = None       # None: one control period
    max_odometry_age_s: float | None = None    # None: two control periods
    min_episode_length: int = 8

    def __post_init__(self) -> None:
        if not (isinstance(self.control_hz, (int, float)) and math.isfinite(self.control_hz) and 0 < self.control_hz <= 100):
            raise ValueError(f"control_hz must be in (0, 100] Hz, found {self.control_hz!r}")
        if self.max_frame_age_s is None:
            object.__setattr__(self, "max_frame_age_s", 1.0 / self.control_hz)
        if self.max_odometry_age_s is None:
            object.__setattr__(self, "max_odometry_age_s", 2.0 / self.control_hz)
        for name in ("max_gap_s", "max_frame_age_s", "max_odometry_age_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, found {value!r}")
        if int(self.min_episode_length) < 2:
            raise ValueError(f"min_episode_length must be >= 2 (the episode format needs 2 steps), found {self.min_episode_length}")

    @property
    def frame_age_ns(self) -> int:
        return int(self.max_frame_age_s * NS)

    @property
    def odometry_age_ns(self) -> int:
        return int(self.max_odometry_age_s * NS)

    @property
    def gap_ns(self) -> int:
        return int(self.max_gap_s * NS)


class UsableCounter:
    """The rule applied online to a recording as it is made: feed it header stamps in arrival order; `usable` is the
    number of transitions the converter will keep (ticks in runs of at least min_episode_length)."""

    def __init__(self, rule: AlignmentRule, needs_odometry: bool, window: int = 256):
        self.rule = rule
        self.needs_odometry = needs_odometry
        self.frames: deque[int] = deque(maxlen=window)
        self.odometry: deque[int] = deque(maxlen=window)
        self.inside = True          # no END seen since the last START (a recording without events is one episode)
        self.last_command: int | None = None
        self.last_tick: int | None = None
        self.run = 0                # usable ticks in the current episode so far
        self.kept = 0               # usable ticks of finished episodes long enough to keep
        self.ticks = 0
        self.unusable = 0           # ticks inside an episode without a fresh frame (or odometry)

    @property
    def usable(self) -> int:
        return self.kept + (self.run if self.run >= self.rule.min_episode_length else 0)

    def frame(self, stamp_ns: int | None) -> None:
        if stamp_ns is not None:
            self.frames.append(int(stamp_ns))

    def odometry_stamp(self, stamp_ns: int | None) -> None:
        if stamp_ns is not None:
            self.odometry.append(int(stamp_ns))

    def event(self, kind: int) -> None:
        self._cut()
        self.inside = kind != EVENT_END

    def command(self, stamp_ns: int | None) -> None:
        if stamp_ns is None:
            return
        t = int(stamp_ns)
        period = NS / self.rule.control_hz
        if self.last_command is not None and t - self.last_command > self.rule.gap_ns:
            self._cut()
            self.last_tick = None      # the driver stopped: the next tick is this command, as in the converter
        self.last_command = t
        if self.last_tick is not None:
            # control periods that passed without a command near them: the converter holds the command in force there
            while t >= self.last_tick + 1.5 * period:
                self.last_tick += period
                self._tick(int(self.last_tick))
            if t - self.last_tick < 0.9 * period:
                return
        self.last_tick = t
        self._tick(t)

    def _tick(self, t: int) -> None:
        self.ticks += 1
        if not self.inside:
            return
        if self._observed(t):
            self.run += 1
        else:
            self.unusable += 1
            self._cut()

    def _observed(self, t: int) -> bool:
        frame = _latest_at_or_before(self.frames, t)
        if frame is None or t - frame > self.rule.frame_age_ns:
            return False
        if not self.needs_odometry:
            return True
        odom = _latest_at_or_before(self.odometry, frame)
        return odom is not None and frame - odom <= self.rule.odometry_age_ns

    def _cut(self) -> None:
        if self.run >= self.rule.min_episode_length:
            self.kept += self.run
        self.run = 0


def _latest_at_or_before(stamps: deque[int], t: int) -> int | None:
    ordered = sorted(stamps)   # a window of a few hundred stamps, at the control rate: cheap
    i = bisect.bisect_right(ordered, t)
    return ordered[i - 1] if i else None
