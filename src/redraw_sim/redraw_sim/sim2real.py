"""sim2real: the main job on the digital twin, one command: record -> calibrate -> export -> drive -> compare.

    sim2real                                          # reversed actions, 10000 transitions, models/duckietown_draw
    sim2real --target-perturb trim:0.2 --transitions 10000 --seed 1 --out runs/sim2real_trim

Stages (logs of every process under OUT/logs/<stage>/):
1. record     the twin with the perturbation (the "real" robot) + the exploration driver + the recorder
              (launch/twin_record.launch.py) -> a rosbag2 calibration recording of N transitions, OUT/bag
2. calibrate  `calibrate --checkpoint MODEL --data OUT/bag --out OUT/redraw --updates U`: the latent
              dynamics residual and a fresh policy, against the frozen sim-pretrained world model
3. export     ONNX + manifest of both policies: DRAW zero-shot (MODEL itself) and ReDRAW (OUT/redraw),
              OUT/export/{draw_zeroshot,redraw}/policy.onnx
4. drive      per policy: the twin with the same perturbation + the policy node (launch/twin_drive.launch.py)
              + drive_monitor, for D simulated seconds from the policy's first command; metrics from the
              twin's ground truth (redraw_sim.drive_metrics): dense reward per step, lap time, centre offset,
              laps completed, lane departures (the twin puts the robot back on the lane after each)
5. report     OUT/summary.json, OUT/comparison.png and the table on the terminal

The twin and every node follow the twin's simulated clock (/clock, use_sim_time), so the real-time factor
changes the wall time, not the data: the factor is an upper bound, and when the machine cannot render every
camera frame or a node lags (a loaded machine), the twin slows its clock instead of skipping frames and waits for
a lagging driver (its achieved factor is in its status lines and in summary.json's twin_status). The recorder
stops at the requested number of *usable* transitions, counted by the converter's own alignment rule. Defaults:
recording at (at most) 2.5x real time, driving at 1x. Every ROS process
gets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, ROS_HOME under OUT/logs and a ROS_DOMAIN_ID of its own stage,
and every child process is ended (by process group) on exit, error or Ctrl-C. Exit codes: 0 done, 1 a
stage failed (the message says which and where its log is), 2 bad options, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from redraw_common.bringup import NodeGroup, NodeProcess, executable_path, start_launch, unique_domain_id, workspace_root
from redraw_common.checkpointfile import MANIFEST, CheckpointError, read_manifest
from redraw_common.cli import CommandError, entry_point, renamed
from redraw_common.perturb import parse_perturb
from redraw_sim.perturb import DUCKIETOWN_PERTURBATIONS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
POLICIES = ("draw_zeroshot", "redraw")
LABELS = {"draw_zeroshot": "DRAW zero-shot", "redraw": "ReDRAW"}
ROBOT = "sim2real"
#: name -> (label, unit, higher is better)
METRICS = {
    "dense_reward": ("dense reward / step", "", True),
    "lap_time_s": ("lap time", "s", False),
    "centre_offset_cm": ("centre offset", "cm", False),
    "laps": ("laps completed", "", True),
    "departures": ("lane departures", "", False),
}
OUTPUTS = ("bag", "redraw", "export", "drive", "logs", "summary.json", "comparison.png")


class StageError(RuntimeError):
    """A stage failed; the message says what happened and where to look."""


class Interrupted(Exception):
    """SIGINT or SIGTERM."""


@dataclass
class Options:
    model: str
    perturb: str
    transitions: int
    seed: int
    out: str
    updates: int
    drive_seconds: float
    real_time_factor: float
    drive_real_time_factor: float
    camera: str
    bag: str | None
    threads: int | None
    domain_id: int | None
    overwrite: bool


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="sim2real", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/duckietown_draw", help="sim-pretrained DRAW run or checkpoint folder (default %(default)s)")
    p.add_argument("--target-perturb", default="reversed",
                   help="the twin's dynamics perturbation: the target, the 'real' robot (default %(default)s; '' = nominal)")
    renamed(p, "--perturb", "--target-perturb (the twin: the 'real' robot)")
    p.add_argument("--transitions", type=int, default=10000,
                   help="calibration transitions to record at 10 Hz (default %(default)s, the paper's size: with 3000 or 6000 the "
                        "calibrated policy still left the reversed robot's lane in simulation)")
    p.add_argument("--seed", type=int, default=0, help="seed of the explorer, the twin's start poses and calibration (default %(default)s)")
    p.add_argument("--out", default="runs/sim2real", help="output folder (default %(default)s)")
    p.add_argument("--updates", type=int, default=3000, help="calibration updates (default %(default)s: the fresh policy needs about that many to lap)")
    p.add_argument("--drive-seconds", type=float, default=120.0,
                   help="simulated seconds each policy drives (default %(default)s: 2 laps of loop_empty at 41 s per lap)")
    p.add_argument("--real-time-factor", type=float, default=2.5,
                   help="most simulated seconds per wall second of the twin while recording (default %(default)s; a loaded "
                        "machine runs slower, with the same data)")
    p.add_argument("--drive-real-time-factor", type=float, default=1.0,
                   help="... while the policies drive (default %(default)s: a loaded 2-core machine still renders about every frame the "
                        "policy node needs; at 2x its watchdog stops the wheels for stale frames in 15-20 %% of the control ticks there)")
    p.add_argument("--camera", default="auto", help="the twin's camera WIDTHxHEIGHT (default: the pretraining env's, else 160x120)")
    p.add_argument("--bag", default=None, help="use this calibration recording instead of recording one (skips stage 1)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads of calibrate (default 0: one per core free when calibrate starts; on a loaded 2-core "
                        "machine a second thread makes each update slower, see bench/results/calibrate.json)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID of the first stage, +1 per later one (default: from the pid, in 101..200)")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run in --out")
    a = p.parse_args(argv)
    opts = Options(model=a.model, perturb=a.target_perturb, transitions=a.transitions, seed=a.seed, out=a.out, updates=a.updates,
                   drive_seconds=a.drive_seconds, real_time_factor=a.real_time_factor,
                   drive_real_time_factor=a.drive_real_time_factor, camera=a.camera, bag=a.bag, threads=a.threads,
                   domain_id=a.domain_id, overwrite=a.overwrite)
    problems = []
    if opts.transitions < 50:
        problems.append(f"--transitions must be >= 50, found {opts.transitions}")
    if opts.updates < 1:
        problems.append(f"--updates must be >= 1, found {opts.updates}")
    if not (opts.drive_seconds >= 1.0 and math.isfinite(opts.drive_seconds)):
        problems.append(f"--drive-seconds must be >= 1, found {opts.drive_seconds}")
    for name in ("real_time_factor", "drive_real_time_factor"):
        if not 0 < getattr(opts, name) <= 100:
            problems.append(f"--{name.replace('_', '-')} must be in (0, 100], found {getattr(opts, name)}")
    try:
        parse_perturb(opts.perturb, DUCKIETOWN_PERTURBATIONS)
    except ValueError as exc:
        problems.append(f"--target-perturb: {exc}")
    if opts.camera != "auto" and not re.fullmatch(r"\d+x\d+", opts.camera):
        problems.append(f"--camera must be WIDTHxHEIGHT like 160x120 or 'auto', found {opts.camera!r}")
    if opts.domain_id is not None and not 0 <= opts.domain_id <= 228:
        problems.append(f"--domain-id must be in [0, 228], found {opts.domain_id}")
    if problems:
        p.error("; ".join(problems))
    return opts


# ----------------------------------------------------------------------------------------------------------------
# progress

class Progress:
    """One rich progress bar per stage; on a non-terminal (a log file, CI) a plain line every `every` seconds."""

    def __init__(self, console, every: float = 10.0):
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.console = console
        self.every = every
        self.bar = RichProgress(SpinnerColumn(), TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console, transient=False,
                                disable=not console.is_terminal)
        self.tasks: dict[str, Any] = {}
        self.last_line: dict[str, float] = {}

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def add(self, name: str, total: float) -> None:
        self.tasks[name] = self.bar.add_task(name, total=total, info="")
        self.last_line[name] = 0.0

    def update(self, name: str, completed: float, info: str = "", total: float | None = None) -> None:
        kwargs = {"total": total} if total is not None else {}
        self.bar.update(self.tasks[name], completed=completed, info=info, **kwargs)
        now = time.monotonic()
        if not self.console.is_terminal and now - self.last_line[name] >= self.every:
            self.last_line[name] = now
            total_now = self.bar.tasks[self.tasks[name]].total
            self.console.print(f"  {name}: {completed:g}/{total_now:g} {info}", highlight=False)

    def done(self, name: str, info: str) -> None:
        task = self.bar.tasks[self.tasks[name]]
        self.bar.update(self.tasks[name], completed=task.total, info=info)
        self.console.print(f"[green]✓[/green] {name}: {info}", highlight=False)


# ----------------------------------------------------------------------------------------------------------------
# the job

def _last_match(pattern: re.Pattern, text: str) -> re.Match | None:
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None


def _fmt_rtf(value: float) -> str:
    """Launch arguments are strings that ROS types by their look: the twin's real_time_factor must read as a float."""
    return repr(float(value))


