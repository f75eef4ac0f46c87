"""Bags -> dataset: turn recordings of a robot (rosbag2, as written by redraw_recorder) into episodes in the
replay's format (redraw_common.episodes), preprocessed with the settings of the model being calibrated.

    report = convert_bags(["~/redraw_bags/db1_run1"], "data/real_db1", preprocess_config=manifest.preprocessing)

What it does, per recording (a recording folder with its parts, or any rosbag2 bag with a camera topic):

1. Reads the camera (sensor_msgs/CompressedImage), the driving commands (redraw_msgs/DriveAction on
   `redraw/action`, else the wheel commands - redraw_msgs or duckietown_msgs WheelsCmdStamped, as the robot
   profile has them - turned into actions by the inverse kinematics stored with the bag) and the episode events (redraw_msgs/EpisodeEvent). A part left unfinished by a killed
   recorder is read up to its last complete chunk (and reported).
2. Control ticks at `control_hz`, locked to the driver's own commands: after a tick at time t the next
   tick is the command nearest to t + 1/control_hz (within half a period). Where the driver sent nothing
   near a tick, the command in force is held if the driver's next command follows within `max_gap`
   seconds of it (a driver slower than the control rate); a longer silence ends the episode.
3. Each tick's observation is the freshest camera frame stamped at or before the tick, at most
   `max_frame_age` old (default one control period): row t = (frame, action chosen after seeing it).
   For a model whose observation has a vector (the Duckietown env's "vector", redraw_common.observation:
   `vector_dim = 2 + 2k`), each step's vector is the measured forward speed m/s and yaw rate rad/s, from the
   latest wheel-odometry message (the robot profile's: geometry_msgs/TwistStamped on `deadreckoning_node/velocity`
   for the twin, nav_msgs/Odometry on `deadreckoning_node/odom` for a Duckiebot) stamped at or
   before its frame, at most `max_odometry_age` older (default two control periods), followed by the last k
   actions of the episode (forward, turn; newest first; zeros before the episode's first step, as after an env
   reset: every episode written, however it was cut, starts its history afresh). A tick whose frame has no such
   odometry is treated like a tick without a usable frame (step 4); a bag without the odometry topic, or with no
   odometry on it, is refused. With `vector_dim=0` odometry is ignored.
4. Episodes are cut at episode events (END/START), at gaps and at ticks without a usable frame; ticks
   between an END and the next START are dropped; episodes shorter than `min_episode_length` are dropped.
   An END for leaving the lane or a collision marks the episode terminal.
5. Frames of the wrong size, undecodable frames and frames whose stamps go backwards are dropped and
   counted; above `max_bad_fraction` of the frames the input is refused with an error saying what was
   found. Camera drops are estimated from gaps between frame stamps.

The output folder is written under a temporary name and renamed at the end: a failure never leaves half
a dataset, an existing output folder is refused, and the inputs are only ever read. The report (also
`report.json` in the output) counts transitions, episodes, dropped and misaligned frames and the time span,
and says `clean` when every transition is sound (no tick without a fresh frame, no frame discarded for its
size, encoding or stamp, no tick whose odometry went stale, no part recovered after a crash) and the camera
lost at most 1 % of its frames.

Reading: redraw_training.bagread; ticks and episodes: redraw_training.bagalign; the command line: `convert-bags`
(redraw_training.cli.convert_bags). `dataset_from_bags` converts once per input and settings and caches the result.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from redraw_common.alignment import AlignmentRule
from redraw_common.episodes import make_flags, save_episode
from redraw_common.errors import BagError
from redraw_common.kinematics import KinematicsConfig
from redraw_common.observation import history_from_actions, history_length
from redraw_common.paths import out_dir_problem
from redraw_common.preprocessing import PreprocessConfig

from .bagalign import control_ticks, estimate_camera_drops, load_frames, plan_episodes
from .bagread import ODOMETRY_SOURCE, Odometry, Source, Typestore, discover, read_streams

REPORT = "report.json"
CLEAN_MAX_DROP_FRACTION = 0.01
#: most driving commands that were non-finite (dropped) or outside [-1, 1] (clipped), as a fraction of all, in a
#: clean report
CLEAN_MAX_BAD_COMMAND_FRACTION = 0.01
#: most used frames whose content is odd (redraw_training.bagalign.frame_content), per kind, in a clean report
CLEAN_MAX_ODD_FRAME_FRACTION = 0.05
ODD_FRAMES = {"grayscale": "grayscale (no colour: the lane mask finds no yellow)", "black": "all black (a covered lens?)",
              "white": "all white (overexposed?)"}


# ---------------------------------------------------------------------------------------------------
# The converter
# ---------------------------------------------------------------------------------------------------

def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


def recorded_control_hz(sources: Sequence[Source]) -> float:
    """The control rate the recordings were made at (their recording info), the same for all; 10 Hz (the recorder's
    default) when none carries one."""
    rates = {float(s.info.control_hz): str(s.path) for s in sources if s.info is not None}
    if len(rates) > 1:
        raise BagError("the recordings were made at different control rates (" + "; ".join(f"{p}: {hz:g} Hz" for hz, p in rates.items())
                       + "): convert each rate on its own, or give one control_hz")
    return next(iter(rates), AlignmentRule().control_hz)


def convert_bags(
    bag_paths: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    preprocess_config: PreprocessConfig | None = None,
    control_hz: float | None = None,
    *,
    kinematics: KinematicsConfig | None = None,
    action_source: str = "auto",
    max_gap: float = 0.5,
    max_frame_age: float | None = None,
    min_episode_length: int = 8,
    max_bad_fraction: float = 0.05,
    frame_size: tuple[int, int] | None = None,
    vector_dim: int = 0,
    odometry_topic: str | None = None,
    max_odometry_age: float | None = None,
    mixed_robots: bool = False,
    progress: bool = False,
    verbose: bool = True,
) -> dict[str, Any]:
    """Convert bags (recording folders, bag folders, .mcap files, or folders of them) into a dataset folder
    of episodes. `preprocess_config`: the settings of the model being calibrated (None: the settings stored
    with the first recording). `control_hz`: the rate of the control ticks; None: the rate the recordings were made
    at (their recording info; 10 Hz for bags without one). `frame_size`: expected camera (height, width); None: the most common size.
    `vector_dim`: the size of the model's vector observation (redraw_common.observation): 0 (none; odometry is
    ignored) or 2 + 2k: the wheel odometry's forward speed m/s and yaw rate rad/s, from `odometry_topic`, default
    the recording's, else the one named as a robot profile names it (bagread.ODOMETRY_NAMES), at most `max_odometry_age` s older than its frame, default 2 / control_hz,
    then the episode's last k actions (forward, turn), newest first, zeros before its first step.
    Recordings of several robots (by their recording info) are refused unless `mixed_robots`: a calibration dataset
    is one robot's dynamics. Returns the report (also written to <out_dir>/report.json). Raises BagError on bad input; then nothing
    is written."""
    t_start = time.monotonic()
    if isinstance(bag_paths, (str, Path)):
        bag_paths = [bag_paths]
    if not bag_paths:
        raise BagError("no bags given: expected one or more recording or bag folders")
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists():
        raise BagError(f"output {out_dir} exists already; the converter never overwrites a dataset: choose a new folder")
    problem = out_dir_problem(out_dir, "output")
    if problem:
        raise BagError(problem)
    sources = [s for p in bag_paths for s in discover(p)]
    control_hz = recorded_control_hz(sources) if control_hz is None else control_hz
    if not (isinstance(control_hz, (int, float)) and 0 < control_hz <= 100):
        raise BagError(f"control_hz must be in (0, 100], found {control_hz!r}")
    if action_source not in ("auto", "action", "wheels"):
        raise BagError(f"action_source must be 'auto', 'action' or 'wheels', found {action_source!r}")
    if min_episode_length < 2:
        raise BagError(f"min_episode_length must be >= 2 (the episode format needs 2 steps), found {min_episode_length}")
    history = _vector_history(vector_dim)
    try:   # the rule the recorder counts by too (redraw_common.alignment): its defaults are the converter's
        rule = AlignmentRule(control_hz=control_hz, max_gap_s=max_gap, max_frame_age_s=max_frame_age,
                             max_odometry_age_s=max_odometry_age, min_episode_length=min_episode_length)
    except ValueError as exc:
        raise BagError(str(exc)) from None
    max_frame_age, max_odometry_age = rule.max_frame_age_s, rule.max_odometry_age_s
    seen = set()
    for s in sources:
        key = s.path.resolve()
        if key in seen:
            raise BagError(f"{s.path} is given twice")
        seen.add(key)
    robots: dict[str, list[str]] = {}
    for s in sources:
        robots.setdefault(s.info.robot if s.info else "(unknown)", []).append(str(s.path))
    named = sorted(r for r in robots if r != "(unknown)")
    if len(named) > 1 and not mixed_robots:
        raise BagError(f"the inputs are recordings of {len(named)} robots ("
                       + "; ".join(f"{r}: {', '.join(robots[r])}" for r in named)
                       + "); a calibration dataset is one robot's dynamics: convert each robot's recordings on their own "
                         "(or pass --mixed-robots to convert them together)")
    cfg = preprocess_config
    if cfg is None:
        cfg = next((s.info.preprocessing for s in sources if s.info is not None), None)
        if cfg is None:
            raise BagError("no preprocessing settings: the bags carry no redraw recording info (a bag of `ros2 bag record`, or a part "
                           "without its metadata.yaml); give the model's (convert-bags --preprocess MANIFEST_OR_FILE, or calibrate, "
                           "which uses the checkpoint's)")

    types = Typestore()
    # ---- pass 1 and planning, for every source, before anything is written
    planned = []
    for source in sources:
        streams = read_streams(source, types, action_source=action_source, kinematics=kinematics, max_bad_fraction=max_bad_fraction,
                               odometry=history is not None, odometry_topic=odometry_topic)
        _, camera_hz = estimate_camera_drops(streams.frame_stamp)
        if camera_hz and control_hz > 1.05 * camera_hz:
            raise BagError(f"{source.path}: control_hz {control_hz:g} is above the camera's {camera_hz:.1f} Hz (median frame interval): "
                           f"frames would be reused for several transitions; convert at a control rate <= {camera_hz:.1f} Hz")
        ticks = control_ticks(streams.cmd_stamp, streams.cmd_action, control_hz, max_gap)
        plan = plan_episodes(streams, ticks, max_frame_age, min_episode_length, max_odometry_age)
        planned.append((source, streams, ticks, plan))

    # ---- pass 2: decode, check sizes, write into a temporary folder next to out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    try:
        report = _write(planned, tmp, cfg, types, frame_size, max_bad_fraction, min_episode_length, progress, history or 0)
        report.update({
            "output": str(out_dir),
            "robots": sorted(robots),
            "preprocessing": cfg.to_dict(),
            "control_hz": float(control_hz),
            "max_gap_s": max_gap,
            "max_frame_age_s": max_frame_age,
            "min_episode_length": min_episode_length,
            "vector": _vector_entry(vector_dim, history, max_odometry_age),
            "seconds": round(time.monotonic() - t_start, 2),
        })
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        os.chmod(tmp, 0o755)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if verbose:
        print(format_report(report))
    return report


def _vector_history(vector_dim: Any) -> int | None:
    """The number of past actions in a model's vector of size `vector_dim` (2 + 2k); None for a model without a vector."""
    if isinstance(vector_dim, (int, np.integer)) and not isinstance(vector_dim, bool) and vector_dim == 0:
        return None
    try:
        return history_length(vector_dim)
    except ValueError:
        raise BagError(
            f"vector_dim must be 0 (no vector) or 2 + 2k (the Duckietown env's 'vector': the wheel odometry's forward speed "
            f"m/s and yaw rate rad/s, then the last k actions (forward, turn), newest first; e.g. 2, 4, 6), found {vector_dim!r}: "
            f"a bag holds no other vector observation"
        ) from None


