"""Robot profiles: the shipped ones load and name real message types; a bad profile is refused saying what is wrong;
the odometry adapter reads the velocity from either supported type."""

from types import SimpleNamespace

import pytest

from redraw_common import topics
from redraw_common.robot_profile import (
    DEFAULT,
    ROLES,
    SUPPORTED,
    ProfileError,
    available,
    from_dict,
    load,
    message_class,
    velocity,
)

TWIN = {"name": "lab", "camera": {"topic": "cam/image/compressed", "type": "sensor_msgs/msg/CompressedImage"},
        "odometry": {"topic": "odom", "type": "nav_msgs/msg/Odometry"},
        "wheels_cmd": {"topic": "wheels_cmd", "type": "duckietown_msgs/msg/WheelsCmdStamped"},
        "estop": {"topic": "emergency_stop", "type": "std_msgs/msg/Bool"}}


def test_the_shipped_profiles_load_and_their_types_are_installed():
    assert available() == ["duckietown-ros1-bridge", "duckietown-ros2", "twin"] and DEFAULT in available()
    for name in available():
        profile = load(name)
        assert profile.name == name and profile.source == f"redraw_common/profiles/{name}.yaml"
        for role in ROLES:
            endpoint = profile.endpoint(role)
            assert endpoint.type in SUPPORTED[role]
            cls = message_class(endpoint.type)
            assert f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}" == endpoint.type


def test_the_twin_profile_is_the_twins_topics():
    twin = load("twin")
    assert (twin.camera.topic, twin.odometry.topic, twin.wheels_cmd.topic, twin.estop.topic) == (
        topics.CAMERA, topics.ODOM_VELOCITY, topics.WHEELS_CMD, topics.ESTOP)


def test_a_profile_yaml_by_path(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("\n".join(f"{k}: {v}" for k, v in TWIN.items()).replace("'", ""))
    profile = load(str(path))
    assert profile.name == "lab" and profile.odometry.type == "nav_msgs/msg/Odometry" and profile.source == str(path)


@pytest.mark.parametrize("change, match", [
    ({"odometry": {"topic": "odom", "type": "geometry_msgs/msg/Twist"}},
     r"odometry.type must be one of \['geometry_msgs/msg/TwistStamped', 'nav_msgs/msg/Odometry'\], found 'geometry_msgs/msg/Twist'"),
    ({"camera": {"topic": "/db/image", "type": "sensor_msgs/msg/CompressedImage"}},
     r"camera.topic must be a ROS name relative to the robot namespace \(no leading '/'\), found '/db/image'"),
    ({"estop": "emergency_stop"}, r"estop must be a mapping of topic and type, found 'emergency_stop'"),
    ({"wheels": {}}, r"unknown keys \['wheels'\]; expected exactly name and"),
    ({"name": ""}, r"name must be a non-empty string, found ''"),
])
def test_a_bad_profile_says_what_is_wrong(change, match):
    with pytest.raises(ProfileError, match=match):
        from_dict({**TWIN, **change}, "lab.yaml")


def test_missing_roles_unknown_names_and_bad_yaml(tmp_path):
    with pytest.raises(ProfileError, match=r"lab.yaml: missing \['estop'\]"):
        from_dict({k: v for k, v in TWIN.items() if k != "estop"}, "lab.yaml")
    with pytest.raises(ProfileError, match=r"unknown robot profile 'duckiebot'; expected one of \['duckietown-ros1-bridge', "):
        load("duckiebot")
    with pytest.raises(ProfileError, match=r"robot profile file .*nothing.yaml not found"):
        load(str(tmp_path / "nothing.yaml"))
    (tmp_path / "bad.yaml").write_text("name: [lab\n")
    with pytest.raises(ProfileError, match=r"bad.yaml is not valid YAML"):
        load(str(tmp_path / "bad.yaml"))
    (tmp_path / "list.yaml").write_text("- lab\n")
    with pytest.raises(ProfileError, match=r"list.yaml: expected a mapping with name and camera, odometry, wheels_cmd, estop, found list"):
        load(str(tmp_path / "list.yaml"))


def test_velocity_reads_either_odometry_type():
    twist = SimpleNamespace(linear=SimpleNamespace(x=0.3), angular=SimpleNamespace(z=-1.5))
    assert velocity(SimpleNamespace(twist=twist), "geometry_msgs/msg/TwistStamped") == (0.3, -1.5)
    assert velocity(SimpleNamespace(twist=SimpleNamespace(twist=twist)), "nav_msgs/msg/Odometry") == (0.3, -1.5)
    with pytest.raises(ProfileError, match=r"odometry type must be one of .*found 'geometry_msgs/msg/Twist'"):
        velocity(twist, "geometry_msgs/msg/Twist")


def test_velocity_reads_real_ros_messages():
    from geometry_msgs.msg import TwistStamped
    from nav_msgs.msg import Odometry

    stamped, odometry = TwistStamped(), Odometry()
    stamped.twist.linear.x, stamped.twist.angular.z = 0.25, 2.0
    odometry.twist.twist.linear.x, odometry.twist.twist.angular.z = 0.25, 2.0
    assert velocity(stamped, "geometry_msgs/msg/TwistStamped") == velocity(odometry, "nav_msgs/msg/Odometry") == (0.25, 2.0)


def test_message_class_names_what_is_missing():
    with pytest.raises(ProfileError, match=r"message type must read <package>/msg/<Name>, found 'Bool'"):
        message_class("Bool")
    with pytest.raises(ProfileError, match=r"message package no_such_msgs is not installed, needed for no_such_msgs/msg/X"):
        message_class("no_such_msgs/msg/X")
    with pytest.raises(ProfileError, match=r"package std_msgs has no message Nothing"):
        message_class("std_msgs/msg/Nothing")
