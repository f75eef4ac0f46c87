#!/usr/bin/env bash
# Plan2Explore pretraining of DRAW and DreamerV3 on the four DMC source tasks (results/dmc/PLAN.md, issue #21).
# Each run fits one session on one core (~1.5 h); two run at a time. A finished run's checkpoint, summary, scalars and
# curves.png are copied to models/dmc/<task>_<model>/ (committed: what the comparison uses); a run whose folder is
# there is skipped, and a run cut short resumes from its last checkpoint in RUNS_DIR while that folder still exists.
#   bash experiments/dmc_pretrain.sh [RUNS_DIR] [RUN ...]   (default runs/dmc/pretrain and every run, e.g. cup_catch_draw)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
root=${1:-runs/dmc/pretrain}
shift || true
mkdir -p "$root"
jobs=()
for task in cup_catch finger_turn_hard pendulum_swingup reacher_easy; do
  for model in draw dreamer; do jobs+=("${task}_${model}"); done
done
[ $# -gt 0 ] && jobs=("$@")
one() {
  local run=$1 task=${1%_*} model=${1##*_} presets=tiny
  [ "$model" = dreamer ] && presets=tiny,dreamer
  local out="$root/$run" keep="models/dmc/$run"
  if [ -f "$keep/checkpoint/checkpoint.json" ]; then echo "$run: committed in $keep, skipped"; return; fi
  pretrain --env "redraw/dmc_${task}-v0" --preset "$presets" --explore plan2explore --steps 20000 --seed 0 --threads 1 \
    --set run.train_ratio=64 --set run.eval_every=10000 --set run.eval_eps=10 --set run.save_every=2500 \
    --set run.log_every=500 --out "$out" --no-progress > "$out.log" 2>&1
  python -m redraw_training.curves "$out" --keys expl_ac/imag_reward model/loss eval/return train/episode_return --out "$out/curves.png"
  mkdir -p "$keep.tmp" && cp -r "$out/checkpoint" "$out/summary.json" "$out/scalars.jsonl" "$out/curves.png" "$keep.tmp/"
  cp "$out.log" "$keep.tmp/pretrain.log" && rm -rf "$keep" && mv "$keep.tmp" "$keep"
  echo "$run: done, kept in $keep"
}
export -f one
export root
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} bash -c 'one {}'
