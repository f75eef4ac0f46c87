"""The paper's comparison on the Duckietown simulator with given pretrained checkpoints (redraw_training's compare x
redraw_sim's DuckietownLoop-v0): a tiny DRAW and a tiny Dreamer model pretrained here on a few hundred explorer
transitions stand in for the shipped models. Checks the plumbing, not learning: the exploration driver collects
the target data, every policy's evaluation records the env's lane metrics, and table.md has the paper's Duckiebot
columns (METHOD.md 9) with the numbers of results.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("redraw_sim")

ENV = "redraw/DuckietownLoop-v0"


@pytest.fixture(scope="module")
def duckietown_checkpoints(tmp_path_factory):
    from redraw_common.episodes import save_episode
    from redraw_training.config import load_config
    from redraw_training.envs import make_env
    from redraw_training.offline import pretrain_offline
    from redraw_training.rollout import run_episodes
    from redraw_training.scripted import driver_input, scripted_driver

    root = tmp_path_factory.mktemp("dt_given")
    env = make_env(ENV, "", time_limit=80, action_history=2)
    driver = scripted_driver(env, seed=3)
    # as the shipped models: DRAW observes velocity + the last 2 actions, Dreamer the velocity alone
    data = {"draw": root / "data_history", "dreamer": root / "data_velocity"}
    for i in range(4):
        driver.reset(3 + i)
        _, (ep,) = run_episodes(env, lambda obs: driver.act(driver_input(env, driver, obs)), 1, seed=300 + i, keep=True)
        save_episode(data["draw"] / f"ep_{i:03d}.npz", ep)
        save_episode(data["dreamer"] / f"ep_{i:03d}.npz", {**ep, "vector": ep["vector"][:, :2]})
    (data["draw"] / "dataset.json").write_text(json.dumps({"env": ENV, "env_settings": {"action_history": 2}}))
    (data["dreamer"] / "dataset.json").write_text(json.dumps({"env": ENV}))
    out = {}
    for model, presets in (("draw", ["tiny"]), ("dreamer", ["tiny", "dreamer"])):
        config = load_config(presets, {"seed": 0, "threads": 1, "imag_starts": 32, "run.log_every": 1})
        pretrain_offline(config, data[model], root / model, updates=2, progress=False)
        out[model] = root / model
    return out


def _cells(table: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    body: dict[str, list[str]] = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        body.setdefault(cells[0], cells[1:])
    return head, body


@pytest.mark.slow
def test_duckietown_comparison_table_has_the_papers_columns_and_the_results_numbers(duckietown_checkpoints, tmp_path):
    from redraw_training.cli.compare import main

    out = tmp_path / "cmp"
    assert main(["--draw-checkpoint", str(duckietown_checkpoints["draw"]), "--dreamer-checkpoint", str(duckietown_checkpoints["dreamer"]),
                 "--target-perturb", "nominal,reversed", "--seeds", "2", "--sizes", "40", "--updates", "2", "--eval-episodes", "1",
                 "--env-kwargs", "{time_limit: 40}", "--set", "imag_starts=32", "--set", "calibrate.log_every=1",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["env"] == ENV and results["settings"]["target_driver"] == "scripted"
    for cond in ("nominal", "reversed"):
        for seed in (0, 1):
            data = json.loads((out / "data" / f"{cond}_seed{seed}" / "dataset.json").read_text())
            assert data["driver_class"] == "ExploreDriver" and data["transitions"] >= 40
    rows = results["rows"]
    assert len(rows) == 5 * 2 * 2
    # the target data has DRAW's vector (velocity + 2 actions); the Dreamer baselines train on its velocity part
    # (each offline cell cuts its copy of the data on its worker: the run's dataset is the cut folder, and the loader checked
    # its vector against the model's 2 dims)
    for seed in (0, 1):
        full = out / "data" / f"reversed_seed{seed}" / "n40"
        assert np.load(next(full.glob("*.npz")))["vector"].shape[1] == 6
        for method, folder in (("dreamer_finetune", "n40_vector2"), ("draw_finetune", "n40"), ("redraw", "n40")):
            summary = json.loads((out / "runs" / method / "reversed_n40" / f"seed{seed}" / "summary.json").read_text())
            assert Path(summary["dataset"]["path"]).name == folder, (method, summary["dataset"])
    for r in rows:
        lane = r["lane"]
        # the env's per-step reward summed over the episode agrees with the episode summary it reports at the end
        assert lane["dense_reward"] == pytest.approx(sum(r["returns"]) / lane["steps"], rel=1e-5)
        assert lane["steps"] <= 40 and lane["centre_offset_cm"] >= 0 and lane["laps"] >= 0
    head, body = _cells((out / "table.md").read_text())
    columns = ["dense reward / step ↑", "lap time s ↓", "centre offset cm ↓", "laps / episode ↑"]
    assert head == ["Method", "nominal: " + columns[0], *columns[1:], "reversed: " + columns[0], *columns[1:]]
    labels = {"dreamer_zeroshot": "Dreamer zero-shot", "dreamer_finetune": "Dreamer finetune", "draw_zeroshot": "DRAW zero-shot",
              "draw_finetune": "DRAW finetune", "redraw": "ReDRAW"}
    for method, label in labels.items():
        for c, perturb in enumerate(("", "reversed")):
            for k, key in enumerate(("dense_reward", "lap_time_s", "centre_offset_cm", "laps")):
                values = [r["lane"][key] for r in rows if r["method"] == method and r["perturb"] == perturb and r["lane"][key] is not None]
                cell = body[label][4 * c + k]
                if not values:
                    assert cell == "—"
                    continue
                mean, sem = float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(len(values)))
                assert cell.startswith(f"{mean:.2f} ± {sem:.2f}"), (label, perturb, key, cell, values)
    assert (out / "plot.png").stat().st_size > 5000
