"""Dynamics perturbations named in a string: "name[:value][,name[:value]...]" ("" = nominal).

Every simulator of redraw_sim takes `perturb: str` and parses it against its own table of known
perturbations, e.g. the Duckietown table:

    >>> parse_perturb("trim:0.1,delay:0.2", DUCKIETOWN_PERTURBATIONS)
    {'trim': 0.1, 'delay': 0.2}

A perturbation without a value takes its flag value ("reversed" == "reversed:1"). Names may appear once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redraw_common.errors import RedrawInputError


class PerturbError(RedrawInputError):
    """A perturbation string names an unknown perturbation or an invalid value."""


@dataclass(frozen=True)
class PerturbSpec:
    """One known perturbation: what it does, its nominal value, the value of the bare flag, a range check."""

    help: str
    nominal: float
    flag_value: float | None = None                  # value when given without ':value'; None = value required
    check: Callable[[float], bool] = lambda v: True
    check_text: str = "any finite number"


#: Duckietown (the lane-following sim and the digital twin): applied to the wheel commands / motor model
#: inside the simulator, never visible in observations.
DUCKIETOWN_PERTURBATIONS: dict[str, PerturbSpec] = {
    "reversed": PerturbSpec("negate both wheel commands (forward and turn flip)", 0.0, 1.0,
                            lambda v: v in (0.0, 1.0), "0 or 1"),
    "trim": PerturbSpec("wheel imbalance t: right motor x(1+t), left motor x(1-t) (t > 0 drifts left)", 0.0, None,
                        lambda v: -0.5 <= v <= 0.5, "in [-0.5, 0.5]"),
    "gain": PerturbSpec("motor gain g: both motors x g (speed and yaw rate scale)", 1.0, None,
                        lambda v: 0.1 <= v <= 3.0, "in [0.1, 3]"),
    "delay": PerturbSpec("extra actuation delay in seconds, on top of the simulator's 0.15 s", 0.0, None,
                         lambda v: 0.0 <= v <= 2.0, "in [0, 2] s"),
}

#: DeepMind Control: applied in Task.before_step on every control step (METHOD.md 8.1).
DMC_PERTURBATIONS: dict[str, PerturbSpec] = {
    "reversed": PerturbSpec("set_control(-action)", 0.0, 1.0, lambda v: v in (0.0, 1.0), "0 or 1"),
    "wind": PerturbSpec("constant force F (N) on the ball along -x (ball_in_cup only)", 0.0, 2.0,
                        lambda v: abs(v) <= 100, "|F| <= 100 N"),
    "torque": PerturbSpec("constant torque T (N m) about world y on the spinner (finger only)", 0.0, 4.0,
                          lambda v: abs(v) <= 100, "|T| <= 100 N m"),
}


def parse_perturb(text: str | None, known: Mapping[str, PerturbSpec]) -> dict[str, float]:
    """Parse "name[:value],..." into {name: value}, checking names, values and ranges. "" -> {}."""
    if text is None:
        return {}
    if not isinstance(text, str):
        raise PerturbError(f"perturb must be a string like 'trim:0.1,delay:0.2', found {type(text).__name__}")
    out: dict[str, float] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value_text = (part.strip() for part in item.partition(":"))
        if name not in known:
            raise PerturbError(f"unknown perturbation {name!r} in {text!r}; expected one of {sorted(known)}")
        if name in out:
            raise PerturbError(f"perturbation {name!r} given twice in {text!r}")
        spec = known[name]
        if not sep:
            if spec.flag_value is None:
                raise PerturbError(f"perturbation {name!r} needs a value ({name}:<{spec.check_text}>), found none in {text!r}")
            value = spec.flag_value
        else:
            try:
                value = float(value_text)
            except ValueError:
                raise PerturbError(f"perturbation {name!r} needs a number, found {value_text!r} in {text!r}") from None
        if not math.isfinite(value) or not spec.check(value):
            raise PerturbError(f"perturbation {name!r} must be {spec.check_text}, found {value!r}")
        out[name] = float(value)
    return out


def format_perturb(values: Mapping[str, float], known: Mapping[str, PerturbSpec]) -> str:
    """The canonical string of a perturbation dict (nominal entries dropped, names in table order)."""
    parts = []
    for name, spec in known.items():
        if name in values and values[name] != spec.nominal:
            value = values[name]
            parts.append(name if spec.flag_value is not None and value == spec.flag_value else f"{name}:{value:g}")
    return ",".join(parts)
