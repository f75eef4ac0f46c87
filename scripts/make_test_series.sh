#!/usr/bin/env bash
# The load check of `make test` (issue 24): fresh clones of one commit, each running the CI entry point
# (.ci/run: setup + ruff + every test), alternately with a CPU hog on one core (`--cpu-hog`, started and ended by
# pytest) and idle, RUNS of each. One line per run in OUT/summary.txt: kind, commit, exit code, wall time, the
# pytest summary line; the full logs next to it.
#
#   bash scripts/make_test_series.sh COMMIT OUT [RUNS]      # e.g. ... HEAD results/make_test/2026-12-03 3
set -u
commit=$(git -C "$(dirname "$0")/.." rev-parse "${1:?commit}")
out=$(realpath -m "${2:?output folder}")
runs=${3:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
for n in $(seq 1 $((2 * runs))); do
  if (( n % 2 )); then kind=hog; args=--cpu-hog; else kind=idle; args=; fi
  clone=$(mktemp -d /tmp/redraw-make-test.XXXX)
  git clone -q "$repo" "$clone" && git -C "$clone" checkout -q "$commit"
  start=$(date +%s)
  (cd "$clone" && CI=true PYTEST_ARGS="$args" bash .ci/run > "$out/$n-$kind.log" 2>&1); rc=$?
  end=$(date +%s)
  line=$(grep -E "^=+ .*(passed|failed).* in " "$out/$n-$kind.log" | tail -1)
  echo "$n $kind commit=$commit rc=$rc wall=$((end - start))s $line" >> "$out/summary.txt"
  rm -rf "$clone"
done
