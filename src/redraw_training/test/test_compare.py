"""compare with given pretrained checkpoints (the shipped-model path) and the lane-metric summary in the layout of
the paper's Duckiebot table (METHOD.md 9). Tiny sizes on the synthetic PointGoal env; the Duckietown run itself
is tests/test_compare_duckietown.py. No learning claims here: these check bookkeeping and formatting."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from redraw_training.cluster import folder_lock
from redraw_training.compare_report import summarize, table_markdown
from redraw_training.compare_settings import LANE_COLUMNS, METHODS, CompareError, CompareSettings
from redraw_training.evaluation import lane_metrics

# ----------------------------------------------------------------------------------------------------------
# lane metrics of one evaluation


def _episode(length, dense, offset, lap_times):
    return {"length": length, "dense_reward": dense, "centre_offset_cm": offset, "laps": len(lap_times), "lap_times_s": list(lap_times),
            "distance_m": 1.0, "out_of_lane_events": 0}


def test_lane_metrics_pool_over_steps_and_laps():
    """Dense reward and centre offset are per-step means pooled over the episodes' steps (a 10-step crash does not
    weigh as much as a 90-step drive); the lap time is the mean over all completed laps; laps are per episode."""
    eps = [_episode(90, 0.5, 2.0, [20.0, 22.0]), _episode(10, -2.0, 12.0, [])]
    m = lane_metrics(eps)
    assert m["dense_reward"] == pytest.approx((90 * 0.5 + 10 * -2.0) / 100)
    assert m["centre_offset_cm"] == pytest.approx((90 * 2.0 + 10 * 12.0) / 100)
    assert m["lap_time_s"] == pytest.approx(21.0) and m["laps"] == pytest.approx(1.0) and m["laps_total"] == 2
    assert lane_metrics([_episode(10, -2.0, 12.0, [])])["lap_time_s"] is None
    with pytest.raises(ValueError, match="missing \\['lap_times_s'\\]"):
        lane_metrics([{k: v for k, v in _episode(5, 0, 0, []).items() if k != "lap_times_s"}])


def _lane_rows():
    """3 seeds x 5 methods x 2 conditions; DRAW zero-shot completes laps on nominal only, ReDRAW with 2 of 3 seeds
    on reversed."""
    rows = []
    for seed in range(3):
        for perturb in ("", "reversed"):
            for k, method in enumerate(METHODS):
                laps = []
                if method == "draw_zeroshot" and perturb == "":
                    laps = [22.0 + seed]
                if method == "redraw" and perturb == "reversed" and seed < 2:
                    laps = [24.0 + 2 * seed, 26.0 + 2 * seed]
                lane = lane_metrics([_episode(100, 0.1 * k - 0.2 * seed, 2.0 + k + seed, laps)])
                rows.append({"method": method, "perturb": perturb, "size": 500, "seed": seed, "return_mean": 10.0 * k + seed,
                             "lane": lane})
    return rows


def _settings(tmp_path, **kw):
    return CompareSettings(env="redraw/DuckietownLoop-v0", target_perturbs=["", "reversed"], out=tmp_path, seeds=[0, 1, 2], **kw)


def _table_rows(table: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    body = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        body.setdefault(cells[0], cells[1:])      # the first table (lane) wins over the return table below it
    return head, body


def test_lane_table_has_the_papers_columns_and_mean_sem_over_seeds(tmp_path):
    rows = _lane_rows()
    summary = summarize(rows)
    table = table_markdown(summary, _settings(tmp_path))
    head, body = _table_rows(table)
    assert head == ["Method", "nominal: dense reward / step ↑", "lap time s ↓", "centre offset cm ↓", "laps / episode ↑",
                    "reversed: dense reward / step ↑", "lap time s ↓", "centre offset cm ↓", "laps / episode ↑"]
    assert list(body)[:5] == ["Dreamer zero-shot", "Dreamer finetune", "DRAW zero-shot", "DRAW finetune", "ReDRAW"]
    # DRAW zero-shot on nominal: dense reward 0.2 - 0.2 * seed -> 0.0 ± SEM; laps at 22, 23, 24 s
    dense = np.array([0.2, 0.0, -0.2])
    assert body["DRAW zero-shot"][0] == f"{dense.mean():.2f} ± {dense.std(ddof=1) / math.sqrt(3):.2f}"
    assert body["DRAW zero-shot"][1] == f"23.00 ± {np.std([22, 23, 24], ddof=1) / math.sqrt(3):.2f}"
    assert body["DRAW zero-shot"][3] == "1.00 ± 0.00"
    assert body["DRAW zero-shot"][5] == "—"                      # no lap on reversed
    # ReDRAW on reversed: only seeds 0 and 1 complete laps (mean lap time 25 and 27), 2 laps each
    assert body["ReDRAW"][5] == f"26.00 ± {np.std([25, 27], ddof=1) / math.sqrt(2):.2f} (2/3 seeds)"
    assert body["ReDRAW"][7] == f"{np.mean([2, 2, 0]):.2f} ± {np.std([2, 2, 0], ddof=1) / math.sqrt(3):.2f}"
    assert body["Dreamer zero-shot"][1] == "—"
    # the same numbers in the summary, per metric
    cell = next(d for d in summary if d["method"] == "redraw" and d["perturb"] == "reversed")
    assert set(cell["lane"]) == set(LANE_COLUMNS) and cell["lane"]["lap_time_s"]["seeds"] == 2
    assert "Episode return" in table and "pretrained per seed" in table.lower()


def test_the_table_lists_failed_cells_under_the_means(tmp_path):
    """A cell that failed (its row holds `error`, compare leaves it out of the summary) is named with its error under
    the table, so a mean over fewer seeds is never read as the whole grid."""
    rows = [r for r in _lane_rows() if not (r["method"] == "redraw" and r["perturb"] == "reversed" and r["seed"] == 2)]
    failed = {"runs/redraw/reversed_n100/seed2": "DatasetError: episode 3 has NaN actions"}
    table = table_markdown(summarize(rows), _settings(tmp_path), failed=failed)
    assert "**1 failed cell(s)**" in table and "`runs/redraw/reversed_n100/seed2`: DatasetError: episode 3 has NaN actions" in table
    assert "failed" not in table_markdown(summarize(rows), _settings(tmp_path))


def test_lane_plot_one_panel_per_metric(tmp_path):
    from redraw_training.compare_report import plot

    plot(summarize(_lane_rows()), _settings(tmp_path), tmp_path / "plot.png")
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "plot.png")
    assert image.shape[1] > 2 * image.shape[0]               # 4 panels side by side


def test_parse_conditions():
    from redraw_training.cli.compare import parse_conditions

    assert parse_conditions(["nominal,reversed", "trim:0.1+delay:0.1"]) == ["", "reversed", "trim:0.1,delay:0.1"]
    assert parse_conditions(["none, gain:0.5"]) == ["", "gain:0.5"]


# ----------------------------------------------------------------------------------------------------------
# given pretrained checkpoints (tiny, offline-pretrained on random PointGoal data)


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    from redraw_training.config import load_config
    from redraw_training.offline import pretrain_offline
    from redraw_training.rollout import collect

    root = tmp_path_factory.mktemp("given")
    collect("redraw/PointGoal-v0", root / "data", 4, "random", seed=5)
    (root / "data" / "dataset.json").write_text(json.dumps({"env": "redraw/PointGoal-v0"}))
    out = {}
    for model, presets in (("draw", ["tiny"]), ("dreamer", ["tiny", "dreamer"])):
        config = load_config(presets, {"seed": 0, "threads": 1, "imag_starts": 32, "run.log_every": 1})
        pretrain_offline(config, root / "data", root / model, updates=2, progress=False)
        out[model] = root / model
    return out


def test_compare_given_checkpoints_skips_pretraining_and_varies_the_rest(tiny_checkpoints, local_ray, tmp_path, capsys):
    """With --draw-checkpoint / --dreamer-checkpoint every seed uses those models (no pretrain/ folder, the env taken
    from the checkpoint); the seeds still vary the target data and the evaluation; the nominal condition works
    (zero-shot and offline methods on nominal data); a rerun resumes; another checkpoint in the same --out is refused."""
    from redraw_training.cli.compare import main

    out = tmp_path / "cmp"
    args = ["--draw-checkpoint", str(tiny_checkpoints["draw"]), "--dreamer-checkpoint", str(tiny_checkpoints["dreamer"]),
            "--target-perturb", "nominal,reversed", "--seeds", "2", "--out", str(out), "--updates", "2", "--sizes", "40",
            "--eval-episodes", "2", "--set", "imag_starts=32", "--set", "calibrate.log_every=1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "redraw/PointGoal-v0" in printed and "not the pretraining" in printed
    assert not (out / "pretrain").exists()
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert len(rows) == 5 * 2 * 2 and {r["perturb"] for r in rows} == {"", "reversed"}
    for r in rows:
        if r["method"].endswith("zeroshot"):
            assert r["checkpoint"] == str(tiny_checkpoints["draw" if r["method"].startswith("draw") else "dreamer"])
        else:
            assert r["updates"] == 2
    data = [json.loads((out / "data" / f"{c}_seed{s}" / "dataset.json").read_text()) for c in ("nominal", "reversed") for s in (0, 1)]
    assert [d["perturb"] for d in data] == ["", "", "reversed", "reversed"] and all(d["driver"] == "random" for d in data)
    assert data[0]["seed"] != data[1]["seed"]
    zs = {r["seed"]: r["returns"] for r in rows if r["method"] == "draw_zeroshot" and r["perturb"] == ""}
    assert zs[0] != zs[1]                                    # other evaluation episodes per seed, same model
    assert "the same for every seed" in (out / "table.md").read_text()
    stamp = (out / "evals" / "redraw" / "nominal_n40" / "seed1" / "eval.json").stat().st_mtime
    assert main(args) == 0
    assert (out / "evals" / "redraw" / "nominal_n40" / "seed1" / "eval.json").stat().st_mtime == stamp
    capsys.readouterr()
    with folder_lock(out, "compare"):       # as if another compare were running in OUT
        assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{out} is being run by another compare (pid {os.getpid()})" in err
    assert (out / "evals" / "redraw" / "nominal_n40" / "seed1" / "eval.json").stat().st_mtime == stamp   # nothing wiped
    other = [a if a != str(tiny_checkpoints["dreamer"]) else str(tiny_checkpoints["dreamer"] / "checkpoint") for a in args]
    assert main(other) == 0                                  # the same weights through the checkpoint folder are fine
    previous = json.loads((out / "pretrained.json").read_text())
    previous["draw"]["weights_sha256"] = "0" * 64            # as if OUT had been run with other DRAW weights
    (out / "pretrained.json").write_text(json.dumps(previous))
    capsys.readouterr()
    assert main(args) == 2
    assert "was run with the draw model" in capsys.readouterr().err
    swapped = list(args)
    swapped[swapped.index("--dreamer-checkpoint") + 1] = str(tmp_path / "missing")
    assert main(swapped) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_comparison_resumes_from_its_records_on_a_fresh_folder(tiny_checkpoints, local_ray, tmp_path, capsys):
    """--record keeps each finished cell without its large files (the weights, the episodes) and the results; the same
    command with a new, empty --out (a fresh clone) restores them, reruns nothing and gives the same rows; a records
    folder inside --out is refused."""
    from redraw_training.cli.compare import main

    records = tmp_path / "records"
    args = ["--draw-checkpoint", str(tiny_checkpoints["draw"]), "--target-perturb", "reversed", "--methods", "draw_zeroshot,redraw",
            "--seeds", "1", "--updates", "2", "--sizes", "40", "--eval-episodes", "2", "--set", "imag_starts=32",
            "--record", str(records)]
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    first = json.loads((tmp_path / "first" / "results.json").read_text())["rows"]
    assert (records / "results.json").is_file() and (records / "evals" / "redraw" / "reversed_n40" / "seed0" / "eval.json").is_file()
    left_out = json.loads((records / "runs" / "redraw" / "reversed_n40" / "seed0" / "record.json").read_text())["left_out"]
    assert "checkpoint/weights.safetensors" in left_out
    assert not list(records.glob("**/*.safetensors")) and not list(records.glob("data/*/all/*"))
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "fresh")]) == 0
    printed = capsys.readouterr().out
    assert "restored 4 finished cell(s)" in printed
    again = json.loads((tmp_path / "fresh" / "results.json").read_text())
    assert again["cells"]["submitted"] == [] and again["rows"] == [{**r, "checkpoint": r["checkpoint"].replace("first", "fresh")} for r in first]
    assert json.loads((records / "pretrained.json").read_text())["draw"]["path"] == str(tiny_checkpoints["draw"])
    assert main([*args[:-1], str(tmp_path / "fresh" / "records"), "--out", str(tmp_path / "fresh")]) == 2
    assert "must be apart" in capsys.readouterr().err
    assert main([*args, "--out", str(records / "out")]) == 2
    assert "must be apart" in capsys.readouterr().err
    models = json.loads((records / "pretrained.json").read_text())
    models["draw"]["weights_sha256"] = "0" * 64                       # records of a sweep with other DRAW weights
    (records / "pretrained.json").write_text(json.dumps(models))
    assert main([*args, "--out", str(tmp_path / "fresh")]) == 2
    assert "record other draw models" in capsys.readouterr().err


def test_given_checkpoint_of_the_wrong_model_or_env_is_refused(tiny_checkpoints, tmp_path):
    s = CompareSettings(env="redraw/PointGoal-v0", target_perturbs=["reversed"], out=tmp_path, draw_checkpoint=str(tiny_checkpoints["dreamer"]))
    with pytest.raises(CompareError, match="expected a draw model, found a dreamer model"):
        s.check()
    from redraw_training.compare import compare

    s = CompareSettings(env="redraw/PointGoal-v0", target_perturbs=["reversed"], out=tmp_path, methods=["draw_zeroshot"],
                        draw_checkpoint=str(tiny_checkpoints["draw"]), env_kwargs={"size": 16})
    with pytest.raises(CompareError, match="expects observations/actions"):
        compare(s, log=lambda line: None)


def test_the_policy_target_driver_collects_with_the_source_policy_and_its_noise(tiny_checkpoints, tmp_path):
    """--target-driver policy: each data cell depends on the seed's pretrained DRAW model, records its task policy's
    actions plus the stated noise (clipped), reproducibly, and without rewards; settings it cannot use are refused."""
    import numpy as np

    from redraw_training.compare import plan
    from redraw_training.compare_cells import data_cell
    from redraw_training.rollout import make_actor, run_episodes

    s = CompareSettings(env="redraw/PointGoal-v0", target_perturbs=["reversed"], out=tmp_path, seeds=[0, 1], sizes=[60],
                        target_driver="policy", target_noise=0.0, draw_checkpoint=str(tiny_checkpoints["draw"]),
                        dreamer_checkpoint=str(tiny_checkpoints["dreamer"]))
    s.check()
    data = {c.name: c for c in plan(s) if c.stage == "data"}
    assert {c.deps for c in data.values()} == {("given/draw",)}
    assert all(c.spec["settings"]["target_noise"] == 0.0 for c in data.values())
    per_seed = CompareSettings(env="redraw/PointGoal-v0", target_perturbs=["reversed"], out=tmp_path, seeds=[0, 1],
                               target_driver="policy", methods=["redraw"])
    assert [c.deps for c in plan(per_seed) if c.stage == "data"] == [("pretrain/draw_seed0",), ("pretrain/draw_seed1",)]

    def collected(noise: float, name: str) -> list[np.ndarray]:
        s.target_noise = noise
        data_cell(s, "reversed", 0, tmp_path / name, lambda line: None, tiny_checkpoints["draw"])
        info = json.loads((tmp_path / name / "dataset.json").read_text())
        assert info["driver"] == "policy" and "action noise std" in info["driver_class"] and info["reward_free"]
        files = sorted((tmp_path / name / "all").glob("*.npz"))
        assert all("reward" not in np.load(f).files for f in files)
        return [np.load(f)["action"] for f in files]

    clean, again, noisy = collected(0.0, "a"), collected(0.0, "b"), collected(0.5, "c")
    assert all(np.array_equal(x, y) for x, y in zip(clean, again))            # reproducible per seed
    from redraw_training.envs import make_env

    env = make_env("redraw/PointGoal-v0", "reversed")
    _, eps = run_episodes(env, make_actor(env, str(tiny_checkpoints["draw"]), 7_000_000), 0, 7_000_000, keep=True, transitions=60)
    assert np.allclose(np.concatenate([e["action"] for e in eps]), np.concatenate(clean))   # the policy's own actions
    steps = np.concatenate(noisy)
    assert np.abs(steps).max() <= 1.0 and not np.allclose(steps[: len(np.concatenate(clean))], np.concatenate(clean)[: len(steps)])
    with pytest.raises(CompareError, match="target noise is the std of Gaussian action noise, >= 0; found -0.1"):
        CompareSettings(env="redraw/PointGoal-v0", target_perturbs=["reversed"], out=tmp_path, target_driver="policy",
                        target_noise=-0.1).check()
    with pytest.raises(CompareError, match="the policy target driver is the draw source policy, which acts in env kwargs"):
        CompareSettings(env="redraw/PointGoal-v0", target_perturbs=["reversed"], out=tmp_path, target_driver="policy",
                        model_env_kwargs={"draw": {"size": 16}}).check()
