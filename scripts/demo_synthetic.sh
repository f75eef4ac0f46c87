#!/usr/bin/env bash
# The synthetic comparison (the main job on the digital twin is scripts/demo.sh): the whole ReDRAW loop on the
# synthetic PointGoal env, where the "real" robot has reversed actions:
#   pretrain DRAW + task policy in the nominal env -> record reward-free target data in the reversed env ->
#   calibrate (latent dynamics residual + fresh policy in imagination) -> evaluate against DRAW zero-shot,
# over 3 seeds, with a table (mean +- SEM), JSON and a PNG plot in $OUT (default runs/demo_synthetic).
#
#   scripts/demo_synthetic.sh [OUT] [SEEDS]      (after `. scripts/env.sh`)
set -euo pipefail
OUT="${1:-runs/demo_synthetic}"
SEEDS="${2:-3}"
echo "redraw demo: ReDRAW vs DRAW zero-shot on the synthetic env with reversed actions ($SEEDS seeds) -> $OUT"
python -m redraw_training compare --env redraw/PointGoal-v0 --target-perturb reversed \
  --methods draw_zeroshot,redraw --seeds "$SEEDS" --preset tiny --explore task \
  --pretrain-steps 1100 --updates 900 --sizes 2000 --eval-episodes 10 --out "$OUT"
echo
echo "table: $OUT/table.md   numbers: $OUT/results.json   plot: $OUT/plot.png"
