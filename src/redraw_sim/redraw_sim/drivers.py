"""Data-collection drivers: plain classes with `reset(seed)` and `act(obs_or_state) -> action`, no ROS.

The same classes drive in-process envs (`collect`) and the ROS nodes (`explore_node`). An action is a
float32 array (forward, turn) in [-1, 1]^2: forward > 0 drives ahead, turn > 0 turns left.

The lane drivers read a lane state: a mapping with `lane_offset_m` (m, + = left of the lane centre) and
`lane_heading_rad` (rad, + = pointing left of the lane), as the simulators report it (`env.lane_state()`
in-process, the twin's ground truth as a node). `input = "state"` says so; `RandomDriver` reads nothing.
With the robot's measured `speed_mps` and `yaw_rate_rps` in that mapping too, the explorer also identifies
the sign of each command channel online (`ActuationSigns`), as a teleoperator does within seconds of driving
a robot whose controls are reversed; no reward is involved.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from redraw_common.errors import RedrawInputError


class DriverInputError(RedrawInputError):
    """A driver or a driver node (explorer, teleop) got a setting or an input it cannot use."""


@dataclass(frozen=True)
class LaneState:
    offset: float      # m, + = left of the lane centre
    heading: float     # rad, + = pointing left of the lane


def lane_state_of(state: Any) -> LaneState:
    """A lane state mapping {'lane_offset_m', 'lane_heading_rad'} (or a LaneState) -> LaneState, checked."""
    if isinstance(state, LaneState):
        return state
    if isinstance(state, Mapping) and "lane_offset_m" in state and "lane_heading_rad" in state:
        offset, heading = float(state["lane_offset_m"]), float(state["lane_heading_rad"])
        if not (math.isfinite(offset) and math.isfinite(heading)):
            raise DriverInputError(f"lane state must be finite, found offset={offset}, heading={heading}")
        return LaneState(offset, heading)
    found = sorted(state) if isinstance(state, Mapping) else type(state).__name__
    raise DriverInputError(f"expected a lane state mapping with 'lane_offset_m' and 'lane_heading_rad', found {found}")


def odometry_of(state: Any) -> tuple[float, float] | None:
    """(speed m/s, yaw rate rad/s) when the state mapping has `speed_mps` and `yaw_rate_rps`, else None."""
    if not (isinstance(state, Mapping) and "speed_mps" in state and "yaw_rate_rps" in state):
        return None
    speed, yaw_rate = float(state["speed_mps"]), float(state["yaw_rate_rps"])
    if not (math.isfinite(speed) and math.isfinite(yaw_rate)):
        raise DriverInputError(f"odometry must be finite, found speed={speed}, yaw_rate={yaw_rate}")
    return speed, yaw_rate


class RandomDriver:
    """Uniform random actions in [-1, 1]^action_dim (any env; DMC data without an expert).

    hold=(lo, hi): keep each drawn action for a uniform lo..hi steps. Fresh actions every step average out
    within the motors' lag, so the robot rarely reaches full speed in any direction; held ones drive it to
    full forward and backward speeds and sustained turns (the states a perturbed robot visits).
    """

    input = "none"

    def __init__(self, action_dim: int = 2, seed: int | None = None, hold: tuple[int, int] | list[int] = (1, 1)):
        self.action_dim = int(action_dim)
        lo, hi = (int(h) for h in hold)
        if not 1 <= lo <= hi:
            raise ValueError(f"hold must be (lo, hi) steps with 1 <= lo <= hi, found {tuple(hold)}")
        self.hold = (lo, hi)
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None or not hasattr(self, "rng"):
            self.rng = np.random.default_rng(seed)
        self.left = 0
        self.action = np.zeros(self.action_dim, np.float32)

    def act(self, obs_or_state: Any = None) -> np.ndarray:
        if self.left <= 0:
            self.action = self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
            self.left = int(self.rng.integers(self.hold[0], self.hold[1] + 1))
        self.left -= 1
        return self.action.copy()


class LaneFollowPController:
    """The "expert": constant speed, turn = -(k_offset * offset + k_heading * heading), clipped to [-1, 1]."""

    input = "state"

    def __init__(self, forward: float = 0.6, k_offset: float = 10.0, k_heading: float = 3.0):
        if not -1.0 <= forward <= 1.0:
            raise ValueError(f"forward must be in [-1, 1], found {forward}")
        self.forward, self.k_offset, self.k_heading = float(forward), float(k_offset), float(k_heading)

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, obs_or_state: Any) -> np.ndarray:
        lane = lane_state_of(obs_or_state)
        turn = -(self.k_offset * lane.offset + self.k_heading * lane.heading)
        return np.array([self.forward, np.clip(turn, -1.0, 1.0)], dtype=np.float32)


class ActuationSigns:
    """Identifies, once per channel, the sign of each command channel (forward, turn) from the robot's odometry.

    The motors and the odometry act late by a number of ticks that is not known in advance, so for every
    candidate lag k in 0..max_lag the measured (speed, yaw rate) at a tick is regressed through the origin on
    the command sent k + 1 ticks before (k = 0: the last command). A channel is decided at the lag whose slope
    has the largest t statistic, once that lag has `min_samples` samples, the commands have excited the
    channel (sum of squared commands >= `min_excitation`) and |t| >= `confidence`. The default 8 is far
    beyond what noise gives (|t| >= 8 has probability ~1e-15 for a slope that is zero), with room for the
    correlated residuals of a closed loop. A decided sign is final: later noise, stalls or a lane departure
    do not change it. Until a channel is decided its sign is +1 (forward drives ahead, turn > 0 turns left).
    A driver multiplies its intended command by the signs; the estimate concerns the robot, so it carries
    over between episodes.
    """

    CHANNELS = ("forward", "turn")

    def __init__(self, max_lag: int = 5, confidence: float = 8.0, min_samples: int = 10, min_excitation: float = 1.0):
        if max_lag < 0 or confidence <= 0 or min_samples < 3 or min_excitation <= 0:
            raise ValueError(f"expected max_lag >= 0, confidence > 0, min_samples >= 3 and min_excitation > 0; found "
                             f"{max_lag}, {confidence}, {min_samples}, {min_excitation}")
        self.max_lag, self.confidence = int(max_lag), float(confidence)
        self.min_samples, self.min_excitation = int(min_samples), float(min_excitation)
        self.signs = np.ones(2)
        self.decided = np.zeros(2, bool)
        self.decided_lag = np.full(2, -1)          # ticks, of the decision
        self.decided_t = np.zeros(2)               # the t statistic it was made at
        self.observations = 0
        self.decided_after = np.zeros(2, int)      # observations seen when it was made
        self.sent: deque[np.ndarray] = deque(maxlen=self.max_lag + 1)   # sent[-1 - k]: the command k + 1 ticks ago
        shape = (self.max_lag + 1, 2)
        self.n, self.sxy, self.sxx, self.syy = np.zeros(shape), np.zeros(shape), np.zeros(shape), np.zeros(shape)

    def new_episode(self) -> None:
        """The robot was reset: commands before it no longer explain its motion (the estimate itself stays)."""
        self.sent.clear()

    def t_statistics(self) -> np.ndarray:
        """(max_lag + 1, 2): the t statistic of each lag's slope per channel (0 where a lag has < 3 samples)."""
        safe_sxx = np.maximum(self.sxx, 1e-12)
        rss = np.maximum(self.syy - self.sxy ** 2 / safe_sxx, 1e-12 * np.maximum(self.syy, 1e-12))
        t = self.sxy / np.sqrt(safe_sxx * rss / np.maximum(self.n - 1, 1))
        return np.where(self.n >= 3, t, 0.0)

    def observe(self, speed: float, yaw_rate: float) -> None:
        """The measured motion at this tick, before the next command is chosen."""
        if self.decided.all() or not self.sent:
            return
        self.observations += 1
        y = np.array([speed, yaw_rate])
        for k in range(len(self.sent)):
            u = self.sent[-1 - k]
            self.n[k] += 1
            self.sxy[k] += u * y
            self.sxx[k] += u * u
            self.syy[k] += y * y
        t = self.t_statistics()
        for c in np.flatnonzero(~self.decided):
            k = int(np.argmax(np.abs(t[:, c])))
            if self.n[k, c] >= self.min_samples and self.sxx[k, c] >= self.min_excitation and abs(t[k, c]) >= self.confidence:
                self.signs[c] = np.sign(t[k, c])
                self.decided[c], self.decided_lag[c], self.decided_t[c] = True, k, t[k, c]
                self.decided_after[c] = self.observations

    def describe(self, channel: int) -> str:
        """One line on a decided channel, for a log."""
        name = self.CHANNELS[channel]
        return (f"{name} x{self.signs[channel]:+.0f} (t = {self.decided_t[channel]:+.1f} >= {self.confidence:g} after "
                f"{self.decided_after[channel]} odometry ticks, response {self.decided_lag[channel] + 1} ticks after the command)")

    def command(self, intended: np.ndarray) -> np.ndarray:
        """The command that makes the robot do `intended` (forward, turn), remembered for the estimate."""
        sent = np.asarray(intended, np.float64) * self.signs
        self.sent.append(sent)
        return sent


