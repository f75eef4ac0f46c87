"""Record one robot: camera, wheel commands, actions, episode events and odometry -> a recording (rosbag2, mcap).

    ros2 launch redraw_recorder record.launch.py robot:=db1 output:=/data/bags/run1 max_transitions:=10000
    ros2 launch redraw_recorder record.launch.py robot:=db1 robot_profile:=duckietown-ros2     # a Duckiebot's drivers
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="duckiebot", description="robot name = namespace of its topics"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock (next to a twin that publishes it)"),
        DeclareLaunchArgument("robot_profile", default_value="twin",
                              description="driver topics and types: twin, duckietown-ros2, duckietown-ros1-bridge or a profile YAML"),
        DeclareLaunchArgument("output", default_value="", description="recording folder to create (empty: automatic name)"),
        DeclareLaunchArgument("max_transitions", default_value="0", description="stop after N transitions (0 = no limit)"),
        DeclareLaunchArgument("max_duration", default_value="0.0", description="stop after T seconds (0 = no limit)"),
        DeclareLaunchArgument("camera_best_effort", default_value="true",
                              description="best-effort camera subscription (matches any camera); false: reliable, every frame of a reliable camera"),
        Node(
            package="redraw_recorder",
            executable="recorder",
            name="recorder",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            parameters=[
                PathJoinSubstitution([FindPackageShare("redraw_recorder"), "config", "record.yaml"]),
                {
                    "robot": LaunchConfiguration("robot"),
                    "robot_profile": LaunchConfiguration("robot_profile"),
                    "output": LaunchConfiguration("output"),
                    "max_transitions": LaunchConfiguration("max_transitions"),
                    "max_duration": LaunchConfiguration("max_duration"),
                    "use_sim_time": LaunchConfiguration("use_sim_time"),
                    "camera_best_effort": LaunchConfiguration("camera_best_effort"),
                },
            ],
        ),
    ])
