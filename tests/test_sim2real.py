"""issue 8, the main job: `sim2real` end to end on the digital twin with tiny sizes (a tiny model pretrained here on
a few hundred simulator transitions, 200 recorded transitions, 50 calibration updates, 10 simulated seconds of
driving per policy, 4x real time). Checks that every stage ran and left its outputs, that summary.json and
comparison.png hold both policies' metrics with values consistent with each other, and that no process outlives
the job (also when it is interrupted). Not a learning claim."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from helpers.cpuhog import CpuHog

from redraw_training.bags import convert_bags

pytestmark = pytest.mark.ros
METRICS = ("dense_reward", "lap_time_s", "centre_offset_cm", "laps", "departures")
DRIVE_S = 10.0


def sim2real_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "redraw_sim.sim2real", *args]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention `text` (every node of a run has its OUT folder in its argv)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny DRAW model pretrained offline on 300 explorer transitions of the nominal Duckietown env."""
    tmp = tmp_path_factory.mktemp("sim2real_model")
    subprocess.run([sys.executable, "-m", "redraw_sim.collect", "--env", "redraw/DuckietownLoop-v0", "--driver", "explore",
                    "--transitions", "300", "--seed", "1", "--out", str(tmp / "data"), "--no-progress"], check=True, timeout=180)
    subprocess.run([sys.executable, "-m", "redraw_training", "pretrain", "--dataset", str(tmp / "data"), "--preset", "tiny",
                    "--updates", "50", "--threads", "1", "--seed", "0", "--out", str(tmp / "model"), "--no-progress"], check=True, timeout=300)
    return tmp / "model"


