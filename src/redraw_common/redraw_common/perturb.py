"""Dynamics perturbations named in a string: "name[:value][,name[:value]...]" ("" = nominal), one vocabulary for
every env of the project. Each env has its own table of known perturbations (redraw_sim.perturb: Duckietown and DMC;
redraw_training.envs.pointgoal: the synthetic env) and parses its `perturb` against it:

    >>> parse_perturb("trim:0.1,delay:0.2", DUCKIETOWN_PERTURBATIONS)
    {'trim': 0.1, 'delay': 0.2}

A perturbation without a value takes its flag value ("reversed" == "reversed:1"); one whose table entry has no
flag value needs one. Names may appear once; values are finite and within the entry's range.
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
