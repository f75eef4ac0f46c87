#!/usr/bin/env bash
# Entrypoint of the robot image: run a redraw launch file for the robot named by $ROBOT_NAME.
#
#   redraw-robot drive  [launch args]    policy node:  drive.launch.py robot:=$ROBOT_NAME model:=$MODEL
#   redraw-robot record [launch args]    recorder:     record.launch.py robot:=$ROBOT_NAME
#   redraw-robot teleop [launch args]    gamepad:      teleop.launch.py robot:=$ROBOT_NAME (joy_node + joy_teleop)
#   redraw-robot repair <recording>      make a recording whose recorder was killed readable again
#   redraw-robot <command ...>           anything else, in the sourced ROS environment
# drive, record and teleop run with robot_profile:=$ROBOT_PROFILE (the drivers' topics and types: duckietown-ros2, duckietown-ros1-bridge, twin)
set -eo pipefail
# shellcheck disable=SC1090,SC1091
source "/opt/ros/${ROS_DISTRO}/setup.bash"
# shellcheck disable=SC1091
source /opt/redraw/setup.bash
: "${ROBOT_NAME:?set ROBOT_NAME to the robot's name (its topic namespace)}"
mode="${1:-drive}"
shift || true
case "$mode" in
  drive)  exec ros2 launch redraw_policy_node drive.launch.py robot:="$ROBOT_NAME" robot_profile:="${ROBOT_PROFILE:-duckietown-ros2}" model:="${MODEL:-/models/policy.onnx}" "$@" ;;
  record) exec ros2 launch redraw_recorder record.launch.py robot:="$ROBOT_NAME" robot_profile:="${ROBOT_PROFILE:-duckietown-ros2}" "$@" ;;
  teleop) exec ros2 launch redraw_teleop teleop.launch.py robot:="$ROBOT_NAME" robot_profile:="${ROBOT_PROFILE:-duckietown-ros2}" "$@" ;;
  repair) exec ros2 run redraw_recorder repair_bag "$@" ;;
  *)      exec "$mode" "$@" ;;
esac