@pytest.fixture(scope="module")
def job(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim2real") / "run"
    t0 = time.monotonic()
    res = subprocess.run(sim2real_cmd("--model", str(tiny_model), "--transitions", "200", "--updates", "50", "--drive-seconds", str(DRIVE_S),
                                      "--real-time-factor", "4", "--drive-real-time-factor", "4", "--seed", "3",
                                      "--out", str(out)),
                         capture_output=True, text=True, timeout=600)
    return out, res, time.monotonic() - t0


def test_every_stage_runs_and_leaves_its_outputs(job):
    out, res, _ = job
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    for stage in ("record", "calibrate", "export", "drive_draw_zeroshot", "drive_redraw"):
        assert f"✓ {stage}:" in res.stdout, res.stdout
        assert any((out / "logs" / stage).glob("*.log")), f"no logs of {stage}"
    assert "DRAW zero-shot" in res.stdout and "ReDRAW" in res.stdout and "lane departures" in res.stdout
    side = json.loads((out / "bag" / "recording.json").read_text())
    assert side["state"] == "finished" and side["stats"]["transitions"] >= 200
    assert json.loads((out / "redraw" / "checkpoint" / "checkpoint.json").read_text())["kind"] == "calibrate"
    manifests = [json.loads((out / "export" / name / "policy.manifest.json").read_text()) for name in ("draw_zeroshot", "redraw")]
    assert manifests[0]["sha256"] != manifests[1]["sha256"]
    # ROS: loopback discovery, ROS_HOME under OUT (the nodes wrote their logs there), one domain per stage
    summary = json.loads((out / "summary.json").read_text())
    ros = summary["ros"]
    assert set(ros) == {"record", "calibrate", "export", "drive_draw_zeroshot", "drive_redraw"}
    assert len({r["ROS_DOMAIN_ID"] for r in ros.values()}) == len(ros)
    for r in ros.values():
        assert r["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST" and Path(r["ROS_HOME"]).is_relative_to(out)
    assert any((out / "logs" / "drive_redraw" / "ros_home" / "log").iterdir())
    assert processes_mentioning(str(out)) == []


def test_summary_and_plot_hold_consistent_metrics_of_both_policies(job):
    out, res, _ = job
    assert res.returncode == 0, res.stdout[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["policies"]) == {"draw_zeroshot", "redraw"}
    assert set(summary["stage_seconds"]) == {"record", "calibrate", "export", "drive_draw_zeroshot", "drive_redraw"}
    for name, policy in summary["policies"].items():
        m = policy["metrics"]
        assert set(METRICS) <= set(m), name
        assert m["sim_seconds"] == pytest.approx(DRIVE_S, abs=0.2)
        assert m["truth_coverage"] > 0.9
        assert m["laps"] == len(m["lap_times_s"])
        assert (math.isnan(m["lap_time_s"]) and m["laps"] == 0) or m["lap_time_s"] == pytest.approx(sum(m["lap_times_s"]) / m["laps"])
        # every departure seen both as an episode event and in the ground truth (the count is the larger one; a lost
        # ground-truth message - coverage may be 90 % - or the window's edge can hide one from a stream), and each one
        # starts a new episode
        seen = (m["departures_seen_in_events"], m["departures_seen_in_truth"])
        assert m["departures"] == max(seen) and min(seen) >= m["departures"] - 1, seen
        assert m["departures"] <= m["episodes"] <= m["departures"] + 1
        # dense reward per control step: progress + centre terms in [-1.5, 1], and each departure -20 once
        steps = m["control_steps"]
        assert steps == pytest.approx(DRIVE_S * 10.0, abs=2)
        assert -1.5 - 20.0 * m["departures"] / steps - 1e-6 <= m["dense_reward"] <= 1.0 - 20.0 * m["departures"] / steps + 1e-6
        assert 0.0 <= m["centre_offset_cm"] <= 10.0 + 1e-6      # the twin ends an episode beyond 10 cm
        assert policy["policy"]["status_messages"] > 0.5 * steps, policy["policy"]
        # the drive file holds the same metrics and a trace over the window
        drive = json.loads((out / "drive" / f"{name}.json").read_text())
        assert drive["metrics"]["dense_reward"] == m["dense_reward"] and drive["model_id"] == f"sim2real-{name}"
        trace = drive["trace"]
        assert len(trace) >= 0.8 * DRIVE_S * 10 and trace[-1][0] <= DRIVE_S + 0.1
        assert trace[-1][1] == pytest.approx(m["distance_m"], abs=0.05)
    image = cv2.imread(str(out / "comparison.png"))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600


def test_refuses_bad_options_and_an_earlier_run(job, tiny_model):
    out, _, _ = job
    res = subprocess.run(sim2real_cmd("--real-time-factor", "0", "--out", str(out.parent / "x")), capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--real-time-factor must be in (0, 100], found 0.0" in res.stderr
    res = subprocess.run(sim2real_cmd("--model", str(tiny_model), "--out", str(out)), capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "sim2real: error:" in res.stderr and "already holds a run" in res.stderr and "--overwrite" in res.stderr
    res = subprocess.run(sim2real_cmd("--model", str(out / "nothing"), "--out", str(out.parent / "y")), capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "no such folder" in res.stderr and "Traceback" not in res.stderr


def test_interrupted_job_ends_every_process_it_started(tiny_model, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(sim2real_cmd("--model", str(tiny_model), "--transitions", "3000", "--real-time-factor", "1", "--out", str(out)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        log = out / "logs" / "record"
        while time.monotonic() < deadline and not any("recording robot" in p.read_text(errors="replace") for p in log.glob("recorder*.log")):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        assert len(processes_mentioning(str(out))) >= 3          # twin, explorer, recorder
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = proc.stdout.read()
    assert code == 130 and "interrupted" in text, text[-3000:]
    assert processes_mentioning(str(out)) == []


# --- the record stage under load (issue 24) ---------------------------------------------------------------------
RECORD_TRANSITIONS = 300
#: the explorer may leave the lane this many times more with a core taken than with it free: departures in 30
#: simulated seconds are a small count (mostly before the explorer has identified the reversed commands), so the
#: margin is ~3 standard deviations of a Poisson count, 1 + 3 sqrt(idle + 1). (The first margin, 2 + idle / 4, failed
#: on its second run with 4 departures against 1.) The issue's failure, a departure every 1-3 simulated seconds, is
#: 10-30 departures here.
def departure_margin(idle: int) -> float:
    return 1.0 + 3.0 * math.sqrt(idle + 1.0)


TWIN_STATUS_RE = re.compile(r"t_sim ([\d.]+) s \(([\d.]+)x real time achieved.*?\), (\d+) frames .*?\((\d+) left the lane")


def record_stage(model: Path, out: Path, hog: bool) -> dict:
    """The main job's own record stage (Sim2Real.record), at 4x real time at most, optionally with a core taken."""
    from rich.console import Console

    from redraw_sim.sim2real import Progress, Sim2Real, parse_args

    opts = parse_args(["--model", str(model), "--transitions", str(RECORD_TRANSITIONS), "--real-time-factor", "4", "--seed", "3",
                       "--out", str(out)])
    console = Console(file=io.StringIO(), width=140)
    job = Sim2Real(opts, console)
    t0 = time.monotonic()
    with CpuHog(cores=1) if hog else contextlib.nullcontext() as hogs:
        try:
            job.prepare_out()
            job.record(Progress(console))
        finally:
            job.stop_all()
        if hog:
            assert hogs.alive(), "the CPU hog died during the run"
    stage = dict(job.stages["record"], wall_s=time.monotonic() - t0)
    found = TWIN_STATUS_RE.search(stage["twin_status"])
    assert found, stage["twin_status"]
    stage["t_sim"], stage["achieved_rtf"], stage["frames"], stage["departures"] = (
        float(found.group(1)), float(found.group(2)), int(found.group(3)), int(found.group(4)))
    assert processes_mentioning(str(out)) == []
    return stage


def test_record_stage_gives_the_same_data_with_a_core_taken_only_slower(tiny_model, tmp_path):
    stages = {hog: record_stage(tiny_model, tmp_path / ("hog" if hog else "idle"), hog) for hog in (False, True)}
    for hog, s in stages.items():
        rec = s["recording"]
        # every usable transition asked for, counted by the converter's rule: the recorder stops at the first count
        # >= the request (an episode counts from its min_episode_length-th tick on, so the count can step past it by
        # up to 7) and decides the last tick or two at close, and the converter keeps as many: the same ticks (one
        # TickLocker for both), each judged once its frame has arrived. 301 recorded and 301-302 converted in 3 runs of
        # this test (idle and with a core taken each) at load 5 (the old online rule: 307-337 converted of 300); at
        # most 2 % more, for an episode event that reached the recorder after the ticks it cuts
        assert s["transitions_requested"] == RECORD_TRANSITIONS <= rec["transitions"] < RECORD_TRANSITIONS + 10, (hog, rec)
        converted = convert_bags([s["bag"]], Path(s["bag"]).parent / "dataset", None, 10.0, verbose=False)["transitions"]
        assert rec["transitions"] <= converted <= 1.02 * rec["transitions"], (hog, converted, rec)
        s["converted"], s["recorded"] = converted, rec["transitions"]
        # the twin rendered every frame its 30 Hz owes over the simulated time (a status line is up to one tick late)
        assert abs(s["frames"] - 30.0 * s["t_sim"]) <= 3, (hog, s["frames"], s["t_sim"])
        # and the recorder got them (a reliable subscription in twin runs; best-effort, it lost 13 of 1282 frames
        # with both cores busy): at most 1 % missing
        assert rec["camera_drops_estimated"] <= 0.01 * s["frames"] and rec["camera_out_of_order"] == 0, (hog, rec)
        assert 0 < s["achieved_rtf"] <= 4.0 + 0.05, (hog, s["twin_status"])
    report = {("one core taken" if hog else "idle"): {k: s[k] for k in ("wall_s", "achieved_rtf", "frames", "t_sim", "departures", "recorded", "converted")}
              for hog, s in stages.items()}
    print("record stage:", report)
    idle, loaded = stages[False]["departures"], stages[True]["departures"]
    assert loaded <= idle + departure_margin(idle), report
