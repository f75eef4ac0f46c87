"""Bring-up for closed-loop driving in simulation: the digital twin + the policy node with an exported model.

    ros2 launch launch/twin_drive.launch.py robot:=db1 perturb:=reversed model:=runs/calib/export/policy.onnx

Both nodes share the robot's namespace: the policy node acts on the twin's camera frames (event-driven, at the
model's control rate) and, for a model with a `vector` input, reads the twin's measured velocity on
deadreckoning_node/velocity (the twin publishes it with every frame; without it the wheels stay at zero and
redraw/policy_status says stale_odometry).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    # The packages' own launch files, included with LaunchConfiguration(...) inline: tests and sim2real read these
    # declarations statically (redraw_common.bringup follows IncludeLaunchDescription into the installed files).
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="duckiebot", description="robot name = namespace of its topics"),
        DeclareLaunchArgument("perturb", default_value="", description="the twin's dynamics perturbation ('' = nominal)"),
        DeclareLaunchArgument("model", default_value="/models/policy.onnx", description="exported policy; its manifest lies next to it"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="the twin publishes /clock and the policy node follows it"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0", description="simulated seconds per wall second"),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("redraw_sim"), "launch", "twin.launch.py"])),
            launch_arguments={"robot": LaunchConfiguration("robot"), "perturb": LaunchConfiguration("perturb"),
                              "use_sim_time": LaunchConfiguration("use_sim_time"),
                              "real_time_factor": LaunchConfiguration("real_time_factor")}.items(),
        ),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("redraw_policy_node"), "launch", "drive.launch.py"])),
            launch_arguments={"robot": LaunchConfiguration("robot"), "model": LaunchConfiguration("model"),
                              "use_sim_time": LaunchConfiguration("use_sim_time")}.items(),
        ),
    ])
