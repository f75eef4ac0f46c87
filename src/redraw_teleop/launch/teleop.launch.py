"""Drive one robot with a joystick: joy_node (package joy) reads the pad, joy_teleop turns it into actions and
wheel commands on the robot profile's topics. Record at the same time with record.launch.py.

    ros2 launch redraw_teleop teleop.launch.py robot:=db1 robot_profile:=duckietown-ros2
    ros2 launch redraw_teleop teleop.launch.py robot:=db1 joy:=false     # a joy_node runs elsewhere (on a laptop)
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="duckiebot", description="robot name = namespace of its topics"),
        DeclareLaunchArgument("robot_profile", default_value="twin",
                              description="driver topics and types: twin, duckietown-ros2, duckietown-ros1-bridge or a profile YAML"),
        DeclareLaunchArgument("joy", default_value="true", description="start joy_node here (false: Joy comes from another machine)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock (next to a twin that publishes it)"),
        Node(
            package="joy",
            executable="joy_node",
            name="joy_node",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            condition=IfCondition(LaunchConfiguration("joy")),
            parameters=[{"autorepeat_rate": 20.0, "deadzone": 0.05}],
        ),
        Node(
            package="redraw_teleop",
            executable="joy_teleop",
            name="joy_teleop",
            namespace=LaunchConfiguration("robot"),
            output="screen",
            parameters=[
                PathJoinSubstitution([FindPackageShare("redraw_teleop"), "config", "teleop.yaml"]),
                {"robot_profile": LaunchConfiguration("robot_profile"), "use_sim_time": LaunchConfiguration("use_sim_time")},
            ],
        ),
    ])
