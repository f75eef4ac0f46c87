#!/usr/bin/env bash
# The main job, as far as it is built today (see README "Status"): the whole ReDRAW loop on the synthetic
# PointGoal env, where the "real" robot has reversed actions:
#   pretrain DRAW + task policy in the nominal env -> record reward-free target data in the reversed env ->
#   calibrate (latent dynamics residual + fresh policy in imagination) -> evaluate against DRAW zero-shot,
# over 3 seeds, with a table (mean +- SEM), JSON and a PNG plot in $OUT (default runs/demo).
# The Duckietown main job on the digital twin (record bag -> calibrate the shipped model -> drive) is not
# built yet.
#
#   scripts/demo.sh [OUT] [SEEDS]
set -euo pipefail
OUT="${1:-runs/demo}"
SEEDS="${2:-3}"
echo "redraw demo: ReDRAW vs DRAW zero-shot on the synthetic env with reversed actions ($SEEDS seeds) -> $OUT"
echo "  (the Duckietown main job on the digital twin is not built yet; see README 'Status')"
python -m redraw_training compare --env redraw/PointGoal-v0 --target-perturb reversed \
  --methods draw_zeroshot,redraw --seeds "$SEEDS" --preset tiny --explore task \
  --pretrain-steps 1100 --updates 900 --sizes 2000 --eval-episodes 10 --out "$OUT"
echo
echo "table: $OUT/table.md   numbers: $OUT/results.json   plot: $OUT/plot.png"
