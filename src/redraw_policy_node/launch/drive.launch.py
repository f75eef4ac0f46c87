"""Drive one robot in closed loop with an exported policy (ONNX + manifest).

    ros2 launch redraw_policy_node drive.launch.py robot:=db1 model:=/models/policy.onnx                # the twin
    ros2 launch redraw_policy_node drive.launch.py robot:=db1 model:=... robot_profile:=duckietown-ros2  # a Duckiebot
    ros2 topic pub --once /db1/redraw/estop std_msgs/msg/Bool "{data: true}"     # stop the wheels (twin profile)

robot_profile names the robot's driver topics and types (redraw_common/profiles: twin, duckietown-ros2,
duckietown-ros1-bridge) or is the path of a profile YAML.
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
        DeclareLaunchArgument("model", default_value="/models/policy.onnx", description="exported policy; its manifest lies next to it"),
        Node(
            package="redraw_policy_node",
            executable="policy_node",
            name="policy_node",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            parameters=[
                PathJoinSubstitution([FindPackageShare("redraw_policy_node"), "config", "drive.yaml"]),
                {"model_path": LaunchConfiguration("model"), "robot_profile": LaunchConfiguration("robot_profile"),
                 "use_sim_time": LaunchConfiguration("use_sim_time")},
            ],
        ),
    ])
