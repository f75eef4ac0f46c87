"""Console scripts: what they print, what they write, and their errors (main() called in-process; one
subprocess run of an installed script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redraw_training.cli import calibrate, evaluate, export, pretrain, rollout


@pytest.mark.slow
def test_evaluate_and_export_clis(redraw_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert evaluate.main(["--checkpoint", str(redraw_run.calibrate_dir), "--eval-perturb", "reversed", "--episodes", "2", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["episodes"] == 2 and len(metrics["returns"]) == 2 and metrics["perturb"] == "reversed"
    assert metrics["kind"] == "calibrate" and "info_final_distance_mean" in metrics
    # with no --env, the sim env (id and kwargs) of the model it calibrated: the calibrated checkpoint carries it over
    manifests = [json.loads((d / "checkpoint" / "checkpoint.json").read_text()) for d in (redraw_run.pretrain_dir, redraw_run.calibrate_dir)]
    assert manifests[1]["extra"]["env"] == manifests[0]["extra"]["env"] and metrics["env"] == manifests[0]["extra"]["env"]["id"]
    printed = capsys.readouterr().out
    assert "writing" in printed and "look: cat" in printed and "done: return" in printed
    assert export.main(["--checkpoint", str(redraw_run.pretrain_dir), "--out", str(tmp_path / "model")]) == 0
    assert (tmp_path / "model" / "policy.onnx").is_file() and (tmp_path / "model" / "policy.manifest.json").is_file()
    assert "max |onnx - torch|" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_errors_are_clear(redraw_run, tmp_path, capsys):
    assert pretrain.main(["--preset", "huge", "--out", str(tmp_path / "x")]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    assert pretrain.main(["--set", "rssm.unitz=3", "--out", str(tmp_path / "x")]) == 2
    assert "unknown config key 'rssm.unitz'" in capsys.readouterr().err
    assert calibrate.main(["--checkpoint", str(redraw_run.pretrain_dir), "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "c")]) == 2
    assert "target dataset not found" in capsys.readouterr().err
    assert calibrate.main(["--checkpoint", str(redraw_run.calibrate_dir), "--data", str(redraw_run.target_dir), "--out", str(tmp_path / "c")]) == 2
    assert "calibrate starts from a 'pretrain' checkpoint" in capsys.readouterr().err
    assert calibrate.main(["--checkpoint", str(redraw_run.pretrain_dir), "--data", str(redraw_run.target_dir), "--out", str(tmp_path / "c"),
                        "--set", "rssm.units=64"]) == 2
    assert "changes the pretrained model" in capsys.readouterr().err
    assert evaluate.main(["--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "e.json")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_rollout_cli_writes_reward_free_episodes(tmp_path, capsys):
    assert rollout.main(["--env", "redraw/PointGoal-v0", "--target-perturb", "gain:0.5", "--episodes", "2", "--no-reward",
                         "--out", str(tmp_path / "data")]) == 0
    files = sorted((tmp_path / "data").glob("*.npz"))
    assert len(files) == 2 and json.loads((tmp_path / "data" / "dataset.json").read_text())["steps"] == 102
    import numpy as np
    with np.load(files[0]) as ep:
        assert "reward" not in ep.files and ep["image"].shape == (51, 32, 32, 3)


def test_installed_console_script_runs():
    root = Path(os.environ.get("REDRAW_ROOT", Path(__file__).resolve().parents[3]))
    script = root / "install" / "redraw_training" / "lib" / "redraw_training" / "evaluate"
    assert script.is_file(), f"console script not installed at {script}; run scripts/setup.sh"
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--eval-perturb" in result.stdout
    result = subprocess.run([sys.executable, "-m", "redraw_training", "nope"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "usage: python -m redraw_training" in result.stderr


@pytest.mark.parametrize("cli, old, new", [
    ("calibrate", "--perturb", "--eval-perturb"), ("finetune", "--perturb", "--eval-perturb"), ("evaluate", "--perturb", "--eval-perturb"),
    ("rollout", "--perturb", "--target-perturb"), ("pretrain", "--perturb", "--train-perturb"), ("compare", "--source-perturb", "--train-perturb"),
])
def test_retired_perturb_flags_are_refused_with_the_name_that_says_what_they_perturb(cli, old, new, capsys):
    import importlib

    with pytest.raises(SystemExit) as exc:
        importlib.import_module(f"redraw_training.cli.{cli}").main([old, "reversed"])
    assert exc.value.code == 2
    assert f"{old} was renamed: use {new}" in capsys.readouterr().err