class Sim2Real:
    TRANSITIONS_RE = re.compile(r"(\d+) usable transitions")

    def __init__(self, opts: Options, console):
        self.opts = opts
        self.console = console
        self.out = Path(opts.out)
        self.logs = self.out / "logs"
        self.root = workspace_root()
        self.launch_dir = self.root / "launch"
        self.model = self._find_model(opts.model)
        self.manifest = self._read_checkpoint(self.model)
        if opts.bag and not Path(opts.bag).exists():   # before prepare_out may replace an earlier run's outputs
            raise CommandError(f"--bag {opts.bag}: no such recording")
        self.camera = self._camera(opts.camera)
        self.groups: list[NodeGroup] = []
        self.times: dict[str, float] = {}
        self.stages: dict[str, Any] = {}
        self.notes: list[str] = []
        self.ros: dict[str, dict[str, Any]] = {}
        self.domain = opts.domain_id if opts.domain_id is not None else unique_domain_id(101, 196)

    # setup ------------------------------------------------------------------------------------------------------
    def _find_model(self, model: str) -> Path:
        path = Path(model)
        if not path.exists() and not path.is_absolute() and (self.root / path).exists():
            path = self.root / path
        if not path.exists():
            raise CommandError(f"--model {model}: no such folder (expected a pretrain run folder such as models/duckietown_draw)")
        return path.resolve()

    @staticmethod
    def _read_checkpoint(model: Path) -> dict[str, Any]:
        try:
            directory, manifest = read_manifest(model)
        except CheckpointError as exc:
            raise CommandError(f"--model {model}: {exc} (expected a pretrain run folder such as models/duckietown_draw)") from None
        if manifest["kind"] != "pretrain":
            raise CommandError(f"{directory / MANIFEST}: a {manifest['kind']!r} checkpoint; sim2real starts from a sim-pretrained ('pretrain') one")
        if not manifest.get("preprocessing"):
            raise CommandError(f"{directory / MANIFEST} records no preprocessing settings; the twin's camera frames cannot be converted for it")
        return manifest

    def _camera(self, camera: str) -> tuple[int, int]:
        if camera == "auto":
            kwargs = self.manifest.get("extra", {}).get("env", {}).get("kwargs", {}) or {}
            return int(kwargs.get("camera_width", 160)), int(kwargs.get("camera_height", 120))
        w, h = camera.split("x")
        return int(w), int(h)

    def prepare_out(self) -> None:
        existing = [name for name in OUTPUTS if (self.out / name).exists() and not (name == "bag" and self.opts.bag)]
        if existing and not self.opts.overwrite:
            raise CommandError(f"{self.out} already holds a run ({', '.join(existing)}); choose another --out or pass --overwrite")
        for name in existing:
            path = self.out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        self.logs.mkdir(parents=True, exist_ok=True)

    def group(self, stage: str) -> NodeGroup:
        """A NodeGroup for one stage: its own domain id (base + stage count), ROS_HOME and logs in OUT/logs/<stage>."""
        group = NodeGroup(self.logs / stage, domain_id=self.domain + len(self.groups))
        self.groups.append(group)
        self.ros[stage] = {"ROS_DOMAIN_ID": group.domain_id, "ROS_HOME": group.env["ROS_HOME"],
                           "ROS_AUTOMATIC_DISCOVERY_RANGE": group.env["ROS_AUTOMATIC_DISCOVERY_RANGE"]}
        return group

    def stop_all(self) -> None:
        for group in reversed(self.groups):
            group.stop_all()

    # helpers ----------------------------------------------------------------------------------------------------
    def _check_alive(self, stage: str, procs: dict[str, NodeProcess], expect_exit: tuple[str, ...] = ()) -> None:
        for name, proc in procs.items():
            if name in expect_exit or proc.alive():
                continue
            raise StageError(f"{stage}: {name} exited with code {proc.returncode} (log {proc.log_path}):\n{proc.tail(2500)}")

    def _wait_process(self, stage: str, proc: NodeProcess, progress: Progress, poll) -> None:
        while proc.alive():
            poll()
            time.sleep(0.5)
        poll()
        if proc.returncode != 0:
            raise StageError(f"{stage}: `{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(proc.argv))}` exited with code "
                             f"{proc.returncode} (log {proc.log_path}):\n{proc.tail(2500)}")

    # stage 1 --------------------------------------------------------------------------------------------------------
    def record(self, progress: Progress) -> Path:
        o = self.opts
        if o.bag:
            bag = Path(o.bag)
            progress.add("record", 1)
            progress.done("record", f"using the recording {bag} (--bag)")
            self.stages["record"] = {"bag": str(bag), "recorded": False}
            return bag
        bag = self.out / "bag"
        launch = self.launch_dir / "twin_record.launch.py"
        progress.add("record", o.transitions)
        t0 = time.monotonic()
        group = self.group("record")
        width, height = self.camera
        procs = start_launch(group, launch, {
            "robot": ROBOT, "perturb": o.perturb, "driver": "explore", "output": str(bag), "max_transitions": str(o.transitions),
            "use_sim_time": "true", "real_time_factor": _fmt_rtf(o.real_time_factor),
        }, overrides={"twin_node": {"camera_width": width, "camera_height": height, "seed": o.seed},
                      "explore_node": {"seed": o.seed}, "recorder": {"progress_period": 1.0}}, strict=True)
        recorder = procs["recorder"]
        deadline = t0 + 120.0 + 3.0 * o.transitions / 10.0 / o.real_time_factor
        done = 0

        def poll() -> None:
            nonlocal done
            found = _last_match(self.TRANSITIONS_RE, recorder.output()[-4000:])
            if found:
                done = int(found.group(1))
            wall = time.monotonic() - t0
            progress.update("record", min(done, o.transitions), f"{wall:.0f} s wall, {done / 10.0 / max(wall, 1e-9):.2f}x real time")

        while recorder.alive():
            poll()
            self._check_alive("record", procs, expect_exit=("recorder",))
            if time.monotonic() > deadline:
                raise StageError(f"record: {done} of {o.transitions} transitions after {time.monotonic() - t0:.0f} s; the twin is far slower than "
                                 f"{o.real_time_factor:g}x real time (logs in {group.run_dir}); try a lower --real-time-factor")
            time.sleep(0.5)
        poll()
        if recorder.returncode != 0:
            raise StageError(f"record: the recorder exited with code {recorder.returncode} (log {recorder.log_path}):\n{recorder.tail(2500)}")
        twin_log = procs["twin_node"].log_path
        group.stop_all()
        wall = time.monotonic() - t0
        side = _read_json(bag / "recording.json") or {}
        self.times["record"] = wall
        self.stages["record"] = {"bag": str(bag), "recorded": True, "transitions_requested": o.transitions, "wall_seconds": wall,
                                 "camera": list(self.camera), "twin_status": _last_status(twin_log), "recording": side.get("stats", {})}
        progress.done("record", f"{o.transitions} transitions in {wall:.0f} s -> {bag}")
        return bag

    # stage 2 --------------------------------------------------------------------------------------------------------
    def calibrate(self, progress: Progress, bag: Path) -> Path:
        o = self.opts
        run = self.out / "redraw"
        progress.add("calibrate", o.updates)
        t0 = time.monotonic()
        group = self.group("calibrate")
        argv = [sys.executable, "-m", "redraw_training", "calibrate", "--checkpoint", str(self.model), "--data", str(bag), "--out", str(run),
                "--updates", str(o.updates), "--seed", str(o.seed), "--no-progress"]
        if o.threads is not None:
            argv += ["--threads", str(o.threads)]
        proc = group.start_command("calibrate", argv)
        scalars = run / "scalars.jsonl"

        def poll() -> None:
            step = _last_step(scalars)
            lines = [ln for ln in proc.output()[-2000:].splitlines() if ln.strip()]
            info = lines[-1].strip()[:70] if lines and step == 0 else f"{time.monotonic() - t0:.0f} s"
            progress.update("calibrate", step, info)

        self._wait_process("calibrate", proc, progress, poll)
        wall = time.monotonic() - t0
        summary = _read_json(run / "summary.json") or {}
        self.times["calibrate"] = wall
        hold = summary.get("holdout") or {}
        reports = sorted((run / "dataset").glob("*/report.json"))
        dataset = (_read_json(reports[-1]) or {}) if reports else {}
        self.stages["calibrate"] = {"run": str(run), "updates": o.updates, "wall_seconds": wall, "holdout": hold,
                                    "dataset": {k: dataset[k] for k in ("transitions", "episodes", "clean", "dropped_frames", "held_ticks")
                                                if k in dataset}}
        if dataset and not dataset.get("clean", True):
            self.notes.append(f"the calibration recording is not clean ({dataset.get('dropped_frames')} camera frames dropped, "
                              f"{dataset.get('held_ticks')} held ticks; {reports[-1]}); the converter cut the episodes around them")
        kl = (f", held-out KL {hold['holdout/kl_sim']:.2f} -> {hold['holdout/kl_redraw']:.2f}" if "holdout/kl_sim" in hold else "")
        progress.done("calibrate", f"{o.updates} updates in {wall:.0f} s{kl} -> {run}")
        return run

    # stage 3 --------------------------------------------------------------------------------------------------------
    def export(self, progress: Progress, run: Path) -> dict[str, Path]:
        progress.add("export", len(POLICIES))
        t0 = time.monotonic()
        group = self.group("export")
        models = {}
        for i, (name, checkpoint) in enumerate((("draw_zeroshot", self.model), ("redraw", run))):
            target = self.out / "export" / name
            # `python -m redraw_training export`: a bare `export` is the shell builtin
            proc = group.start_command(f"export_{name}", [sys.executable, "-m", "redraw_training", "export", "--checkpoint", str(checkpoint),
                                                          "--out", str(target), "--model-id", f"sim2real-{name}"])
            self._wait_process("export", proc, progress, lambda i=i, name=name: progress.update("export", i, f"{LABELS[name]}"))
            models[name] = target / "policy.onnx"
            if not models[name].is_file():
                raise StageError(f"export: {models[name]} was not written (log {proc.log_path})")
        wall = time.monotonic() - t0
        self.times["export"] = wall
        self.stages["export"] = {name: str(path) for name, path in models.items()}
        progress.done("export", f"{', '.join(str(p) for p in models.values())} in {wall:.0f} s")
        return models

    # stage 4 --------------------------------------------------------------------------------------------------------
    def drive(self, progress: Progress, name: str, model: Path) -> dict[str, Any]:
        o = self.opts
        stage = f"drive_{name}"
        progress.add(stage, o.drive_seconds)
        t0 = time.monotonic()
        group = self.group(stage)
        result_path = self.out / "drive" / f"{name}.json"
        control_hz = float((_read_json(model.with_suffix(".manifest.json")) or {}).get("control_hz", 10.0))
        # the monitor first: it sees the twin from its first step
        monitor = group.start_command("drive_monitor", [executable_path("redraw_sim", "drive_monitor"), "--robot", ROBOT,
                                                        "--duration", str(o.drive_seconds), "--out", str(result_path),
                                                        "--control-hz", str(control_hz), "--label", name])
        width, height = self.camera
        procs = start_launch(group, self.launch_dir / "twin_drive.launch.py", {
            "robot": ROBOT, "perturb": o.perturb, "model": str(model), "use_sim_time": "true",
            "real_time_factor": _fmt_rtf(o.drive_real_time_factor),
        }, overrides={"twin_node": {"camera_width": width, "camera_height": height, "seed": o.seed + 1}}, strict=True)
        procs["drive_monitor"] = monitor
        deadline = t0 + 180.0 + 3.0 * o.drive_seconds / o.drive_real_time_factor
        state: dict[str, Any] = {}

        def poll() -> None:
            found = _last_match(re.compile(r"^PROGRESS (\{.*\})$", re.M), monitor.output()[-3000:])
            if found:
                state.update(json.loads(found.group(1)))
            if state.get("open"):
                info = f"{LABELS[name]}: {state['laps']} laps, {state['departures']} departures, {state['distance_m']:.1f} m"
            else:
                info = f"{LABELS[name]}: waiting for the policy's first command"
            progress.update(stage, min(state.get("sim_s", 0.0), o.drive_seconds), info)

        while monitor.alive():
            poll()
            self._check_alive(stage, procs, expect_exit=("drive_monitor",))
            if time.monotonic() > deadline:
                raise StageError(f"{stage}: {state.get('sim_s', 0):.0f} of {o.drive_seconds:g} simulated seconds after {time.monotonic() - t0:.0f} s; "
                                 f"the twin is far slower than {o.drive_real_time_factor:g}x real time (logs in {group.run_dir}); "
                                 "try a lower --drive-real-time-factor")
            time.sleep(0.5)
        poll()
        result = _read_json(result_path) or {}
        policy_log = procs["policy_node"].log_path
        twin_log = procs["twin_node"].log_path
        group.stop_all()
        if monitor.returncode != 0 or "metrics" not in result:
            raise StageError(f"{stage}: {result.get('error') or 'the drive monitor failed'} (exit code {monitor.returncode}); "
                             f"policy node log {policy_log}:\n{policy_log.read_text(errors='replace')[-2500:]}")
        wall = time.monotonic() - t0
        self.times[stage] = wall
        result["wall_seconds_stage"] = wall
        result["model"] = str(model)
        result["twin_status"] = _last_status(twin_log)
        m = result["metrics"]
        ok = result.get("policy", {}).get("watchdog_ok_fraction", 1.0)
        if ok < 0.95:
            self.notes.append(f"{LABELS[name]}: the policy node's watchdog held the wheels at zero in {1 - ok:.0%} of its control ticks "
                              f"(states {result['policy'].get('watchdog_states')}; 1 = stale camera): the machine did not keep up with "
                              f"{o.drive_real_time_factor:g}x real time; a lower --drive-real-time-factor gives a cleaner comparison")
        progress.done(stage, f"{LABELS[name]}: {m['laps']} laps, {m['departures']} departures, dense reward {m['dense_reward']:.3f} "
                             f"in {m['sim_seconds']:.0f} simulated s ({wall:.0f} s wall)")
        return result

    # stage 5 --------------------------------------------------------------------------------------------------------
    def report(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        summary = {
            "job": "sim2real",
            "options": asdict(self.opts),
            "model": str(self.model),
            "twin": {"perturb": self.opts.perturb, "camera": list(self.camera), "real_time_factor_record": self.opts.real_time_factor,
                     "real_time_factor_drive": self.opts.drive_real_time_factor,
                     "map": "loop_empty"},
            "stage_seconds": {k: round(v, 1) for k, v in self.times.items()},
            "stages": self.stages,
            "notes": self.notes,
            "ros": self.ros,
            "policies": {name: {"label": LABELS[name], "metrics": r["metrics"], "policy": r.get("policy", {}), "model": r["model"],
                                "wall_seconds": r.get("wall_seconds_stage")} for name, r in results.items()},
            "metrics_doc": {k: f"{label}{f' ({unit})' if unit else ''}, {'higher' if hi else 'lower'} is better"
                            for k, (label, unit, hi) in METRICS.items()},
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        plot_comparison(results, self.out / "comparison.png", title=f"twin '{self.opts.perturb or 'nominal'}', {self.opts.drive_seconds:g} s per policy")
        return summary

    def table(self, summary: dict[str, Any]):
        from rich.table import Table

        table = Table(title=f"DRAW zero-shot vs ReDRAW on the twin (perturbation '{self.opts.perturb or 'nominal'}', "
                            f"{self.opts.drive_seconds:g} simulated s each)")
        table.add_column("metric")
        for name in POLICIES:
            table.add_column(LABELS[name], justify="right")
        rows = [*METRICS.items(), ("distance_m", ("distance along the lane", "m", True))]
        for key, (label, unit, hi) in rows:
            values = [summary["policies"][n]["metrics"][key] for n in POLICIES]
            cells = [_fmt(v) for v in values]
            finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            if len(finite) == 2 and finite[0] != finite[1]:
                best = int(values[1] > values[0]) if hi else int(values[1] < values[0])
                cells[best] = f"[bold green]{cells[best]}[/bold green]"
            table.add_row(f"{label}{f' ({unit})' if unit else ''} {'↑' if hi else '↓'}", *cells)
        ok = [summary["policies"][n]["policy"].get("watchdog_ok_fraction", float("nan")) for n in POLICIES]
        table.add_row("policy watchdog OK (fraction)", *[_fmt(v) for v in ok])
        return table

    # all ------------------------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        o = self.opts
        self.prepare_out()
        self.console.print(
            f"[bold]sim2real[/bold]: {self.model} -> twin '{o.perturb or 'nominal'}' (camera {self.camera[0]}x{self.camera[1]}, "
            f"{o.real_time_factor:g}x real time) -> {o.transitions} transitions -> calibrate {o.updates} updates -> "
            f"drive {o.drive_seconds:g} s per policy at {o.drive_real_time_factor:g}x real time -> {self.out}/summary.json, comparison.png   (logs: {self.logs})", highlight=False)
        with Progress(self.console) as progress:
            bag = self.record(progress)
            run = self.calibrate(progress, bag)
            models = self.export(progress, run)
            results = {name: self.drive(progress, name, models[name]) for name in POLICIES}
        for name, r in results.items():
            (self.out / "drive").mkdir(exist_ok=True)
            (self.out / "drive" / f"{name}.json").write_text(json.dumps(r, indent=1, default=_json_default) + "\n")
        summary = self.report(results)
        self.console.print(self.table(summary))
        for note in self.notes:
            self.console.print(f"[yellow]note[/yellow]: {note}", highlight=False)
        self.console.print(f"numbers: {self.out}/summary.json   plot: {self.out}/comparison.png   stage times (s): "
                           + ", ".join(f"{k} {v:.0f}" for k, v in self.times.items()), highlight=False)
        return summary


# ----------------------------------------------------------------------------------------------------------------
# outputs

def plot_comparison(results: dict[str, dict[str, Any]], path: Path, title: str = "") -> None:
    """Bars per metric (top) and the runs over simulated time (bottom: distance along the lane, centre offset)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in POLICIES if n in results]
    colors = {"draw_zeroshot": "#888888", "redraw": "#1f77b4"}
    fig = plt.figure(figsize=(15, 7.5))
    grid = fig.add_gridspec(2, len(METRICS), height_ratios=[1, 1.1], hspace=0.45, wspace=0.45)
    for i, (key, (label, unit, hi)) in enumerate(METRICS.items()):
        ax = fig.add_subplot(grid[0, i])
        values = [results[n]["metrics"][key] for n in names]
        shown = [0.0 if not math.isfinite(v) else v for v in values]
        bars = ax.bar([LABELS[n] for n in names], shown, color=[colors[n] for n in names])
        for bar, v in zip(bars, values):
            ax.annotate(_fmt(v), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                        va="bottom" if bar.get_height() >= 0 else "top", fontsize=9)
        ax.set_title(f"{label}{f' ({unit})' if unit else ''}\n{'higher' if hi else 'lower'} is better", fontsize=10)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.tick_params(axis="x", labelsize=8)
    half = len(METRICS) // 2 + 1
    ax_d = fig.add_subplot(grid[1, :half])
    ax_o = fig.add_subplot(grid[1, half:])
    for n in names:
        trace = results[n].get("trace") or []
        if not trace:
            continue
        t = [row[0] for row in trace]
        ax_d.plot(t, [row[1] for row in trace], color=colors[n], label=LABELS[n])
        ax_o.plot(t, [row[2] for row in trace], color=colors[n], label=LABELS[n], linewidth=0.8)
        # departures: where the episode index changes
        cuts = [trace[j][0] for j in range(1, len(trace)) if trace[j][3] != trace[j - 1][3]]
        for c in cuts:
            ax_d.axvline(c, color=colors[n], alpha=0.25, linewidth=0.8)
    ax_d.set_xlabel("simulated time (s)")
    ax_d.set_ylabel("distance along the lane (m)")
    ax_d.set_title("progress (vertical lines: lane departures, the twin resets the robot)", fontsize=10)
    ax_d.legend(fontsize=9)
    ax_o.set_xlabel("simulated time (s)")
    ax_o.set_ylabel("|offset from the lane centre| (cm)")
    ax_o.set_title("centre offset", fontsize=10)
    ax_o.axhline(10.0, color="red", linestyle=":", linewidth=0.8)
    fig.suptitle(f"DRAW zero-shot vs ReDRAW on the digital twin{': ' + title if title else ''}")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _json_default(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    return float(v)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _last_step(scalars: Path) -> int:
    """The last logged update of a scalars.jsonl (0 before the first)."""
    try:
        with open(scalars, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def _last_status(log: Path) -> str:
    """The twin's last status line (achieved real-time factor, frames, time spent waiting for the driver, episodes)."""
    try:
        lines = [ln for ln in Path(log).read_text(errors="replace").splitlines() if "t_sim" in ln]
    except OSError:
        return ""
    return lines[-1].split("]: ", 1)[-1] if lines else ""


@entry_point("sim2real")
def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    opts = parse_args(argv)
    console = Console()
    if not console.is_terminal:   # a log file or a pipe: lines as wide as the table needs
        console = Console(width=140)

    def interrupt(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    job = None
    try:
        job = Sim2Real(opts, console)
        job.run()
        return EXIT_OK
    except StageError as exc:
        console.print(f"[bold red]sim2real failed[/bold red]: {exc}", highlight=False)
        return EXIT_FAILED
    except (Interrupted, KeyboardInterrupt) as exc:
        console.print(f"[bold red]sim2real interrupted[/bold red] ({exc or 'SIGINT'}); stopping every process it started", highlight=False)
        return EXIT_INTERRUPTED
    finally:
        # ignore further signals while the children are ended (each by its process group id)
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        if job is not None:
            job.stop_all()
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
