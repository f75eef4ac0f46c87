#!/usr/bin/env bash
# Plan2Explore pretraining of DRAW and DreamerV3 on the four DMC source tasks (results/dmc/PLAN.md, issue #21).
# Resumable: each run folder resumes from its last checkpoint (every 2500 env steps). Two runs at a time, one core each.
#   bash experiments/dmc_pretrain.sh [RUNS_DIR]      (default runs/dmc/pretrain; log per run in RUNS_DIR/<run>.log)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
root=${1:-runs/dmc/pretrain}
mkdir -p "$root"
jobs=()
for task in cup_catch finger_turn_hard pendulum_swingup reacher_easy; do
  for model in draw dreamer; do jobs+=("$task $model"); done
done
one() {
  local task=$1 model=$2 presets=tiny
  [ "$model" = dreamer ] && presets=tiny,dreamer
  local out="$root/${task}_${model}"
  pretrain --env "redraw/dmc_${task}-v0" --preset "$presets" --explore plan2explore --steps 40000 --seed 0 --threads 1 \
    --set run.train_ratio=64 --set run.eval_every=10000 --set run.eval_eps=10 --set run.save_every=2500 \
    --set run.log_every=500 --out "$out" --no-progress > "$out.log" 2>&1
  python -m redraw_training.curves "$out" --keys expl_ac/imag_reward model/loss eval/return train/episode_return --out "$out/curves.png"
}
export -f one
export root
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} bash -c 'one {}'
