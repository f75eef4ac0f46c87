#!/usr/bin/env bash
# The main job on the digital twin (issue 8), one command after setup:
#   the twin with reversed actions as the "real" robot + the exploration driver + the recorder -> a calibration bag
#   (10000 transitions) -> calibrate the shipped sim-pretrained model (models/duckietown_draw) -> export ONNX of
#   DRAW zero-shot and ReDRAW -> each drives the twin through the policy node -> a table, runs/sim2real/<time>/summary.json
#   and comparison.png. Any sim2real option passes through (sim2real --help), e.g.
#
#   scripts/demo.sh                                           # the defaults
#   scripts/demo.sh --target-perturb trim:0.2 --transitions 10000 --seed 1 --out runs/sim2real_trim
#
# The synthetic-env comparison (no simulator, no ROS) is scripts/demo_synthetic.sh.
set -euo pipefail
if ! command -v sim2real >/dev/null 2>&1; then
  # shellcheck disable=SC1091
  . "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"
fi
# a fresh output folder per run unless --out is given, so that `make demo` can be run again
case " $* " in
  *" --out "*|*" --out="*) exec sim2real "$@" ;;
  *) exec sim2real --out "runs/sim2real/$(date +%Y%m%d-%H%M%S)" "$@" ;;
esac
