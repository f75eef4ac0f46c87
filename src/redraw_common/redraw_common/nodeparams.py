"""Declare ROS 2 node parameters: one parameter (`declare_param`) or a config dataclass (`declare_config`).

    rate = declare_param(node, "control_hz", 10.0, "control rate, Hz")   # control_hz:=40 (an integer) gives 40.0
    kin = declare_config(node, "kinematics", KinematicsConfig)    # kinematics.gain, kinematics.trim, ...

A parameter takes the type of its default: an integer for a float parameter is accepted (`:=40` on the command line
is an integer), anything else of the wrong type is a RedrawInputError naming the parameter, the value and the type.

Each field becomes a parameter `<prefix>.<field>` (nested YAML `kinematics: {gain: 1.0}` in a params file)
with the dataclass default. Values are read once and validated by the dataclass's `from_dict`, so a bad
value fails at start with the dataclass's own error message. No ROS import at module level.
"""

from __future__ import annotations

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


def declare_param(node: Any, name: str, default: Any, description: str) -> Any:
    """Declare one parameter with `default` and `description`; its value, as the default's type (coerce_param)."""
    from rcl_interfaces.msg import ParameterDescriptor

    value = node.declare_parameter(name, default, ParameterDescriptor(description=description, dynamic_typing=True)).value
    return coerce_param(name, value, default)


def declare_config(node: Any, prefix: str, cls: type, description: str = "") -> Any:
    from rcl_interfaces.msg import ParameterDescriptor

    values = {}
    defaults = cls()
    for f in fields(cls):
        default = getattr(defaults, f.name)
        if isinstance(default, tuple):
            default = list(default)
        name = f"{prefix}.{f.name}"
        # dynamic typing: a YAML `gain: 1` (int) for a float field must not be a type error
        descriptor = ParameterDescriptor(description=f"{description} {f.name}".strip(), dynamic_typing=True)
        value = node.declare_parameter(name, default, descriptor).value
        values[f.name] = list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "array" else value
    return cls.from_dict(values)
