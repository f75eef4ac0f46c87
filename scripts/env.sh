# Source me (bash): the environment every redraw process runs in: the venv, the ROS 2 prefix of the
# wheels, the workspace overlay, DDS held on loopback, and a per-run ROS_HOME.
#
#   . scripts/env.sh                 # ROS_HOME=<repo>/.run/ros_home unless REDRAW_RUN_DIR is set
#   REDRAW_RUN_DIR=/tmp/run1 . scripts/env.sh
#
# DDS discovery must never leave this machine: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST is not optional.
_redraw_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$_redraw_root/.venv/bin/python" ]; then
  echo "env.sh: no venv at $_redraw_root/.venv; run scripts/setup.sh (or 'make setup') first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_redraw_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
if [ -f "$_redraw_root/install/setup.bash" ]; then
  # colcon's setup scripts reference unset variables; source them without nounset.
  _redraw_had_u=0; case $- in *u*) _redraw_had_u=1; set +u;; esac
  # shellcheck disable=SC1091
  COLCON_CURRENT_PREFIX="$_redraw_root/install" . "$_redraw_root/install/setup.bash"
  [ "$_redraw_had_u" = 1 ] && set -u
fi
# the packages' executables (what `ros2 run <pkg> <exe>` would find) as plain commands: calibrate, twin_node, ...
for _redraw_lib in "$_redraw_root"/install/*/lib/redraw_*; do
  [ -d "$_redraw_lib" ] && case ":$PATH:" in *":$_redraw_lib:"*) ;; *) PATH="$_redraw_lib:$PATH";; esac
done
export PATH
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export REDRAW_RUN_DIR="${REDRAW_RUN_DIR:-$_redraw_root/.run}"
export ROS_HOME="${ROS_HOME_OVERRIDE:-$REDRAW_RUN_DIR/ros_home}"
export ROS_LOG_DIR="$ROS_HOME/log"
mkdir -p "$ROS_LOG_DIR"
export MUJOCO_GL=egl
export PYOPENGL_PLATFORM=egl
export PYGLET_HEADLESS=1
export REDRAW_ROOT="$_redraw_root"
unset _redraw_root _redraw_had_u _redraw_lib
