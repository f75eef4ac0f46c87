"""The digital twin: a simulated Duckiebot under /<robot> with the robot's topics (camera, wheels, episodes).

    ros2 launch redraw_sim twin.launch.py robot:=db1 perturb:=reversed
    ros2 launch redraw_sim twin.launch.py robot:=db1 use_sim_time:=true real_time_factor:=4.0   # faster, on /clock
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="duckiebot", description="robot name = namespace of its topics"),
        DeclareLaunchArgument("perturb", default_value="", description="dynamics perturbation, e.g. 'reversed' or 'trim:0.1,delay:0.2'"),
        DeclareLaunchArgument("map_name", default_value="loop_empty", description="Duckietown loop map"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="publish the simulated time on /clock"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0", description="simulated seconds per wall second"),
        Node(
            package="redraw_sim",
            executable="twin_node",
            name="twin",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            parameters=[
                PathJoinSubstitution([FindPackageShare("redraw_sim"), "config", "twin.yaml"]),
                {
                    "perturb": LaunchConfiguration("perturb"),
                    "map_name": LaunchConfiguration("map_name"),
                    "publish_clock": LaunchConfiguration("use_sim_time"),
                    "real_time_factor": LaunchConfiguration("real_time_factor"),
                },
            ],
        ),
    ])
