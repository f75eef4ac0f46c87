"""Declare a config dataclass (KinematicsConfig, PreprocessConfig) as ROS 2 node parameters.

    kin = declare_config(node, "kinematics", KinematicsConfig)    # kinematics.gain, kinematics.trim, ...

Each field becomes a parameter `<prefix>.<field>` (nested YAML `kinematics: {gain: 1.0}` in a params file)
with the dataclass default. Values are read once and validated by the dataclass's `from_dict`, so a bad
value fails at start with the dataclass's own error message. No ROS import at module level.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any


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
