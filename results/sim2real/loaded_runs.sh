#!/usr/bin/env bash
# The main job with one core taken by a busy loop (issue 24): seed 0 through scripts/demo.sh, then seeds 1 and 2
# recalibrating that same recording. Each on a fresh clone of COMMIT in WORK; logs in WORK/seed{0,1,2}.log,
# runs in WORK/clone/runs/sim2real/, wall times in WORK/status.
#
#   results/sim2real/loaded_runs.sh 16c5049 /tmp/loaded     # about 50 min after setup on 2 cores
set -u
commit=${1:?usage: loaded_runs.sh COMMIT WORK}
work=$(realpath -m "${2:?usage: loaded_runs.sh COMMIT WORK}")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_HOME="$work/ros_home"
mkdir -p "$ROS_HOME"
git clone -q "$repo" "$work/clone" && cd "$work/clone" && git checkout -q "$commit" || exit 1
make setup > "$work/setup.log" 2>&1 || { echo "setup failed: $work/setup.log" >&2; exit 1; }
python3 -c 'while True: pass' &
hog=$!
trap 'kill $hog' EXIT
t0=$(date +%s)
bash scripts/demo.sh --out runs/sim2real/loaded_seed0 > "$work/seed0.log" 2>&1
echo "seed0 rc=$? wall=$(( $(date +%s) - t0 )) s" >> "$work/status"
# shellcheck disable=SC1091
. scripts/env.sh
for s in 1 2; do
  t0=$(date +%s)
  sim2real --bag runs/sim2real/loaded_seed0/bag --seed "$s" --out "runs/sim2real/loaded_bag_seed$s" > "$work/seed$s.log" 2>&1
  echo "seed$s rc=$? wall=$(( $(date +%s) - t0 )) s" >> "$work/status"
done
