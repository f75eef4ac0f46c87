"""Policy benchmark: ONNX inference latency per model size, and the policy node's camera-to-wheels latency
over DDS on loopback, with a fake camera and in the digital twin.

    python bench/bench_policy.py                          # the learning core's presets, exported untrained
    python bench/bench_policy.py --onnx runs/x/policy.onnx --latency-model runs/x/policy.onnx
    python bench/bench_policy.py --only inference         # or: node, twin

1. Inference: for each model, `--iterations` single-frame runs of onnxruntime (after a warm-up) on random
   observations of the model's input shape (+ a random velocity for models with the `vector` input, which
   every model trained on the Duckietown env now has), with 1 and 2 intra-op threads: wall-clock p50/p99/mean
   in ms, and the CPU time of the calling thread per run (p50/p99), which excludes the time the thread waited
   for a core - on a shared, loaded machine the wall-clock tail is mostly that wait. Models: the `--onnx`
   files given, plus the presets of redraw_training exported with random weights (latency does not depend
   on the weights) with a 2-dim velocity input, plus the tiny test policy. Also the preprocessing of a
   640x480 JPEG frame (decode + lane mask / resize), which the node runs before inference.
2. Node, fake camera: the policy node started as drive.launch.py declares it, fed 640x480 JPEG frames at
   30 Hz (and odometry) by tests/nodes/policy_probe.py, which stamps each frame when it publishes it.
   Camera-to-wheels = the time the wheel command reaches the probe - the frame's stamp: the node's share
   (DDS in, JPEG decode, preprocessing, inference, DDS out); `split_ms` splits each command's latency with the
   node's own PolicyStatus timings (frame_age_ms, preprocess_ms, inference_ms) and the probe's receive time.
3. Node in the twin: launch/twin_drive.launch.py as declared (nominal twin, real time, 640x480 JPEG camera
   at 30 Hz, odometry on deadreckoning_node/velocity). Camera-to-wheels = wheel command receive time - the
   frame's stamp (the simulated moment the frame shows), which also contains the twin's rendering and JPEG
   encoding; the probe also receives every frame, which splits it into twin (stamp -> frame received) and
   node (frame received -> wheels received).

The policy node acts on frame arrival (event-driven, 10 Hz), so a frame never waits for a timer tick.
The 1-, 5- and 15-minute load averages are recorded next to every section: the machine is shared. With
--node-nice -10 (root) the policy node and the probe (the wheels end) run at a higher priority than the twin
and the rest of the machine, as the control path of a robot would; the default measures them at equal priority.
Writes bench/results/policy.json (with the per-command latencies under raw_ms) and policy.png (histograms);
a run of some sections (--only) updates those sections of an existing JSON; every run also appends its
headline numbers to policy_runs.jsonl (results move with the machine's load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.launchstart import start_launch  # noqa: E402
from helpers.rosproc import NodeGroup  # noqa: E402
from helpers.tiny_policy import build_policy  # noqa: E402

from redraw_common.preprocessing import PreprocessConfig  # noqa: E402

PRESET_IMAGES = {"tiny": PreprocessConfig(height=32, width=32), "duckietown": PreprocessConfig(), "small": PreprocessConfig(),
                 "paper": PreprocessConfig()}
VECTOR_DIM = 2  # measured velocity [forward m/s, yaw rate rad/s], the Duckietown env's vector observation
ODOM = [0.15, 0.3]  # the velocity the fake camera's probe reports


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Renice:
    """Hold every thread of some processes at a niceness (negative needs root) while the block runs: the
    robot's control path (policy node, wheels end) given priority over the rest of a shared machine. Threads
    started later are caught by re-applying it every 0.5 s."""

    def __init__(self, pids: list[int], niceness: int):
        self.pids, self.niceness = pids, niceness
        self.done = None

    def apply(self) -> None:
        for pid in self.pids:
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    os.setpriority(os.PRIO_PROCESS, int(task.name), self.niceness)
                except (ProcessLookupError, PermissionError):
                    pass

    def __enter__(self):
        import threading

        if self.niceness:
            self.done = threading.Event()

            def loop():
                while not self.done.wait(0.5):
                    self.apply()

            self.apply()
            threading.Thread(target=loop, daemon=True).start()
        return self

    def __exit__(self, *exc):
        if self.done is not None:
            self.done.set()


def export_preset(preset: str, folder: Path, vector_dim: int = VECTOR_DIM) -> Path:
    """An untrained agent of `preset`, checkpointed and exported with the learning core's own code."""
    from redraw_training.checkpoint import save_checkpoint
    from redraw_training.config import load_config
    from redraw_training.draw_agent import Agent
    from redraw_training.export import export_policy

    cfg = PRESET_IMAGES[preset]
    agent = Agent(load_config([preset] if preset != "paper" else []), cfg.shape, 2, vector_dim=vector_dim)
    ckpt = save_checkpoint(folder / f"{preset}-ckpt", agent, kind="pretrain", counters={}, preprocessing=cfg.to_dict())
    summary = export_policy(ckpt, folder / preset, model_id=f"bench-{preset}-untrained", verify_samples=2)
    return Path(summary["model"])


