"""Declare ROS 2 node parameters: one parameter (`declare_param`) or a config dataclass (`declare_config`).

    rate = declare_param(node, "control_hz", 10.0, "control rate, Hz")   # control_hz:=40 (an integer) gives 40.0
    kin = declare_config(node, "kinematics", KinematicsConfig)    # kinematics.gain, kinematics.trim, ...

A parameter takes the type of its default: an integer for a float parameter is accepted (`:=40` on the command line
is an integer), anything else of the wrong type is a RedrawInputError naming the parameter, the value and the type.
Inclusive bounds (`low`, `high`) are checked the same way and shown as the descriptor's range. Every parameter is
read-only: the nodes read them once, at start, so `ros2 param set` is refused instead of reporting a change that
never happens.

Each field becomes a parameter `<prefix>.<field>` (nested YAML `kinematics: {gain: 1.0}` in a params file)
with the dataclass default. Values are read once and validated by the dataclass's `from_dict`, so a bad
value fails at start with the dataclass's own error message. No ROS import at module level.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from .errors import RedrawInputError


def coerce_param(name: str, value: Any, default: Any) -> Any:
    """`value` as the type of `default` (int -> float allowed, integral float -> int allowed)."""
    kind = type(default)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool and isinstance(value, bool) or kind is str and isinstance(value, str):
        return value
    if kind is float and numeric:
        return float(value)
    if kind is int and numeric and float(value).is_integer():
        return int(value)
    if kind not in (bool, str, float, int):
        return value
    expected = {bool: "true or false", str: "a string", float: "a number", int: "an integer"}[kind]
    raise RedrawInputError(f"parameter {name} must be {expected}, found {value!r} ({type(value).__name__})")


def bounds_problem(name: str, value: Any, low: float | None, high: float | None) -> str | None:
    """Why `value` is outside [low, high] (None = unbounded on that side), as a sentence; None when it is inside."""
    if (low is None or value >= low) and (high is None or value <= high):
        return None
    wanted = f"in [{low:g}, {high:g}]" if low is not None and high is not None else (f">= {low:g}" if low is not None else f"<= {high:g}")
    return f"parameter {name} must be {wanted}, found {value!r}"


def _descriptor(description: str, default: Any, low: float | None, high: float | None):
    """Read-only (every redraw parameter is read once, at start: `ros2 param set` must refuse, not pretend), any
    numeric type (an integer on the command line for a float parameter), and the bounds as a range."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(description=description, dynamic_typing=True, read_only=True)
    if low is not None or high is not None:
        if isinstance(default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=-math.inf if low is None else float(low),
                                                                  to_value=math.inf if high is None else float(high), step=0.0)]
        else:
            descriptor.integer_range = [IntegerRange(from_value=-(2**63) if low is None else int(low),
                                                     to_value=2**63 - 1 if high is None else int(high), step=1)]
    return descriptor


def declare_param(node: Any, name: str, default: Any, description: str, *, low: float | None = None, high: float | None = None) -> Any:
    """Declare one parameter with `default` and `description`; its value, as the default's type (coerce_param),
    within [low, high] where given (else a RedrawInputError naming parameter, bounds and value). The parameter is
    read-only once declared, with the bounds in its descriptor (`ros2 param describe`)."""
    from rcl_interfaces.msg import ParameterDescriptor

    # declared without bounds, so that a value out of them gets this module's message rather than rclpy's; then
    # the full descriptor (read-only, the range) replaces the declaration's
    value = node.declare_parameter(name, default, ParameterDescriptor(description=description, dynamic_typing=True)).value
    value = coerce_param(name, value, default)
    if low is not None or high is not None:
        problem = bounds_problem(name, value, low, high)
        if problem:
            raise RedrawInputError(problem)
    node.set_descriptor(name, _descriptor(description, default, low, high))
    return value


def declare_config(node: Any, prefix: str, cls: type, description: str = "") -> Any:
    from rcl_interfaces.msg import ParameterDescriptor

    values = {}
    defaults = cls()
    for f in fields(cls):
        default = getattr(defaults, f.name)
        if isinstance(default, tuple):
            default = list(default)
        name = f"{prefix}.{f.name}"
        # dynamic typing: a YAML `gain: 1` (int) for a float field must not be a type error; read once: read-only
        descriptor = ParameterDescriptor(description=f"{description} {f.name}".strip(), dynamic_typing=True, read_only=True)
        value = node.declare_parameter(name, default, descriptor).value
        values[f.name] = list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "array" else value
    return cls.from_dict(values)