def _actions_phrase(history: int) -> str:
    return f"last {history} action{'s' if history > 1 else ''} (forward, turn), newest first"


def _vector_entry(vector_dim: int, history: int | None, max_odometry_age: float) -> dict[str, Any]:
    """The report's vector: its size and layout (the odometry, then `history` past actions), the odometry's age limit."""
    if history is None:
        return {"dim": 0, "source": "none"}
    source = f"{ODOMETRY_SOURCE} + {_actions_phrase(history)}, zeros at each episode's start" if history else ODOMETRY_SOURCE
    return {"dim": int(vector_dim), "source": source, **({"action_history": history} if history else {}), "max_odometry_age_s": max_odometry_age}


def _write(planned, folder: Path, cfg: PreprocessConfig, types: Typestore, frame_size, max_bad_fraction: float,
           min_length: int, progress: bool, history: int = 0) -> dict[str, Any]:
    inputs = []
    totals = Counter()
    lengths = []
    n_episode = 0
    span = [2**63 - 1, 0]
    for source, streams, ticks, plan in planned:
        used = np.concatenate([plan.frame_of_tick[a:b] for a, b, _ in plan.episodes]) if plan.episodes else np.zeros(0, int)
        obs, sizes, problems, content = load_frames(source, streams, used, types, cfg, progress)
        # wrong size: against the given size, else the most common size of the used frames
        expected = tuple(frame_size) if frame_size else (Counter(sizes.values()).most_common(1)[0][0] if sizes else None)
        wrong = {f for f, hw in sizes.items() if hw != expected}
        if wrong and len(wrong) > max_bad_fraction * max(1, len(sizes)):
            found = Counter(sizes[f] for f in wrong).most_common(3)
            raise BagError(
                f"{source.path}: frames of the wrong size: {len(wrong)} of {len(sizes)} used frames are not {expected[0]}x{expected[1]} "
                f"(height x width); found {', '.join(f'{h}x{w} ({n})' for (h, w), n in found)}"
            )
        if problems and len(problems) > max_bad_fraction * max(1, len(used)):
            f, why = next(iter(problems.items()))
            raise BagError(f"{source.path}: {len(problems)} of {len(used)} used camera frames cannot be decoded (first: {why})")
        bad = wrong | set(problems)
        odom_ages: list[np.ndarray] = []
        written = 0
        episodes_here = 0
        short_after = 0
        for a, b, terminal in plan.episodes:
            rows = np.arange(a, b)
            frames = plan.frame_of_tick[rows]
            ok = np.array([f not in bad for f in frames])
            # unusable frames split the episode further
            for run in _runs(ok):
                r0, r1 = run
                if r1 - r0 < min_length:
                    short_after += 1
                    continue
                sel = rows[r0:r1]
                fsel = frames[r0:r1]
                end_terminal = terminal and r1 == len(rows)
                ep = {
                    "image": np.stack([obs[int(f)] for f in fsel]),
                    "action": ticks.action[sel].astype(np.float32),
                    **make_flags(len(sel), end_terminal),
                    "stamp": streams.frame_stamp[fsel].astype(np.float64) / 1e9,
                }
                if plan.odometry_of_tick is not None:
                    osel = plan.odometry_of_tick[sel]
                    # the episode's own actions: its history starts from zeros, as after an env reset
                    ep["vector"] = np.concatenate([streams.odometry.vector[osel], history_from_actions(ep["action"], history)], 1).astype(np.float32)
                    odom_ages.append(streams.frame_stamp[fsel] - streams.odometry.stamp[osel])
                name = f"{n_episode:06d}-{_safe(source.path.name)}.npz"
                save_episode(folder / name, ep)
                n_episode += 1
                episodes_here += 1
                written += len(sel)
                lengths.append(len(sel))
                span[0] = min(span[0], int(streams.frame_stamp[fsel[0]]))
                span[1] = max(span[1], int(streams.frame_stamp[fsel[-1]]))
        drops, camera_hz = estimate_camera_drops(streams.frame_stamp)
        unclean = [str(p.path) for p in source.parts if not p.clean]
        entry = {
            "path": str(source.path),
            "kind": source.kind,
            "robot": source.info.robot if source.info else None,
            "parts": len(source.parts),
            "recovered_parts": unclean,
            "messages": streams.messages,
            "action_source": streams.action_source,
            "camera_topic": streams.camera_topic,
            "camera_hz": round(camera_hz, 2),
            "transitions": written,
            "transitions_requested": source.requested,
            "episodes": episodes_here,
            "frames": {
                "total": int(len(streams.frame_stamp) + streams.frame_out_of_order),
                "used": written,
                "dropped_estimated": drops,
                "out_of_order": streams.frame_out_of_order,
                "wrong_size": len(wrong),
                "undecodable": len(problems),
                "expected_size": list(expected) if expected else None,
                "content": {kind: int(content[kind]) for kind in ("grayscale", "black", "white")},
            },
            "commands": {
                "total": int(len(streams.cmd_stamp) + streams.command_out_of_order + streams.bad_commands),   # every command read
                "out_of_order": streams.command_out_of_order,
                "non_finite": streams.bad_commands,
                "clipped": streams.clipped_commands,
            },
            "ticks": {**plan.stats, "short_episodes_dropped": plan.stats["short_episodes_dropped"] + short_after},
            **({"odometry": _odometry_entry(streams.odometry, odom_ages)} if streams.odometry is not None else {}),
            "recorded_span_s": round((int(streams.frame_stamp[-1]) - int(streams.frame_stamp[0])) / 1e9, 3),
        }
        inputs.append(entry)
        totals["transitions"] += written
        totals["episodes"] += episodes_here
        totals["dropped"] += drops
        totals["out_of_order"] += streams.frame_out_of_order + streams.command_out_of_order
        totals["wrong_size"] += len(wrong)
        totals["undecodable"] += len(problems)
        totals["decoded"] += len(sizes)
        for kind in ("grayscale", "black", "white"):
            totals[kind] += content[kind]
        totals["misaligned"] += plan.stats["stale_frame_ticks"] + len(wrong) + len(problems)
        totals["held"] += plan.stats["held_ticks"]
        totals["stale_odometry"] += plan.stats.get("stale_odometry_ticks", 0)
        totals["out_of_order"] += streams.odometry.out_of_order if streams.odometry is not None else 0
        totals["recovered_parts"] += len(unclean)
    if totals["transitions"] == 0:
        raise BagError(
            "no episodes could be formed: every stretch of driving was shorter than min_episode_length "
            f"({min_length} ticks) or had no usable camera frames; per-input counts: "
            + "; ".join(f"{e['path']}: {e['ticks']}" for e in inputs)
        )
    frames_total = sum(e["frames"]["total"] for e in inputs)
    drop_fraction = totals["dropped"] / max(1, frames_total + totals["dropped"])
    commands = sum(e["commands"]["total"] for e in inputs)
    non_finite = sum(e["commands"]["non_finite"] for e in inputs)
    clipped = sum(e["commands"]["clipped"] for e in inputs)
    content = _content_problems(totals, commands, non_finite, clipped)
    reasons = _unclean_reasons(totals, drop_fraction) + content
    return {
        "transitions": totals["transitions"],
        "episodes": totals["episodes"],
        "episode_length": {"min": min(lengths), "mean": round(float(np.mean(lengths)), 2), "max": max(lengths)},
        "dropped_frames": totals["dropped"],
        "dropped_fraction": round(drop_fraction, 5),
        "misaligned_frames": totals["misaligned"],
        "out_of_order": totals["out_of_order"],
        "wrong_size_frames": totals["wrong_size"],
        "undecodable_frames": totals["undecodable"],
        "held_ticks": totals["held"],
        "stale_odometry_ticks": totals["stale_odometry"],
        "recovered_parts": totals["recovered_parts"],
        "non_finite_commands": non_finite,
        "clipped_commands": clipped,
        "time_span": {"start": _iso(span[0]), "end": _iso(span[1]), "seconds": round((span[1] - span[0]) / 1e9, 3)},
        "clean": not reasons,
        "unclean": reasons,
        "content_problems": content,
        "inputs": inputs,
    }