def stats(ms) -> dict[str, float]:
    ms = np.asarray(ms, np.float64)
    return {"p50": round(float(np.percentile(ms, 50)), 3), "p99": round(float(np.percentile(ms, 99)), 3),
            "mean": round(float(ms.mean()), 3), "max": round(float(ms.max()), 3), "n": int(ms.size)}


def bench_inference(path: Path, iterations: int) -> dict:
    from redraw_policy_node.model import PolicyModel

    out = {"model": str(path), "size_kib": round(path.stat().st_size / 1024, 1)}
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        model = PolicyModel(path, threads=threads)
        obs = rng.integers(0, 256, (64, *model.obs_shape[1:]), dtype=np.uint8)
        vec = rng.normal(0.0, 0.5, (64, model.vector_dim)).astype(np.float32) if model.uses_vector else [None] * 64
        for i in range(50):
            model.infer(obs[i % 64], vec[i % 64])
        wall, cpu = np.empty(iterations), np.empty(iterations)
        before = load()
        for i in range(iterations):
            c, t = time.thread_time_ns(), time.perf_counter_ns()
            model.infer(obs[i % 64], vec[i % 64])
            wall[i], cpu[i] = (time.perf_counter_ns() - t) / 1e6, (time.thread_time_ns() - c) / 1e6
        out[f"threads_{threads}"] = {**stats(wall), "cpu_ms": stats(cpu), "load_before": before, "load_after": load()}
        out["model_id"], out["input"], out["vector"] = model.model_id, list(model.obs_shape), model.uses_vector
    return out


def bench_preprocessing(iterations: int) -> dict:
    from redraw_common.preprocessing import encode_jpeg, preprocess

    jpeg = encode_jpeg(fake_road(640, 480), 85)
    out = {"frame": "640x480 JPEG", "jpeg_kib": round(len(jpeg) / 1024, 1), "load_before": load()}
    for name, cfg in (("lane_mask_64", PreprocessConfig()), ("rgb_64", PreprocessConfig(mode="rgb"))):
        wall, cpu = np.empty(iterations), np.empty(iterations)
        for i in range(iterations):
            c, t = time.thread_time_ns(), time.perf_counter_ns()
            preprocess(jpeg, cfg)
            wall[i], cpu[i] = (time.perf_counter_ns() - t) / 1e6, (time.thread_time_ns() - c) / 1e6
        out[name] = {**stats(wall), "cpu_ms": stats(cpu)}
    out["load_after"] = load()
    return out


def fake_road(width: int, height: int) -> np.ndarray:
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_robot", REPO / "tests" / "nodes" / "fake_robot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.road(width, height, 0.3, np.random.default_rng(0))


