"""Bring-up for calibration data: the digital twin (a perturbed robot) + the exploration driver + the recorder.

    ros2 launch launch/twin_record.launch.py robot:=db1 perturb:=reversed output:=/data/bags/db1_rev max_transitions:=10000
    ros2 launch launch/twin_record.launch.py ... use_sim_time:=true real_time_factor:=2.0     # faster than real time

Every node follows the twin's /clock when use_sim_time is true, so the recording is the same at any speed.
The twin publishes its measured velocity (deadreckoning_node/velocity) like a robot's wheel odometry; the recorder
records it with the camera, for models whose observation includes it.
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
        DeclareLaunchArgument("perturb", default_value="reversed", description="the twin's dynamics perturbation ('' = nominal)"),
        DeclareLaunchArgument("driver", default_value="explore", description="explore (reward-free) or expert (P-controller)"),
        DeclareLaunchArgument("output", default_value="", description="recording folder to create (empty: automatic name)"),
        DeclareLaunchArgument("max_transitions", default_value="0", description="stop recording after N transitions (0 = no limit)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="the twin publishes /clock and every node follows it"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0", description="simulated seconds per wall second"),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("redraw_sim"), "launch", "twin.launch.py"])),
            launch_arguments={"robot": LaunchConfiguration("robot"), "perturb": LaunchConfiguration("perturb"),
                              "use_sim_time": LaunchConfiguration("use_sim_time"),
                              "real_time_factor": LaunchConfiguration("real_time_factor")}.items(),
        ),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("redraw_sim"), "launch", "explore.launch.py"])),
            launch_arguments={"robot": LaunchConfiguration("robot"), "driver": LaunchConfiguration("driver"),
                              "use_sim_time": LaunchConfiguration("use_sim_time")}.items(),
        ),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("redraw_recorder"), "launch", "record.launch.py"])),
            # the twin's camera is reliable: a reliable subscription gets every frame it renders, where a best-effort
            # one (the recorder's default, for any robot's camera) lost 13 of 1282 frames with both cores busy
            launch_arguments={"robot": LaunchConfiguration("robot"), "output": LaunchConfiguration("output"),
                              "max_transitions": LaunchConfiguration("max_transitions"),
                              "use_sim_time": LaunchConfiguration("use_sim_time"), "camera_best_effort": "false"}.items(),
        ),
    ])
