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


class DriverInputError(ValueError):
    """A driver got something that is not a lane state."""


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
    """Online estimate of the sign of each command channel (forward, turn) from the robot's odometry.

    The measured (speed, yaw rate) at a tick is regressed through the origin on the command sent `lag`
    ticks before (the motors act late), with forgetting `decay`. A channel's sign is the sign of that
    regression once the command has excited it (`min_excitation`, sum of squared commands) and the cosine
    similarity of command and response reaches `min_similarity`; until then it is +1 (forward drives
    ahead, turn > 0 turns left). A driver multiplies its intended command by the signs; the estimate
    concerns the robot, so it carries over between episodes.
    """

    def __init__(self, lag: int = 2, decay: float = 0.98, min_excitation: float = 1.0, min_similarity: float = 0.5):
        if lag < 0 or not 0.0 < decay <= 1.0 or min_excitation <= 0 or not 0.0 < min_similarity <= 1.0:
            raise ValueError(f"expected lag >= 0, decay in (0, 1], min_excitation > 0 and min_similarity in (0, 1]; found "
                             f"{lag}, {decay}, {min_excitation}, {min_similarity}")
        self.lag, self.decay = int(lag), float(decay)
        self.min_excitation, self.min_similarity = float(min_excitation), float(min_similarity)
        self.signs = np.ones(2)
        self.sent: deque[np.ndarray] = deque(maxlen=self.lag + 1)   # the commands of the last lag + 1 ticks
        self.sxy, self.sxx, self.syy = np.zeros(2), np.zeros(2), np.zeros(2)

    def new_episode(self) -> None:
        """The robot was reset: commands before it no longer explain its motion (the estimate itself stays)."""
        self.sent.clear()

    def observe(self, speed: float, yaw_rate: float) -> None:
        """The measured motion at this tick, before the next command is chosen."""
        if len(self.sent) <= self.lag:
            return
        u = self.sent[0]
        y = np.array([speed, yaw_rate])
        self.sxy = self.decay * self.sxy + u * y
        self.sxx = self.decay * self.sxx + u * u
        self.syy = self.decay * self.syy + y * y
        similarity = self.sxy / np.sqrt(np.maximum(self.sxx * self.syy, 1e-12))
        known = (self.sxx >= self.min_excitation) & (np.abs(similarity) >= self.min_similarity)
        self.signs = np.where(known, np.sign(self.sxy), self.signs)

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
