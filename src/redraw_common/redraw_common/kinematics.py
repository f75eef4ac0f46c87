"""Policy action (forward, turn) in [-1, 1]^2 <-> Duckiebot wheel commands (vel_left, vel_right).

The model follows the Duckietown differential-drive convention:

    v      = forward * max_forward                      linear velocity, m/s
    omega  = turn * max_turn                            yaw rate, rad/s, positive = counter-clockwise (left)
    w_r    = (v + omega * baseline / 2) / radius        wheel angular velocities, rad/s
    w_l    = (v - omega * baseline / 2) / radius
    right  = w_r * (gain + trim) / k                    normalised wheel commands (duty cycle)
    left   = w_l * (gain - trim) / k

then each command is clamped to [-limit, limit]. `wheels_to_action` is the exact inverse wherever
no clamping happened; its result is clamped to [-1, 1] (a wheel command that no action in range could
produce maps to the nearest action in range, and `clamped` says so).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

from .errors import KinematicsError


@dataclass(frozen=True)
class KinematicsConfig:
    gain: float = 1.0          # overall motor gain (Duckietown 'gain')
    trim: float = 0.0          # right/left imbalance: right gets gain+trim, left gain-trim
    baseline: float = 0.1      # distance between the wheels, m
    radius: float = 0.0318     # wheel radius, m
    k: float = 27.0            # motor constant: wheel angular velocity (rad/s) at command 1
    max_forward: float = 0.4   # linear velocity at forward = 1, m/s
    max_turn: float = 4.0      # yaw rate at turn = 1, rad/s
    limit: float = 1.0         # wheel commands are clamped to [-limit, limit]

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise KinematicsError(f"kinematics {f.name} must be a finite number, found {value!r}")
        for name in ("gain", "baseline", "radius", "k", "max_forward", "max_turn"):
            if getattr(self, name) <= 0:
                raise KinematicsError(f"kinematics {name} must be > 0, found {getattr(self, name)}")
        if abs(self.trim) >= self.gain:
            raise KinematicsError(f"kinematics |trim| must be < gain ({self.gain}), found trim={self.trim}")
        if not 0 < self.limit <= 1:
            raise KinematicsError(f"kinematics limit must be in (0, 1], found {self.limit}")

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KinematicsConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KinematicsError(f"unknown kinematics settings {unknown}; expected a subset of {sorted(known)}")
        return cls(**{k: float(v) for k, v in d.items()})


class WheelCommand(NamedTuple):
    left: float
    right: float
    clamped: bool  # True if either wheel command hit the limit


class Action(NamedTuple):
    forward: float
    turn: float
    clamped: bool  # True if the exact inverse fell outside [-1, 1]


def _finite(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise KinematicsError(f"{name} must be a number, found {value!r}") from None
    if not math.isfinite(value):
        raise KinematicsError(f"{name} must be finite, found {value}")
    return value


def _clamp(value: float, bound: float, eps: float = 0.0) -> tuple[float, bool]:
    """Clamp to [-bound, bound]; `clamped` is True only if the value exceeded the bound by more than eps."""
    if value > bound:
        return bound, value > bound + eps
    if value < -bound:
        return -bound, value < -bound - eps
    return value, False


def action_to_wheels(forward: float, turn: float, cfg: KinematicsConfig | None = None, *, strict: bool = True) -> WheelCommand:
    """(forward, turn) -> wheel commands. NaN/inf always raise; values outside [-1, 1] raise if `strict`,
    else are clipped to [-1, 1] first."""
    cfg = cfg or KinematicsConfig()
    forward, turn = _finite("forward", forward), _finite("turn", turn)
    if strict and (abs(forward) > 1.0 or abs(turn) > 1.0):
        raise KinematicsError(f"action must be in [-1, 1]^2, found forward={forward}, turn={turn}")
    forward, _ = _clamp(forward, 1.0)
    turn, _ = _clamp(turn, 1.0)
    v = forward * cfg.max_forward
    omega = turn * cfg.max_turn
    w_r = (v + 0.5 * omega * cfg.baseline) / cfg.radius
    w_l = (v - 0.5 * omega * cfg.baseline) / cfg.radius
    right, cr = _clamp(w_r * (cfg.gain + cfg.trim) / cfg.k, cfg.limit)
    left, cl = _clamp(w_l * (cfg.gain - cfg.trim) / cfg.k, cfg.limit)
    return WheelCommand(left, right, cr or cl)


def wheels_to_action(left: float, right: float, cfg: KinematicsConfig | None = None) -> Action:
    """Wheel commands -> (forward, turn), the exact inverse of `action_to_wheels` without clamping."""
    cfg = cfg or KinematicsConfig()
    left, right = _finite("vel_left", left), _finite("vel_right", right)
    w_r = right * cfg.k / (cfg.gain + cfg.trim)
    w_l = left * cfg.k / (cfg.gain - cfg.trim)
    v = cfg.radius * (w_r + w_l) / 2.0
    omega = cfg.radius * (w_r - w_l) / cfg.baseline
    forward, cf = _clamp(v / cfg.max_forward, 1.0, eps=1e-9)  # eps: round-off of the exact inverse at +-1
    turn, ct = _clamp(omega / cfg.max_turn, 1.0, eps=1e-9)
    return Action(forward, turn, cf or ct)
