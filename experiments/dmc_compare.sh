#!/usr/bin/env bash
# The five methods on the four DMC transfer pairs (results/dmc/PLAN.md, issue #21), on the pretrained models that
# experiments/dmc_pretrain.sh commits in models/dmc/. Each pair's records go to results/dmc/<task>/ as its cells
# finish (compare --record), so a comparison cut short by the end of a session resumes on a fresh clone.
#   bash experiments/dmc_compare.sh [OUT_DIR] [TASK ...]     (default runs/dmc and every pair whose models are committed)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
out=${1:-runs/dmc}
shift || true
declare -A target=([cup_catch]=wind:2 [finger_turn_hard]=torque:4 [pendulum_swingup]=reversed [reacher_easy]=reversed)
tasks=(cup_catch finger_turn_hard pendulum_swingup reacher_easy)
[ $# -gt 0 ] && tasks=("$@")
for task in "${tasks[@]}"; do
  if [ ! -d "models/dmc/${task}_draw" ] || [ ! -d "models/dmc/${task}_dreamer" ]; then
    echo "$task: its pretrained models are not in models/dmc yet (experiments/dmc_pretrain.sh), skipped"; continue
  fi
  compare --env "redraw/dmc_${task}-v0" --target-perturb "${target[$task]}" \
    --draw-checkpoint "models/dmc/${task}_draw" --dreamer-checkpoint "models/dmc/${task}_dreamer" \
    --methods dreamer_zeroshot,dreamer_finetune,draw_zeroshot,draw_finetune,redraw --seeds 3 --sizes 1000,5000,20000 \
    --target-driver policy --target-noise 0.3 --updates 2000 --eval-episodes 10 --threads 1 --jobs 2 \
    --out "$out/$task" --record "results/dmc/$task"
done
