#!/usr/bin/env bash
# One-command setup of the redraw workspace on a fresh Debian 12 machine (or a second, fast run):
#   1. apt packages (headless EGL/Mesa for the simulators, cmake and g++ for the interface package)
#   2. the project venv .venv with every Python dependency pinned (requirements.txt + requirements.lock)
#   3. the fix for the build-machine paths baked into the ROS 2 wheels' CMake files
#   4. colcon build of src/ into install/
# Idempotent: each step checks what is already there. Fails loudly, naming the step that broke.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PYTHON_BIN="${REDRAW_PYTHON:-python3.11}"
STEP="start"
trap 'echo "setup.sh: FAILED in step: $STEP (see the output above)" >&2' ERR

say() { printf '\033[1m[setup] %s\033[0m\n' "$*"; }

# ---------------------------------------------------------------------------------------------
STEP="apt packages"
APT_PACKAGES=(libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libglu1-mesa cmake g++ make)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  say "apt packages present"
fi

# ---------------------------------------------------------------------------------------------
STEP="python venv"
command -v "$PYTHON_BIN" >/dev/null || { echo "setup.sh: $PYTHON_BIN not found (the ROS 2 kilted wheels are cp311)" >&2; false; }
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV with $PYTHON_BIN"
  "$PYTHON_BIN" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

STEP="pip install (requirements.txt + requirements.lock)"
stamp="$VENV/.redraw-requirements.sha256"
want="$(cat requirements.txt requirements.lock requirements-override.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing pinned Python dependencies (a few minutes on a fresh machine)"
  python -m pip install -q --disable-pip-version-check pip==24.3.1 setuptools==79.0.1 wheel==0.45.1
  python -m pip install -q --disable-pip-version-check -r requirements.txt -c requirements.lock
  python -m pip install -q --disable-pip-version-check --no-deps -r requirements-override.txt
  echo "$want" > "$stamp"
else
  say "Python dependencies up to date"
fi

# ---------------------------------------------------------------------------------------------
STEP="CMake path fix for the ROS 2 wheels"
# The wheels' exported CMake files name the build machine's Python; point them at this venv.
py_inc="$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$(python -c 'import numpy; print(numpy.get_include())')"
mapfile -t cmake_files < <(grep -rlE '/opt/python/cp311-cp311/(include|lib)' "$VENV/share" --include='*.cmake' 2>/dev/null || true)
if ((${#cmake_files[@]})); then
  say "rewriting build-machine paths in ${#cmake_files[@]} CMake files"
  sed -i \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np_inc}#g" \
    -e "s#/opt/python/cp311-cp311/include/python3.11#${py_inc}#g" \
    "${cmake_files[@]}"
else
  say "CMake files already point at this venv"
fi

# ---------------------------------------------------------------------------------------------
STEP="colcon build"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
say "colcon build (src/ -> install/)"
mkdir -p "$ROOT/.run"
# one build at a time (several shells may call setup.sh at once)
exec 9>"$ROOT/.run/build.lock"
flock 9
colcon --log-base "$ROOT/log" build --base-paths "$ROOT/src" --build-base "$ROOT/build" \
  --install-base "$ROOT/install" --symlink-install \
  --event-handlers console_cohesion- status- summary+ \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF -Wno-dev
flock -u 9

STEP="smoke test"
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
python - <<'PY'
from redraw_msgs.msg import WheelsCmdStamped, DriveAction, EpisodeEvent, PolicyStatus  # noqa: F401
from duckietown_msgs.msg import BoolStamped, WheelsCmdStamped as DuckietownWheelsCmd  # noqa: F401
import redraw_common  # noqa: F401
PY
say "done: workspace built in $ROOT/install; run 'make test' or see README.md"
