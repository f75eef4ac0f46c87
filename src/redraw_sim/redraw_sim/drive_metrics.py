"""Driving metrics of one policy on the digital twin, from the twin's ground truth (redraw_msgs/GroundTruth,
one message per 1/30 s simulator step, as dicts of redraw_sim.ground_truth.FIELDS) and its episode events.

    m = DriveMetrics(duration_s=150, control_hz=10)
    m.open(t)                 # the window opens (the policy's first command): simulated time, s
    m.add_truth(values)       # every ground-truth message (ignored outside the window)
    m.add_departure(t)        # every EpisodeEvent END with reason LEFT_LANE
    m.done                    # the window has covered duration_s of simulated time
    m.summary()               # the metrics, a JSON-able dict

Metrics (over the window of `duration_s` simulated seconds):
- dense_reward: mean reward per control step (1 / control_hz s), as the gymnasium env reports it: the
  twin's per-simulator-step lane reward (progress and centre terms, which do not depend on the step
  length) averaged over the window's control steps, and each lane departure counted once with the
  out-of-lane penalty, as the env's terminal step does. Messages lost on the way are covered by the mean of
  the received ones (`truth_coverage` says how many came).
- lap_time_s: mean duration of the laps completed in the window (NaN without one). A lap is the twin's
  (one loop length along the lane within an episode); its duration runs from the previous lap's end, or
  from the episode's start (the window's start for the episode already running then: the robot stands
  until the policy's first command).
- centre_offset_cm: mean |lane offset| over the window's steps.
- laps: laps completed in the window, over all episodes. departures: lane departures (the twin resets
  the robot each time, and a new episode starts).
- distance_m: distance driven along the lane in the window (backwards counts negative), speed_mps = that
  over the window's duration.
No ROS import: the monitor node (redraw_sim.drive_monitor) feeds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from redraw_common.errors import RedrawInputError

SIM_HZ = 30.0


class DriveMetricsError(RedrawInputError):
    """Metrics asked of a window that never opened or saw no ground truth."""


@dataclass
class _Episode:
    index: int
    start_s: float                 # when its laps start counting (episode start, or the window's start)
    laps: int                      # laps completed (the twin's count) at the last message
    laps_at_open: int              # the twin's count when the episode entered the window
    distance_at_open: float
    distance: float
    last_lap_end_s: float


@dataclass
class DriveMetrics:
    duration_s: float
    control_hz: float = 10.0
    out_of_lane_penalty: float = 20.0
    trace_hz: float = 10.0
    t_open: float | None = None
    t_last: float | None = None
    steps: set = field(default_factory=set)      # simulator step indices received in the window
    reward_sum: float = 0.0                      # non-terminal steps
    reward_n: int = 0
    offset_sum_cm: float = 0.0
    offset_n: int = 0
    truth_departures: int = 0                    # steps flagged out_of_lane
    event_departures: int = 0                    # EpisodeEvent END / LEFT_LANE
    penalties: list = field(default_factory=list)
    lap_times: list = field(default_factory=list)
    episodes: dict = field(default_factory=dict)
    first_seen: dict = field(default_factory=dict)   # episode index -> first stamp seen (also before the window)
    trace: list = field(default_factory=list)        # [t - t_open, distance_m, lane_offset_cm, episode]

    def __post_init__(self) -> None:
        if not (self.duration_s > 0 and self.control_hz > 0 and self.trace_hz > 0):
            raise ValueError(f"duration_s, control_hz and trace_hz must be > 0, found {self.duration_s}, {self.control_hz}, {self.trace_hz}")
        self._trace_every = max(1, int(round(SIM_HZ / self.trace_hz)))

    # input ----------------------------------------------------------------------------------------------------
    def open(self, t: float) -> None:
        """Open the window at simulated time t (seconds); later calls are ignored."""
        if self.t_open is None:
            self.t_open = float(t)

    @property
    def is_open(self) -> bool:
        return self.t_open is not None

    @property
    def elapsed_s(self) -> float:
        if self.t_open is None or self.t_last is None:
            return 0.0
        return max(0.0, self.t_last - self.t_open)

    @property
    def done(self) -> bool:
        return self.t_open is not None and self.t_last is not None and self.t_last >= self.t_open + self.duration_s - 0.5 / SIM_HZ

    def in_window(self, t: float) -> bool:
        return self.t_open is not None and self.t_open <= t <= self.t_open + self.duration_s + 0.5 / SIM_HZ

    def add_departure(self, t: float) -> None:
        if self.in_window(t):
            self.event_departures += 1

    def add_truth(self, v: dict[str, Any]) -> None:
        t, index = float(v["stamp_s"]), int(v["episode"])
        self.first_seen.setdefault(index, t - 1.0 / SIM_HZ)   # the step ends at its stamp
        if not self.in_window(t):
            return
        step = int(round(t * SIM_HZ))
        if step in self.steps:
            return
        self.steps.add(step)
        self.t_last = t if self.t_last is None else max(self.t_last, t)
        laps, distance = int(v["laps"]), float(v["distance_m"])
        ep = self.episodes.get(index)
        if ep is None:
            start = max(self.first_seen[index], self.t_open)
            ep = self.episodes[index] = _Episode(index, start, laps, laps, distance, distance, start)
        while ep.laps < laps:          # normally one lap at a time; several only if messages were lost
            ep.laps += 1
            self.lap_times.append(t - ep.last_lap_end_s)
            ep.last_lap_end_s = t
        ep.distance = distance
        offset_cm = 100.0 * abs(float(v["lane_offset_m"]))
        self.offset_sum_cm += offset_cm
        self.offset_n += 1
        if v["out_of_lane"]:
            self.truth_departures += 1
            self.penalties.append(-float(v["reward"]))
        else:
            self.reward_sum += float(v["reward"])
            self.reward_n += 1
        if step % self._trace_every == 0:
            self.trace.append([round(t - self.t_open, 4), round(self.distance_m, 4), round(offset_cm, 3), index])

    # output ---------------------------------------------------------------------------------------------------
    @property
    def distance_m(self) -> float:
        return float(sum(ep.distance - ep.distance_at_open for ep in self.episodes.values()))

    @property
    def laps(self) -> int:
        return int(sum(ep.laps - ep.laps_at_open for ep in self.episodes.values()))

    @property
    def departures(self) -> int:
        return max(self.truth_departures, self.event_departures)

    def progress(self) -> dict[str, Any]:
        return {"sim_s": round(self.elapsed_s, 2), "duration_s": self.duration_s, "laps": self.laps, "departures": self.departures,
                "distance_m": round(self.distance_m, 2)}

    def summary(self) -> dict[str, Any]:
        if self.t_open is None:
            raise DriveMetricsError("the measurement window never opened: the policy sent no command")
        if not self.steps:
            raise DriveMetricsError("no ground truth arrived in the measurement window")
        duration = self.elapsed_s + 1.0 / SIM_HZ
        expected = int(round(duration * SIM_HZ))
        sub = SIM_HZ / self.control_hz
        penalty = float(np.mean(self.penalties)) if self.penalties else self.out_of_lane_penalty
        departures = self.departures
        mean_nt = self.reward_sum / self.reward_n if self.reward_n else 0.0
        control_steps = expected / sub
        dense = (mean_nt * max(expected - departures, 0) / sub - penalty * departures) / control_steps
        return {
            "dense_reward": float(dense),
            "lap_time_s": float(np.mean(self.lap_times)) if self.lap_times else math.nan,
            "centre_offset_cm": self.offset_sum_cm / max(self.offset_n, 1),
            "laps": self.laps,
            "departures": departures,
            "distance_m": self.distance_m,
            "speed_mps": self.distance_m / duration,
            "lap_times_s": [float(x) for x in self.lap_times],
            "sim_seconds": duration,
            "control_steps": control_steps,
            "episodes": len(self.episodes),
            "truth_coverage": len(self.steps) / max(expected, 1),
            "departures_seen_in_truth": self.truth_departures,
            "departures_seen_in_events": self.event_departures,
            "out_of_lane_penalty": penalty,
            "window_start_s": self.t_open,
        }
