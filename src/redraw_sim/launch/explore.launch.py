"""Drive a robot (the digital twin) for reward-free calibration data: the exploration driver.

    ros2 launch redraw_sim explore.launch.py robot:=db1
    ros2 launch redraw_sim explore.launch.py robot:=db1 use_sim_time:=true    # next to a twin publishing /clock
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="duckiebot", description="robot name = namespace of its topics"),
        DeclareLaunchArgument("driver", default_value="explore", description="explore (reward-free explorer) or expert (P-controller)"),
        DeclareLaunchArgument("seed", default_value="0", description="seed of the explorer"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow the twin's /clock"),
        Node(
            package="redraw_sim",
            executable="explore_node",
            name="explorer",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            parameters=[
                PathJoinSubstitution([FindPackageShare("redraw_sim"), "config", "explore.yaml"]),
                {
                    "driver": LaunchConfiguration("driver"),
                    "seed": LaunchConfiguration("seed"),
                    "use_sim_time": LaunchConfiguration("use_sim_time"),
                },
            ],
        ),
    ])