def latencies(data: dict, t_start: float, t_end: float) -> dict:
    """Per driving command: camera-to-wheels (receive - frame stamp), the node's frame-stamp-to-publish and
    inference time (its PolicyStatus), and - where the probe saw the frame too - the split at the frame's arrival."""
    status = {s[5]: s for s in data["status"] if t_start <= s[0] <= t_end and s[1] == 0}
    cam = np.array([c[1:3] for c in data.get("camera", [])], np.int64).reshape(-1, 2)  # (stamp ns, receive ns)
    wheels = [w for w in data["wheels"] if t_start <= w[0] <= t_end]
    c2w, e2e, inf, before, after = [], [], [], [], []
    parts = {"camera_and_transport": [], "decode_and_preprocess": [], "inference": [], "node_rest_to_publish": [], "publish_to_wheels_received": []}
    for w in wheels:
        s = status.get(w[3])
        if s is None:
            continue
        frame_stamp = s[5] - s[2] * 1e6   # status stamp - (status stamp - frame stamp); float32 ms: a few us off
        c2w.append((w[4] - frame_stamp) / 1e6)
        e2e.append(s[2])
        inf.append(s[3])
        for key, ms in zip(parts, (s[7], s[6], s[3] - s[6], s[2] - s[7] - s[3], c2w[-1] - s[2])):
            parts[key].append(ms)
        if len(cam):
            i = int(np.argmin(np.abs(cam[:, 0] - frame_stamp)))
            if abs(cam[i, 0] - frame_stamp) < 0.5e6:
                before.append((cam[i, 1] - cam[i, 0]) / 1e6)
                after.append((w[4] - cam[i, 1]) / 1e6)
    if not c2w:
        raise RuntimeError("no driving commands from the policy node")
    out = {"commands_per_s": round(len(wheels) / (t_end - t_start), 2), "driving_fraction": round(len(c2w) / max(len(wheels), 1), 3),
           "camera_to_wheels_ms": stats(c2w), "node_frame_stamp_to_publish_ms": stats(e2e), "node_inference_ms": stats(inf),
           # camera-to-wheels = the sum of these, per command: frame stamp -> the node's frame callback (the camera's
           # encoding + DDS + the wait for the executor), JPEG decode + preprocessing, onnxruntime, the node's rest
           # (vector, action checks, kinematics) to the publish stamp, then DDS out to the wheels' end
           "split_ms": {k: stats(v) for k, v in parts.items()}}
    if before:
        out["split"] = {"frame_stamp_to_frame_received_ms": stats(before), "frame_received_to_wheels_received_ms": stats(after)}
    out["raw_ms"] = {"camera_to_wheels": [round(x, 3) for x in c2w], "frame_received_to_wheels_received": [round(x, 3) for x in after]}
    return out


def bench_node(model: Path, seconds: float, run: Path, node_nice: int = 0) -> dict:
    out_json = run / "probe.json"
    load_before = load()
    with NodeGroup(run) as group:
        node = start_launch(group, REPO / "src" / "redraw_policy_node" / "launch" / "drive.launch.py", {"robot": "benchbot", "model": str(model)})
        probe = group.start_python(REPO / "tests" / "nodes" / "policy_probe.py", [
            "--robot", "benchbot", "--out", str(out_json), "--width", "640", "--height", "480", "--quality", "85",
            "--odom", json.dumps(ODOM), "--script", json.dumps([{"mode": "road", "seconds": seconds}])])
        with Renice([node["policy_node"].pid, probe.pid], node_nice):
            probe.wait(timeout=seconds + 60)
    data = json.loads(out_json.read_text())
    (phase,) = data["phases"]
    return {"model": str(model), "seconds": seconds, "camera": "640x480 JPEG q85 at 30 Hz (test camera publisher) + odometry",
            "node_and_probe_niceness": node_nice, "load_before": load_before, "load_after": load(), **latencies(data, phase["t_start"], phase["t_end"])}


