"""The alignment rule: which control tick of a recording becomes a usable transition. One rule, used by the
bag -> dataset converter (redraw_training.bagalign, over a whole recording) and by the recorder (redraw_recorder,
online, to count what the converter will keep and stop at `max_transitions` of them). Both run the same code: the
converter feeds a recording's commands to `TickLocker` and finishes it; the recorder feeds them as they arrive, and
each tick is decided once a command at least half a period past its slot has arrived (1.5 periods after the tick
before it; the first tick half a period after it). The counts differ only where a frame, odometry or event reached
the recorder after the tick it bears on was decided.

A control tick is a driving command (stamp t). The ticks are phase-locked to the driver: after a tick at t, the next
is the command nearest the slot t + period, among those within half a period of it (commands faster than the control
rate are thinned to one per period; a driver a little slower or faster than the rate is followed command for command).
A slot with no command near it is a held tick at the slot, holding the command in force, if the driver's next command
follows within `max_gap_s` of that command (a slow driver); otherwise the driver stopped: a new segment starts at its
next command. Commands stamped at or before an earlier one are dropped. A tick is usable when
- the freshest camera frame stamped at or before t is at most `max_frame_age_s` old (default one control period),
- for a recording with odometry: the latest odometry stamped at or before that frame is at most
  `max_odometry_age_s` older than the frame (default two control periods),
- it lies inside an episode (not between an END and the next START event; an event stamped s acts from the first
  tick at or after s),
and its episode, cut at events, at new segments and at unusable ticks, has at least `min_episode_length` ticks.
All times are header stamps (simulated time next to a twin with /clock).
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


@dataclass(frozen=True)
class Tick:
    time: int        # ns
    command: int     # index of the command in force (in the order the commands were fed, dropped ones included)
    held: bool       # no command near this tick's slot: the one in force is held
    segment: int     # a new segment starts at a command after the driver stopped for longer than max_gap_s


class TickLocker:
    """Phase-locked control ticks (the module docstring's rule), fed one command stamp at a time in arrival order.
    `push` returns the ticks that command decided; `finish` the rest, at the end of a recording."""

    def __init__(self, control_hz: float, max_gap_s: float):
        self.period = int(round(NS / control_hz))
        self.half = self.period // 2
        self.gap = int(max_gap_s * NS)
        self.pending: deque[tuple[int, int]] = deque()   # (stamp, index) of commands after the last tick
        self.tick: Tick | None = None
        self.in_force: tuple[int, int] | None = None     # (stamp, index) of the command the last tick carries
        self.fed = 0
        self.latest = -1                                  # the newest command stamp taken; older ones are dropped

    def push(self, stamp_ns: int) -> list[Tick]:
        index = self.fed
        self.fed += 1
        if stamp_ns <= self.latest:
            return []
        self.latest = stamp_ns
        self.pending.append((stamp_ns, index))
        return self._decide(final=False)

    def finish(self) -> list[Tick]:
        return self._decide(final=True)

    def _emit(self, out: list[Tick], time: int, command: tuple[int, int], held: bool, segment: int) -> None:
        self.tick = Tick(time, command[1], held, segment)
        self.in_force = command
        while self.pending and self.pending[0][0] <= time:
            self.pending.popleft()
        out.append(self.tick)

    def _decide(self, final: bool) -> list[Tick]:
        out: list[Tick] = []
        if self.tick is None:
            # the first command is the first tick; online it is decided, like every later one, once a command at
            # least half a period after it has arrived (by then its frame has too)
            if not self.pending or (not final and self.pending[-1][0] < self.pending[0][0] + self.half):
                return out
            self._emit(out, self.pending[0][0], self.pending[0], False, 0)
        while self.pending:
            t, segment = self.tick.time, self.tick.segment
            slot = t + self.period
            if not final and self.pending[-1][0] < slot + self.half:
                break   # a command nearer the slot may still come
            best = None
            for command in self.pending:
                if command[0] >= slot + self.half:
                    break
                if command[0] >= slot - self.half and (best is None or abs(command[0] - slot) < abs(best[0] - slot)):
                    best = command
            if best is not None:
                self._emit(out, best[0], best, False, segment)
                continue
            # no command near the slot: the one in force is the latest stamped at or before it
            in_force = self.in_force
            for command in self.pending:
                if command[0] > slot:
                    break
                in_force = command
            following = next((c for c in self.pending if c[0] >= slot - self.half), None)
            if following is None:
                break
            if following[0] - in_force[0] <= self.gap:
                self._emit(out, slot, in_force, True, segment)
            else:
                self._emit(out, following[0], following, False, segment + 1)
        return out


class UsableCounter:
    """The rule applied online to a recording as it is made: feed it header stamps in arrival order; `usable` is the
    number of transitions the converter will keep (ticks in runs of at least min_episode_length). A tick is counted
    once `TickLocker` has decided it, 1.5 control periods after the tick before it, so the count trails the recording
    by a tick or two: a recording stopped at `usable` transitions holds at least that many. A decided tick is judged
    once a frame stamped at or after it has arrived (its freshest frame has then arrived too, from a camera that
    sends in order; on a loaded machine the camera's callbacks can run behind the commands'), or once the commands
    have gone on for `CAMERA_WAIT_NS` past it without one (a camera that stopped)."""

    CAMERA_WAIT_NS = NS

    def __init__(self, rule: AlignmentRule, needs_odometry: bool, window: int = 256):
        self.rule = rule
        self.needs_odometry = needs_odometry
        self.frames: deque[int] = deque(maxlen=window)
        self.odometry: deque[int] = deque(maxlen=window)
        self.locker = TickLocker(rule.control_hz, rule.max_gap_s)
        self.waiting: deque[Tick] = deque()            # decided, not judged yet
        self.latest_frame = -1
        self.events: deque[tuple[int, int]] = deque()   # (stamp, kind) not yet reached by a tick
        self.inside = True          # no END seen since the last START (a recording without events is one episode)
        self.segment = 0
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
            self.latest_frame = max(self.latest_frame, int(stamp_ns))
            self._judge()

    def odometry_stamp(self, stamp_ns: int | None) -> None:
        if stamp_ns is not None:
            self.odometry.append(int(stamp_ns))

    def event(self, kind: int, stamp_ns: int | None = None) -> None:
        """An episode event; it acts from the first tick stamped at or after it (None: from the next tick decided)."""
        self.events.append((-1 if stamp_ns is None else int(stamp_ns), kind))

    def command(self, stamp_ns: int | None) -> None:
        if stamp_ns is not None:
            self.waiting.extend(self.locker.push(int(stamp_ns)))
            self._judge()

    def finish(self) -> None:
        """The end of the recording: decide the ticks still waiting for a later command."""
        self.waiting.extend(self.locker.finish())
        self._judge(final=True)

    def _judge(self, final: bool = False) -> None:
        while self.waiting and (final or self.latest_frame >= self.waiting[0].time
                                or self.locker.latest - self.waiting[0].time > self.CAMERA_WAIT_NS):
            self._tick(self.waiting.popleft())

    def _tick(self, tick: Tick) -> None:
        self.ticks += 1
        if tick.segment != self.segment:
            self.segment = tick.segment
            self._cut()
        while self.events and self.events[0][0] <= tick.time:
            self._cut()
            self.inside = self.events.popleft()[1] != EVENT_END
        if not self.inside:
            return
        if self._observed(tick.time):
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
