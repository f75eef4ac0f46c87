"""Bring-up for calibration data: the digital twin (a perturbed robot) + the exploration driver + the recorder.

    ros2 launch launch/twin_record.launch.py robot:=db1 perturb:=reversed output:=/data/bags/db1_rev max_transitions:=10000
    ros2 launch launch/twin_record.launch.py ... use_sim_time:=true real_time_factor:=2.0     # faster than real time

Every node follows the twin's /clock when use_sim_time is true, so the recording is the same at any speed.
The twin publishes its measured velocity (deadreckoning_node/velocity) like a robot's wheel odometry; the recorder
records it with the camera, for models whose observation includes it.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    # LaunchConfiguration(...) inline in every Node: tests read these declarations (tests/helpers/launchfile.py)
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="duckiebot", description="robot name = namespace of its topics"),
        DeclareLaunchArgument("perturb", default_value="reversed", description="the twin's dynamics perturbation ('' = nominal)"),
        DeclareLaunchArgument("driver", default_value="explore", description="explore (reward-free) or expert (P-controller)"),
        DeclareLaunchArgument("output", default_value="", description="recording folder to create (empty: automatic name)"),
        DeclareLaunchArgument("max_transitions", default_value="0", description="stop recording after N transitions (0 = no limit)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="the twin publishes /clock and every node follows it"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0", description="simulated seconds per wall second"),
        Node(
            package="redraw_sim",
            executable="twin_node",
            name="twin",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            parameters=[
                PathJoinSubstitution([FindPackageShare("redraw_sim"), "config", "twin.yaml"]),
                {"perturb": LaunchConfiguration("perturb"), "publish_clock": LaunchConfiguration("use_sim_time"),
                 "real_time_factor": LaunchConfiguration("real_time_factor")},
            ],
        ),
        Node(
            package="redraw_sim",
            executable="explore_node",
            name="explorer",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            parameters=[
                PathJoinSubstitution([FindPackageShare("redraw_sim"), "config", "explore.yaml"]),
                {"driver": LaunchConfiguration("driver"), "use_sim_time": LaunchConfiguration("use_sim_time")},
            ],
        ),
        Node(
            package="redraw_recorder",
            executable="recorder",
            name="recorder",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            parameters=[
                PathJoinSubstitution([FindPackageShare("redraw_recorder"), "config", "record.yaml"]),
                # the twin's camera is reliable: a reliable subscription gets every frame it renders, where a
                # best-effort one (record.yaml's default, for any robot's camera) lost 13 of 1282 frames with both
                # cores busy
                {"robot": LaunchConfiguration("robot"), "output": LaunchConfiguration("output"), "max_transitions": LaunchConfiguration("max_transitions"),
                 "use_sim_time": LaunchConfiguration("use_sim_time"), "camera_best_effort": False},
            ],
        ),
    ])