def bench_node_in_twin(model: Path, seconds: float, run: Path, camera: tuple[int, int], node_nice: int = 0, twin_too: bool = False) -> dict:
    """The policy node driving the digital twin (launch/twin_drive.launch.py as declared, nominal twin, real
    time, JPEG camera at 30 Hz + odometry)."""
    out_json = run / "probe.json"
    load_before = load()
    with NodeGroup(run) as group:
        nodes = start_launch(group, REPO / "launch" / "twin_drive.launch.py", {"robot": "benchbot", "model": str(model), "perturb": ""},
                             overrides={"twin_node": {"camera_width": camera[0], "camera_height": camera[1]}})
        probe = group.start_python(REPO / "tests" / "nodes" / "policy_probe.py", [
            "--robot", "benchbot", "--out", str(out_json), "--script", "[]", "--listen", str(seconds + 8), "--camera-listen"])
        with Renice([nodes["policy_node"].pid, probe.pid] + ([nodes["twin_node"].pid] if twin_too else []), node_nice):
            probe.wait(timeout=seconds + 90)
    data = json.loads(out_json.read_text())
    if not data["wheels"]:
        raise RuntimeError(f"no wheel commands from the policy node in the twin; logs in {run}")
    t_end = max(w[0] for w in data["wheels"])
    t_start = t_end - seconds
    frames = [c for c in data["camera"] if c[0] >= t_start]
    return {"model": str(model), "seconds": seconds, "camera": f"digital twin, nominal, {camera[0]}x{camera[1]} JPEG at 30 Hz, real time",
            "twin_frames_per_s": round(len(frames) / seconds, 2), "node_and_probe_niceness": node_nice,
            "twin_niceness": node_nice if twin_too else 0, "load_before": load_before, "load_after": load(),
            **latencies(data, t_start, t_end)}


