"""Robot profiles: where a robot's own drivers publish the camera and the odometry and take the wheel commands
and the e-stop, and in which message types. One YAML per robot stack in `redraw_common/profiles/`:

    twin                    the project's digital twin (redraw_sim.twin_node)
    duckietown-ros2         Duckietown's ROS 2 interface (dt-ros2-interface)
    duckietown-ros1-bridge  a DB21's stock ROS 1 stack (dt-duckiebot-interface + dt-core) through ros1_bridge

    profile = load("duckietown-ros2")        # or the path of a lab's own YAML of the same shape
    profile.wheels_cmd.topic                 # 'wheels_cmd', relative to the robot namespace /<robot>
    velocity(msg, profile.odometry.type)     # (forward m/s, yaw rate rad/s) from either odometry type

Each role names a topic relative to the robot namespace and a message type; the type picks the adapter, so a
profile is data only: odometry is geometry_msgs/TwistStamped (twist.linear.x, twist.angular.z) or
nav_msgs/Odometry (twist.twist.linear.x, twist.twist.angular.z); wheel commands are redraw_msgs or
duckietown_msgs WheelsCmdStamped (header, vel_left, vel_right: the same fields); the e-stop is std_msgs/Bool or
duckietown_msgs/BoolStamped (`data` in both). The adapters read attributes only, so they serve rclpy messages on
the robot and rosbags' decoded messages in the bag converter alike. No ROS import at module level.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import RedrawInputError

DEFAULT = "twin"
ROLES = ("camera", "odometry", "wheels_cmd", "estop")
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
ODOMETRY = "nav_msgs/msg/Odometry"
SUPPORTED = {
    "camera": ("sensor_msgs/msg/CompressedImage",),
    "odometry": (TWIST_STAMPED, ODOMETRY),
    "wheels_cmd": ("redraw_msgs/msg/WheelsCmdStamped", "duckietown_msgs/msg/WheelsCmdStamped"),
    "estop": ("std_msgs/msg/Bool", "duckietown_msgs/msg/BoolStamped"),
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


class ProfileError(RedrawInputError):
    """A robot profile that cannot be used: unknown name, bad YAML, a missing role, an unsupported type."""


@dataclass(frozen=True)
class Endpoint:
    topic: str   # relative to the robot namespace
    type: str    # "<package>/msg/<Name>"


@dataclass(frozen=True)
class RobotProfile:
    name: str
    source: str   # the YAML it came from
    camera: Endpoint
    odometry: Endpoint
    wheels_cmd: Endpoint
    estop: Endpoint

    def endpoint(self, role: str) -> Endpoint:
        if role not in ROLES:
            raise KeyError(f"unknown role {role!r}; a profile has {list(ROLES)}")
        return getattr(self, role)


def available() -> list[str]:
    """Names of the profiles shipped with redraw_common."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(__package__).joinpath("profiles").iterdir()
                  if p.name.endswith(".yaml"))


def load(spec: str) -> RobotProfile:
    """A shipped profile by name, or a YAML file by path (a path contains '/' or ends in .yaml)."""
    import yaml

    spec = str(spec).strip()
    if "/" in spec or spec.endswith((".yaml", ".yml")):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ProfileError(f"robot profile file {path} not found; expected a YAML file or one of the shipped profiles {available()}")
        text, source = path.read_text(), str(path)
    else:
        if spec not in available():
            raise ProfileError(f"unknown robot profile {spec!r}; expected one of {available()} or the path of a profile YAML")
        res = resources.files(__package__).joinpath("profiles", f"{spec}.yaml")
        text, source = res.read_text(), f"redraw_common/profiles/{spec}.yaml"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"robot profile {source} is not valid YAML: {exc}") from None
    return from_dict(data, source)


def from_dict(data: Any, source: str = "robot profile") -> RobotProfile:
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: expected a mapping with name and {', '.join(ROLES)}, found {type(data).__name__}")
    unknown = sorted(set(data) - {"name", *ROLES})
    missing = [r for r in ("name", *ROLES) if r not in data]
    if unknown or missing:
        raise ProfileError(f"{source}: " + "; ".join(
            ([f"missing {missing}"] if missing else []) + ([f"unknown keys {unknown}"] if unknown else []))
            + f"; expected exactly name and {list(ROLES)}")
    endpoints = {}
    problems = []
    for role in ROLES:
        entry = data[role]
        if not (isinstance(entry, dict) and set(entry) == {"topic", "type"}):
            problems.append(f"{role} must be a mapping of topic and type, found {entry!r}")
            continue
        topic, msgtype = entry["topic"], entry["type"]
        if not (isinstance(topic, str) and _NAME.fullmatch(topic)):
            problems.append(f"{role}.topic must be a ROS name relative to the robot namespace (no leading '/'), found {topic!r}")
        if msgtype not in SUPPORTED[role]:
            problems.append(f"{role}.type must be one of {list(SUPPORTED[role])}, found {msgtype!r}")
        endpoints[role] = Endpoint(str(topic), str(msgtype))
    if not isinstance(data["name"], str) or not data["name"]:
        problems.append(f"name must be a non-empty string, found {data['name']!r}")
    if problems:
        raise ProfileError(f"{source}: " + "; ".join(problems))
    return RobotProfile(name=data["name"], source=source, **endpoints)


# ---------------------------------------------------------------------------------------------------
# Adapters: the type of a role picks how its message is read or filled
# ---------------------------------------------------------------------------------------------------

def velocity(msg: Any, msgtype: str) -> tuple[float, float]:
    """(forward m/s, yaw rate rad/s) of an odometry message of `msgtype` (either supported type)."""
    if msgtype not in SUPPORTED["odometry"]:
        raise ProfileError(f"odometry type must be one of {list(SUPPORTED['odometry'])}, found {msgtype!r}")
    twist = msg.twist.twist if msgtype == ODOMETRY else msg.twist
    return float(twist.linear.x), float(twist.angular.z)


def message_class(msgtype: str) -> type:
    """The rclpy message class of "<package>/msg/<Name>" (its package must be installed: built or sourced)."""
    package, kind, name = (msgtype.split("/") + ["", ""])[:3]
    if kind != "msg" or not package or not name:
        raise ProfileError(f"message type must read <package>/msg/<Name>, found {msgtype!r}")
    try:
        module = importlib.import_module(f"{package}.msg")
    except ImportError:
        raise ProfileError(f"message package {package} is not installed, needed for {msgtype}: build the workspace "
                           f"(colcon build, then source install/setup.bash) or install {package}") from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise ProfileError(f"package {package} has no message {name} (needed for {msgtype})") from None
