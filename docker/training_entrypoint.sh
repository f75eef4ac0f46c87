#!/usr/bin/env bash
# Entrypoint of the training image: run a command in the project's environment (venv, ROS 2 overlay,
# DDS on loopback). A redraw_training / redraw_sim executable name runs that executable.
#
#   redraw-training pretrain --help      redraw-training convert-bags /bags/run1 --out /data/run1
#   redraw-training make test            redraw-training bash
set -eo pipefail
cd /opt/redraw
# shellcheck disable=SC1091
. scripts/env.sh
cmd="${1:-bash}"
shift || true
for pkg in redraw_training redraw_sim; do
  if [ -x "install/$pkg/lib/$pkg/$cmd" ]; then
    exec "install/$pkg/lib/$pkg/$cmd" "$@"
  fi
done
exec "$cmd" "$@"
