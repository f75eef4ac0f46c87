"""Scripted teleop: an operator's command sequence without keyboard or joystick (DriveAction source TELEOP).

    ros2 launch redraw_sim teleop.launch.py robot:=db1
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="duckiebot", description="robot name = namespace of its topics"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow the twin's /clock"),
        Node(
            package="redraw_sim",
            executable="teleop_node",
            name="teleop",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            parameters=[
                PathJoinSubstitution([FindPackageShare("redraw_sim"), "config", "teleop.yaml"]),
                {"use_sim_time": LaunchConfiguration("use_sim_time")},
            ],
        ),
    ])
