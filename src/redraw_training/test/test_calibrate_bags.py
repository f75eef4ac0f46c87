"""`calibrate --data <rosbag2 recording>` (and `finetune`, and `calibrate()` in Python) convert the bags with the
checkpoint's preprocessing, then train."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.synthetic_bag import write_recording, write_redraw_recording

from redraw_common.episodes import iter_episodes
from redraw_training.checkpoint import read_manifest
from redraw_training.cli.calibrate import main as calibrate_main
from redraw_training.cli.finetune import main as finetune_main
from redraw_training.config import config_from_dict


def test_calibrate_accepts_a_bag_and_converts_it_with_the_checkpoint_preprocessing(redraw_run, tmp_path, capsys):
    bag = write_recording(tmp_path / "rec")
    out = tmp_path / "cal"
    code = calibrate_main(["--checkpoint", str(redraw_run.pretrain_dir), "--data", str(bag), "--out", str(out),
                           "--updates", "3", "--no-progress", "--set", "calibrate.holdout=0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "converting rosbag2 input" in printed
    datasets = list((out / "dataset").glob("bags-*"))
    assert len(datasets) == 1
    eps = [ep for _, ep in iter_episodes(datasets[0])]
    _, manifest = read_manifest(redraw_run.pretrain_dir)
    pre = manifest["preprocessing"]
    assert sum(len(ep["image"]) for ep in eps) >= 50
    assert eps[0]["image"].shape[1:] == (pre["height"], pre["width"], 3 if pre["mode"] == "rgb" else 2)
    assert "reward" not in eps[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counters"]["updates"] == 3


def test_finetune_accepts_a_bag_as_calibrate_does(redraw_run, tmp_path, capsys):
    bag = write_recording(tmp_path / "rec")
    out = tmp_path / "ft"
    code = finetune_main(["--method", "draw_finetune", "--checkpoint", str(redraw_run.pretrain_dir), "--data", str(bag), "--out", str(out),
                          "--updates", "3", "--no-progress", "--set", "calibrate.holdout=0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "converting rosbag2 input" in printed
    (dataset,) = (out / "dataset").glob("bags-*")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "finetune" and summary["counters"]["updates"] == 3
    assert summary["dataset"]["path"] == str(dataset) and summary["dataset"]["train_steps"] >= 50


def test_calibrate_in_python_takes_a_bag_folder(redraw_run, tmp_path, capsys):
    from redraw_training.calibration import calibrate

    write_recording(tmp_path / "bags" / "rec")     # a folder that holds a recording
    _, manifest = read_manifest(redraw_run.pretrain_dir)
    config = config_from_dict(manifest["config"], manifest.get("presets", [])).update({"calibrate": {"updates": 2, "holdout": 0.0}})
    summary = calibrate(config, redraw_run.pretrain_dir, tmp_path / "bags", tmp_path / "cal", progress=False)
    assert summary["counters"]["updates"] == 2 and summary["dataset"]["path"].startswith(str(tmp_path / "cal" / "dataset"))
    assert "converting rosbag2 input" in capsys.readouterr().out


def refused_then_accepted(checkpoint, bag: Path, out: Path, capsys, batch_length: int, checks: int) -> str:
    """calibrate on `bag` refuses (exit 2, nothing left at `out`) and returns its error; with --accept-unclean it
    calibrates (2 updates)."""
    args = ["--checkpoint", str(checkpoint), "--data", str(bag), "--out", str(out), "--updates", "2", "--no-progress",
            "--set", "calibrate.holdout=0", "--set", f"batch_length={batch_length}", "--set", "batch_size=2"]
    codes = []
    for extra in ([], ["--accept-unclean"]):
        codes.append(calibrate_main(args + extra))
        captured = capsys.readouterr()
        if not extra:
            err = captured.err
            assert codes == [2], err
            assert f"fail {checks} check(s)" in err and "--accept-unclean" in err, err
            assert not out.exists()          # nothing trained, nothing half-written
    assert codes[1] == 0, captured.err
    assert f"training on data that fail {checks} check(s)" in captured.out
    assert json.loads((out / "summary.json").read_text())["counters"]["updates"] == 2
    return err


def test_calibrate_refuses_a_recording_the_converter_could_barely_use_unless_told(redraw_run, tmp_path, capsys):
    # the camera out for 0.3 s of every 2 s (a twin that skipped frames): ticks without a fresh frame, frames lost
    bag = write_recording(tmp_path / "rec", seconds=12.0, outage=(2.0, 0.3))
    err = refused_then_accepted(redraw_run.pretrain_dir, bag, tmp_path / "cal", capsys, batch_length=4, checks=2)
    assert "12 of 120 control ticks (10.0%) have no fresh camera frame or odometry (at most 5%)" in err, err
    assert "the camera lost 44 frames (12.5%; at most 5%)" in err


def test_calibrate_refuses_the_loaded_machine_recording_of_issue_24_unless_told(redraw_run, tmp_path, capsys):
    # what a twin that skipped frames left (issue 24): 10000 transitions asked for; the camera out for 0.6 s of every
    # 2.1 s, so the converter keeps ~1430 transitions in episodes shorter than one training sequence
    bag = write_redraw_recording(tmp_path / "rec", requested=10000, seconds=197.4, outage=(2.1, 0.6))
    err = refused_then_accepted(redraw_run.pretrain_dir, bag, tmp_path / "cal", capsys, batch_length=16, checks=4)
    assert f"{bag}: 1435 usable transitions of the 10000 the recorder was asked for (14.3%; at least 90%)" in err
    assert "539 of 1974 control ticks (27.3%) have no fresh camera frame or odometry (at most 5%)" in err
    assert "the camera lost 1674 frames (28.4%; at most 5%)" in err
    assert "the mean episode is 15.3 transitions, shorter than one training sequence (batch_length=16)" in err


def test_data_checks_name_each_failure_with_its_number_and_threshold():
    from redraw_training.datacheck import failed_checks

    report = {"inputs": [{"ticks": {"ticks": 1000, "ticks_without_observation": 10}}], "dropped_fraction": 0.0, "dropped_frames": 0,
              "episode_length": {"mean": 40.0}}
    assert failed_checks(report, batch_length=16) == []
    bad = {**report, "dropped_fraction": 0.2, "dropped_frames": 600, "episode_length": {"mean": 9.5}}
    failed = failed_checks(bad, batch_length=16)
    assert len(failed) == 2
    assert "the camera lost 600 frames (20.0%; at most 5%)" in failed[0]
    assert "mean episode is 9.5 transitions, shorter than one training sequence (batch_length=16)" in failed[1]
    # the recorder's request: 90 % of it must be usable (a bag without recording.json requests nothing)
    entry = {"path": "rec", "ticks": {"ticks": 1000, "ticks_without_observation": 10}, "transitions": 899, "transitions_requested": 1000}
    assert failed_checks({**report, "inputs": [entry]}, 16) == ["rec: 899 usable transitions of the 1000 the recorder was asked for "
                                                                   "(89.9%; at least 90%)"]
    assert failed_checks({**report, "inputs": [{**entry, "transitions": 900}]}, 16) == []
    assert failed_checks({**report, "inputs": [{**entry, "transitions_requested": None}]}, 16) == []