def summary(result: dict) -> dict:
    """One line per run: when, priorities, and per section p50/p99 (ms) with the load average before it."""
    line = {"when": result["when"], "priority": result.get("priority")}
    for name, r in result.get("inference", {}).items():
        t = r["threads_1"]
        line[f"onnx_1thread:{name}"] = {"wall": [t["p50"], t["p99"]], "cpu": [t["cpu_ms"]["p50"], t["cpu_ms"]["p99"]], "load": t["load_before"][0]}
    for name, r in result.items():
        if isinstance(r, dict) and "camera_to_wheels_ms" in r:
            c = r["camera_to_wheels_ms"]
            line[name] = {"camera_to_wheels": [c["p50"], c["p99"]], "commands_per_s": r["commands_per_s"], "load": r["load_before"][0]}
            if "split" in r:
                line[name]["frame_arrival_to_wheels"] = [r["split"]["frame_received_to_wheels_received_ms"][k] for k in ("p50", "p99")]
    return line


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {k: v for k, v in result.items() if isinstance(v, dict) and "raw_ms" in v}
    fig, axes = plt.subplots(1, 1 + len(runs), figsize=(5 * (1 + len(runs)), 3.8))
    ax = axes[0]
    names = list(result["inference"])
    for j, (key, label) in enumerate((("p50", "wall p50"), ("p99", "wall p99"))):
        ax.bar(np.arange(len(names)) + 0.27 * (j - 0.5), [result["inference"][n]["threads_1"][key] for n in names], 0.27, label=label)
    ax.bar(np.arange(len(names)) + 0.27 * 1.5, [result["inference"][n]["threads_1"]["cpu_ms"]["p99"] for n in names], 0.27, label="CPU p99")
    ax.axhline(2.0, color="r", ls="--", lw=1, label="target p99 2 ms")
    ax.set_xticks(range(len(names)), [n.replace("preset:", "") for n in names], rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("ms per inference (1 thread)")
    ax.set_title(f"ONNX inference, load {result['inference'][names[0]]['threads_1']['load_before'][0]}")
    ax.legend(fontsize=7)
    for ax, (key, run) in zip(axes[1:], runs.items()):
        raw = run["raw_ms"]
        bins = np.linspace(0, max(60.0, float(np.percentile(raw["camera_to_wheels"], 99.5))), 60)
        ax.hist(raw["camera_to_wheels"], bins=bins, alpha=0.7, label="frame stamp -> wheels")
        if raw["frame_received_to_wheels_received"]:
            ax.hist(raw["frame_received_to_wheels_received"], bins=bins, alpha=0.6, label="frame arrival -> wheels")
        ax.axvline(20.0, color="r", ls="--", lw=1, label="target p99 20 ms")
        c = run["camera_to_wheels_ms"]
        ax.set_title(f"{key}: p50 {c['p50']:.1f} / p99 {c['p99']:.1f} ms, load {run['load_before'][0]}", fontsize=9)
        ax.set_xlabel("ms")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", nargs="*", default=[], help="exported policies (policy.onnx with manifest) to time")
    p.add_argument("--presets", nargs="*", default=["tiny", "duckietown", "small", "paper"], help="redraw_training presets to export untrained and time")
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--latency-model", default="", help="model for the node benchmarks (default: the 'duckietown' preset, else 'small', else the tiny test policy)")
    p.add_argument("--latency-seconds", type=float, default=30.0)
    p.add_argument("--twin-cameras", nargs="*", default=["640x480"], help="twin camera sizes WxH for the node-in-twin runs")
    p.add_argument("--only", nargs="*", choices=("inference", "node", "twin"), default=["inference", "node", "twin"])
    p.add_argument("--node-nice", type=int, default=0, help="niceness of the policy node and the probe (the wheels end) in the "
                   "node benchmarks, e.g. -10 (root): the control path given priority over the twin and other work")
    p.add_argument("--renice-twin", action="store_true", help="give the twin (the camera's stand-in) the --node-nice priority too")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "policy.json"))
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_policy_"))
    models: dict[str, Path] = {Path(x).parent.name or Path(x).stem: Path(x) for x in args.onnx}
    skipped = {}
    presets = args.presets if ("inference" in args.only or not args.latency_model) else []
    for preset in presets:
        print(f"exporting preset {preset} (untrained, vector input) ...", flush=True)
        try:
            models[f"preset:{preset}"] = export_preset(preset, work)
        except Exception as exc:  # the learning core may not be there yet: say so, measure what exists
            skipped[f"preset:{preset}"] = f"{type(exc).__name__}: {exc}"[:300]
    models["tiny-test-policy"] = build_policy(work / "tiny-test", PreprocessConfig(), error_when_black=False)

    result = {"benchmark": "policy", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                          "note": "shared machine; load averages (1, 5, 15 min) recorded per section"},
              "niceness": os.getpriority(os.PRIO_PROCESS, 0), "priority": {"node_and_probe": args.node_nice, "twin": args.node_nice if args.renice_twin else 0}}
    out = Path(args.out)
    if "inference" in args.only:
        result["inference"] = {}
        for name, path in models.items():
            print(f"timing {name} ...", flush=True)
            result["inference"][name] = bench_inference(path, args.iterations)
        result["skipped"] = skipped
        result["preprocessing"] = bench_preprocessing(max(200, args.iterations // 4))
    latency_model = Path(args.latency_model) if args.latency_model else models.get("preset:duckietown", models.get("preset:small", models["tiny-test-policy"]))
    if "node" in args.only:
        print(f"node latency (fake camera) with {latency_model} for {args.latency_seconds:g} s ...", flush=True)
        result["node"] = bench_node(latency_model, args.latency_seconds, work / "node", args.node_nice)
    if "twin" in args.only:
        for cam in args.twin_cameras:
            w, h = (int(x) for x in cam.split("x"))
            print(f"node latency in the digital twin ({cam}) with {latency_model} for {args.latency_seconds:g} s ...", flush=True)
            result[f"node_in_twin_{cam}"] = bench_node_in_twin(latency_model, args.latency_seconds, work / f"twin_{cam}", (w, h), args.node_nice, args.renice_twin)
    if set(args.only) != {"inference", "node", "twin"} and out.is_file():  # a partial run updates the last results
        result = {**json.loads(out.read_text()), **{k: v for k, v in result.items() if k != "machine"}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    with open(out.with_name(out.stem + "_runs.jsonl"), "a") as f:  # every run's headline numbers, for runs under different loads
        f.write(json.dumps(summary(result)) + "\n")
    if any(isinstance(v, dict) and "raw_ms" in v for v in result.values()) and "inference" in result:
        plot(result, out.with_suffix(".png"))
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "raw_ms"} if isinstance(v, dict) else v) for k, v in result.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