@dataclass(frozen=True)
class ExploreConfig:
    """Behaviour mix of the exploration driver (durations in control steps at 10 Hz)."""

    speed_range: tuple[float, float] = (0.2, 1.0)     # forward of the cruise segments
    speed_segment: tuple[int, int] = (15, 60)          # steps before a new cruise speed is drawn
    turn_noise: float = 0.25                            # std of the OU noise on turn
    forward_noise: float = 0.1                          # std of the OU noise on forward
    noise_tau: float = 5.0                              # OU correlation time, steps
    target_offset: float = 0.03                         # cruise aims at a random offset within +- this, m
    p_drift: float = 0.02                               # chance per cruise step of starting a drift
    drift_turn: tuple[float, float] = (0.2, 0.5)       # |turn bias| during a drift
    drift_limit: float = 0.05                           # m of offset (or 30 deg heading) that ends a drift
    drift_steps: tuple[int, int] = (5, 25)
    p_stop: float = 0.01                                # chance per cruise step of stopping
    stop_steps: tuple[int, int] = (5, 20)
    p_reverse: float = 0.005                            # chance per cruise step of a short reverse
    reverse_steps: tuple[int, int] = (3, 8)
    recover_gain: float = 1.6                           # recovery multiplies the P gains


class ExploreDriver:
    """Reward-free exploration for calibration data: noisy lane keeping at varied speeds, with drifts away
    from the lane centre and recoveries, stops and short reverses. Modes: cruise -> (drift -> recover |
    stop | reverse) -> cruise. Seeded: the same seed and inputs give the same actions.

    Given odometry in the state, it drives the robot it finds: the command channels' signs come from
    `ActuationSigns`, so on a robot with reversed controls the data still shows it driving ahead in the lane
    (the regime a lane-following policy needs modelled) after a few ticks of driving the wrong way."""

    MODES = ("cruise", "drift", "recover", "stop", "reverse")

    input = "state"

    def __init__(self, config: ExploreConfig | None = None, seed: int | None = None, k_offset: float = 10.0, k_heading: float = 3.0):
        self.config = config or ExploreConfig()
        self.k_offset, self.k_heading = k_offset, k_heading
        self.actuation = ActuationSigns()
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None or not hasattr(self, "rng"):
            self.rng = np.random.default_rng(seed)
        self.mode = "cruise"
        self.mode_left = 0
        self.speed = self._draw_speed()
        self.speed_left = self._draw(self.config.speed_segment)
        self.target = self.rng.uniform(-1, 1) * self.config.target_offset
        self.drift_turn = 0.0
        self.noise = np.zeros(2)
        self.mode_counts = dict.fromkeys(self.MODES, 0)
        self.actuation.new_episode()

    def _draw(self, bounds: tuple[int, int]) -> int:
        return int(self.rng.integers(bounds[0], bounds[1] + 1))

    def _draw_speed(self) -> float:
        lo, hi = self.config.speed_range
        return float(self.rng.uniform(lo, hi))

    def _ou(self) -> np.ndarray:
        c = self.config
        a = math.exp(-1.0 / c.noise_tau)
        scale = np.array([c.forward_noise, c.turn_noise]) * math.sqrt(1 - a * a)
        self.noise = a * self.noise + scale * self.rng.standard_normal(2)
        return self.noise

    def _p_turn(self, lane: LaneState, gain: float = 1.0, target: float = 0.0) -> float:
        return -gain * (self.k_offset * (lane.offset - target) + self.k_heading * lane.heading)

    def act(self, obs_or_state: Any) -> np.ndarray:
        c = self.config
        lane = lane_state_of(obs_or_state)
        motion = odometry_of(obs_or_state)
        if motion is not None:
            self.actuation.observe(*motion)
        noise = self._ou()
        self.mode_left -= 1
        if self.mode == "drift" and (self.mode_left <= 0 or abs(lane.offset) > c.drift_limit or abs(lane.heading) > math.radians(30)):
            self.mode, self.mode_left = "recover", 40
        elif self.mode == "recover" and (self.mode_left <= 0 or (abs(lane.offset) < 0.02 and abs(lane.heading) < math.radians(10))):
            self.mode = "cruise"
        elif self.mode in ("stop", "reverse") and self.mode_left <= 0:
            self.mode = "cruise"
        if self.mode == "cruise":
            self.speed_left -= 1
            if self.speed_left <= 0:
                self.speed, self.speed_left = self._draw_speed(), self._draw(c.speed_segment)
                self.target = self.rng.uniform(-1, 1) * c.target_offset
            u = self.rng.uniform()
            if u < c.p_drift:
                self.mode, self.mode_left = "drift", self._draw(c.drift_steps)
                self.drift_turn = float(self.rng.choice([-1, 1]) * self.rng.uniform(*c.drift_turn))
            elif u < c.p_drift + c.p_stop:
                self.mode, self.mode_left = "stop", self._draw(c.stop_steps)
            elif u < c.p_drift + c.p_stop + c.p_reverse:
                self.mode, self.mode_left = "reverse", self._draw(c.reverse_steps)
        self.mode_counts[self.mode] += 1
        if self.mode == "cruise":
            forward, turn = self.speed + noise[0], self._p_turn(lane, 1.0, self.target) + noise[1]
        elif self.mode == "drift":
            forward, turn = self.speed + noise[0], self.drift_turn + 0.5 * noise[1]
        elif self.mode == "recover":
            forward, turn = 0.4 + noise[0], self._p_turn(lane, c.recover_gain) + 0.3 * noise[1]
        elif self.mode == "stop":
            forward, turn = 0.5 * noise[0], 0.5 * noise[1]
        else:  # reverse: back off slowly with a little steering noise
            forward, turn = -0.3 + noise[0], 0.3 * noise[1]
        command = self.actuation.command(np.clip([forward, turn], -1.0, 1.0))
        return command.astype(np.float32)