def _unclean_reasons(totals: dict[str, int], drop_fraction: float) -> list[str]:
    """Each soundness check a conversion failed, as a phrase. Clean (with _content_problems empty): every transition is
    sound (no tick without a fresh frame, no frame discarded, nothing recovered) and the camera lost at most
    CLEAN_MAX_DROP_FRACTION of its frames (lost frames no tick needed are harmless)."""
    checks = [
        (totals["misaligned"] - totals["wrong_size"] - totals["undecodable"], "ticks without a fresh frame"),
        (totals["out_of_order"], "messages out of order"),
        (totals["wrong_size"], "frames of the wrong size"),
        (totals["undecodable"], "undecodable frames"),
        (totals["stale_odometry"], "ticks with stale odometry"),
        (totals["recovered_parts"], "recovered (unfinished) bag parts"),
    ]
    reasons = [f"{n} {what}" for n, what in checks if n]
    if drop_fraction > CLEAN_MAX_DROP_FRACTION:
        reasons.append(f"{totals['dropped']} camera frames lost ({drop_fraction:.1%}; at most {CLEAN_MAX_DROP_FRACTION:.0%})")
    return reasons


def _content_problems(totals: dict[str, int], commands: int, non_finite: int, clipped: int) -> list[str]:
    """What makes well-formed data wrong, as phrases: more than CLEAN_MAX_ODD_FRAME_FRACTION of the used frames
    grayscale, all black or all white, or more than CLEAN_MAX_BAD_COMMAND_FRACTION of the commands non-finite or out
    of range. The report is not clean with any of them, and `calibrate` refuses such data (datacheck)."""
    problems = []
    for kind in ("grayscale", "black", "white"):
        if totals["decoded"] and totals[kind] / totals["decoded"] > CLEAN_MAX_ODD_FRAME_FRACTION:
            problems.append(f"{totals[kind]} of {totals['decoded']} used frames {ODD_FRAMES[kind]} "
                            f"({totals[kind] / totals['decoded']:.1%}; at most {CLEAN_MAX_ODD_FRAME_FRACTION:.0%})")
    bad = non_finite + clipped
    if commands and bad / commands > CLEAN_MAX_BAD_COMMAND_FRACTION:
        problems.append(f"{bad} of {commands} driving commands non-finite ({non_finite}, dropped) or outside [-1, 1] ({clipped}, "
                        f"clipped) ({bad / commands:.1%}; at most {CLEAN_MAX_BAD_COMMAND_FRACTION:.0%})")
    return problems


