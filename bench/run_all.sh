#!/usr/bin/env bash
# Run every benchmark with its defaults; each prints a table and writes bench/results/<name>.json (+ PNG).
# Run inside scripts/env.sh (make bench does). Benchmarks measure, tests never time: see README.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
for b in bench_*.py; do
  echo "=== $b"
  python "$b"
done
