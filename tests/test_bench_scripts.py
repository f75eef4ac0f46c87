"""The benchmarks still run against the library they measure (nothing here is timed: bench/ measures, tests never time).

bench_training.py calls the agents' own update functions; a renamed or re-shaped one broke it once without any test
noticing (agent._starts took (states, batch, count) while the bench passed is_terminal).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_training_worker_reports_every_update_on_the_tiny_preset():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_training.py"), "--worker", "tiny", "1", "--warmup", "0",
                           "--repeats", "1"], capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("wm_update_s", "ac_update_s", "ac_update_1024_s", "residual_update_s", "calibrate_step_s"):
        assert row[key] > 0, (key, row[key])
    assert row["preset"] == "tiny" and row["threads"] == 1 and row["wm_params"] > 0 and row["residual_params"] > 0