def _odometry_entry(odom: Odometry, ages: list[np.ndarray]) -> dict[str, Any]:
    """Report of one recording's odometry: its topic and rate, and how much older than its frame the vector is."""
    age = np.concatenate(ages) / 1e9 if ages else np.zeros(0)
    hz = 1.0 / float(np.median(np.diff(odom.stamp) / 1e9)) if len(odom.stamp) > 2 else 0.0
    return {
        "topic": odom.topic,
        "messages": int(len(odom.stamp) + odom.out_of_order + odom.non_finite),
        "hz": round(hz, 2),
        "out_of_order": odom.out_of_order,
        "non_finite": odom.non_finite,
        "age_s": {"mean": round(float(age.mean()), 5), "max": round(float(age.max()), 5)} if len(age) else None,
    }


def _runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of every run of True in a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], np.asarray(ok, bool), [False]]).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "bag"


def format_report(report: dict[str, Any]) -> str:
    span = report["time_span"]
    lines = [
        f"converted {len(report['inputs'])} input(s) of robot(s) {', '.join(report.get('robots', []))} -> {report['output']}",
        f"  transitions {report['transitions']} in {report['episodes']} episodes "
        f"(length min/mean/max {report['episode_length']['min']}/{report['episode_length']['mean']}/{report['episode_length']['max']})",
        f"  frames: {report['dropped_frames']} dropped (estimated from stamp gaps), {report['misaligned_frames']} misaligned, "
        f"{report['wrong_size_frames']} wrong size, {report['undecodable_frames']} undecodable, {report['out_of_order']} out of order",
        f"  time span {span['start']} .. {span['end']} ({span['seconds']:.1f} s); held ticks {report['held_ticks']}; "
        f"recovered parts {report['recovered_parts']}",
    ]
    vector = report.get("vector", {"dim": 0})
    if vector["dim"]:
        history = vector.get("action_history", 0)
        actions = f", + {_actions_phrase(history)}" if history else ""
        lines.append(f"  vector: {ODOMETRY_SOURCE}, at most {vector['max_odometry_age_s']:g} s older than its frame{actions}; "
                     f"{report['stale_odometry_ticks']} ticks with stale odometry (cut)")
    lines.append("  clean" if report["clean"] else f"  NOT clean: {'; '.join(report.get('unclean', []))} (details in report.json)")
    for e in report["inputs"]:
        odom = e.get("odometry")
        lines.append(f"  - {e['path']}: {e['transitions']} transitions, {e['episodes']} episodes, actions from {e['action_source']}, "
                     f"camera {e['camera_hz']} Hz" + (f", odometry {odom['topic']} {odom['hz']} Hz" if odom else "")
                     + (f", recovered {len(e['recovered_parts'])} unfinished part(s)" if e["recovered_parts"] else ""))
    return "\n".join(lines)
