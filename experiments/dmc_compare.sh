#!/usr/bin/env bash
# The five methods on the four DMC transfer pairs (results/dmc/PLAN.md, issue #21), after experiments/dmc_pretrain.sh.
# Resumable: a rerun skips the cells already done in each runs/dmc/<pair> folder.
#   bash experiments/dmc_compare.sh [PRETRAIN_DIR] [OUT_DIR]     (defaults runs/dmc/pretrain, runs/dmc)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
pre=${1:-runs/dmc/pretrain}
out=${2:-runs/dmc}
for pair in cup_catch:wind:2 finger_turn_hard:torque:4 pendulum_swingup:reversed reacher_easy:reversed; do
  task=${pair%%:*}
  perturb=${pair#*:}
  compare --env "redraw/dmc_${task}-v0" --target-perturb "$perturb" \
    --draw-checkpoint "$pre/${task}_draw" --dreamer-checkpoint "$pre/${task}_dreamer" \
    --methods dreamer_zeroshot,dreamer_finetune,draw_zeroshot,draw_finetune,redraw --seeds 3 --sizes 1000,5000,20000 \
    --target-driver policy --target-noise 0.3 --updates 2000 --eval-episodes 10 --threads 1 --jobs 2 \
    --out "$out/$task"
done
