# A launch file in redraw's conventions, used to test tests/helpers/launchfile.py.
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="duckiebot"),
        Node(
            package="redraw_recorder",
            executable="recorder",
            name="recorder",
            namespace=LaunchConfiguration("robot"),
            parameters=[PathJoinSubstitution([FindPackageShare("redraw_recorder"), "config", "record.yaml"]),
                        {"robot": LaunchConfiguration("robot"), "max_transitions": 100}],
        ),
        Node(
            package="redraw_sim",
            executable="twin",
            parameters=[os.path.join(get_package_share_directory("redraw_sim"), "config", "twin.yaml")],
        ),
    ])
