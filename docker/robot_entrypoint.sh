#!/usr/bin/env bash
# Entrypoint of the robot image: run a redraw launch file for the robot named by $ROBOT_NAME.
#
#   redraw-robot drive  [launch args]    policy node:  drive.launch.py robot:=$ROBOT_NAME model:=$MODEL
#   redraw-robot record [launch args]    recorder:     record.launch.py robot:=$ROBOT_NAME
#   redraw-robot repair <recording>      make a recording whose recorder was killed readable again
#   redraw-robot <command ...>           anything else, in the sourced ROS environment
set -eo pipefail
# shellcheck disable=SC1090,SC1091
source "/opt/ros/${ROS_DISTRO}/setup.bash"
# shellcheck disable=SC1091
source /opt/redraw/setup.bash
: "${ROBOT_NAME:?set ROBOT_NAME to the robot's name (its topic namespace)}"
mode="${1:-drive}"
shift || true
case "$mode" in
  drive)  exec ros2 launch redraw_policy_node drive.launch.py robot:="$ROBOT_NAME" model:="${MODEL:-/models/policy.onnx}" "$@" ;;
  record) exec ros2 launch redraw_recorder record.launch.py robot:="$ROBOT_NAME" "$@" ;;
  repair) exec ros2 run redraw_recorder repair_bag "$@" ;;
  *)      exec "$mode" "$@" ;;
esac
