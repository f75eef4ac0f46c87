"""Policy benchmark: ONNX inference latency per model (1 and 2 threads), and the policy node's camera-to-
wheels latency over DDS on loopback.

    python bench/bench_policy.py                          # the learning core's presets, exported untrained
    python bench/bench_policy.py --onnx runs/x/policy.onnx --latency-model runs/x/policy.onnx

1. Inference: for each model, `--iterations` single-frame runs of onnxruntime (after a warm-up) on random
   observations of the model's input shape, with 1 and 2 intra-op threads: p50/p99/mean in ms. Models: the
   `--onnx` files given, plus (unless --presets is empty) the presets of redraw_training exported with
   random weights (latency does not depend on the weights), plus the tiny test policy of the tests. Also the
   preprocessing of a 640x480 JPEG frame (decode + lane mask / resize), which the node runs before inference.
2. Node latency: the policy node started as drive.launch.py declares it, fed 640x480 JPEG frames at 30 Hz by
   a camera publisher (tests/nodes/policy_probe.py; the digital twin when it exists). Camera-to-wheels =
   time the wheel command reaches a subscriber - the stamp of the camera frame it was computed from, so it
   includes the frame's wait for the next control tick (0..1/30 s at 10 Hz control), preprocessing,
   inference and two DDS hops.

Writes bench/results/policy.json.
"""

from __future__ import annotations

import argparse
import json
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

PRESET_IMAGES = {"tiny": PreprocessConfig(height=32, width=32), "small": PreprocessConfig(), "paper": PreprocessConfig()}


def export_preset(preset: str, folder: Path) -> Path:
    """An untrained agent of `preset`, checkpointed and exported with the learning core's own code."""
    from redraw_training.agent import Agent
    from redraw_training.checkpoint import save_checkpoint
    from redraw_training.config import load_config
    from redraw_training.export import export_policy

    cfg = PRESET_IMAGES[preset]
    agent = Agent(load_config([preset] if preset != "paper" else []), cfg.shape, 2)
    ckpt = save_checkpoint(folder / f"{preset}-ckpt", agent, kind="pretrain", counters={}, preprocessing=cfg.to_dict())
    summary = export_policy(ckpt, folder / preset, model_id=f"bench-{preset}-untrained", verify_samples=2)
    return Path(summary["model"])


def stats(ms: np.ndarray) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 3), "p99": round(float(np.percentile(ms, 99)), 3),
            "mean": round(float(ms.mean()), 3), "n": int(ms.size)}


def bench_inference(path: Path, iterations: int) -> dict:
    from redraw_policy_node.model import PolicyModel

    out = {"model": str(path), "size_kib": round(path.stat().st_size / 1024, 1)}
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        model = PolicyModel(path, threads=threads)
        obs = rng.integers(0, 256, (64, *model.obs_shape[1:]), dtype=np.uint8)
        for i in range(50):
            model.infer(obs[i % 64])
        ms = np.empty(iterations)
        for i in range(iterations):
            t = time.perf_counter()
            model.infer(obs[i % 64])
            ms[i] = (time.perf_counter() - t) * 1e3
        out[f"threads_{threads}"] = stats(ms)
        out["model_id"], out["input"] = model.model_id, list(model.obs_shape)
    return out


def bench_preprocessing(iterations: int) -> dict:
    import importlib.util

    from redraw_common.preprocessing import encode_jpeg, preprocess

    spec = importlib.util.spec_from_file_location("fake_robot", REPO / "tests" / "nodes" / "fake_robot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    jpeg = encode_jpeg(mod.road(640, 480, 0.3, np.random.default_rng(0)), 85)
    out = {"frame": "640x480 JPEG", "jpeg_kib": round(len(jpeg) / 1024, 1)}
    for name, cfg in (("lane_mask_64", PreprocessConfig()), ("rgb_64", PreprocessConfig(mode="rgb"))):
        ms = np.empty(iterations)
        for i in range(iterations):
            t = time.perf_counter()
            preprocess(jpeg, cfg)
            ms[i] = (time.perf_counter() - t) * 1e3
        out[name] = stats(ms)
    return out


def bench_node(model: Path, seconds: float, run: Path) -> dict:
    out_json = run / "probe.json"
    with NodeGroup(run) as group:
        start_launch(group, REPO / "src" / "redraw_policy_node" / "launch" / "drive.launch.py", {"robot": "benchbot", "model": str(model)})
        probe = group.start_python(REPO / "tests" / "nodes" / "policy_probe.py", [
            "--robot", "benchbot", "--out", str(out_json), "--width", "640", "--height", "480", "--quality", "85",
            "--script", json.dumps([{"mode": "road", "seconds": seconds}])])
        probe.wait(timeout=seconds + 60)
    data = json.loads(out_json.read_text())
    (phase,) = data["phases"]
    status = {s[5]: s for s in data["status"] if phase["t_start"] <= s[0] <= phase["t_end"] and s[1] == 0}
    c2w, e2e, inf = [], [], []
    wheels = [w for w in data["wheels"] if phase["t_start"] <= w[0] <= phase["t_end"]]
    for w in wheels:
        s = status.get(w[3])
        if s is None:
            continue
        frame_stamp = s[5] - s[2] * 1e6
        c2w.append((w[4] - frame_stamp) / 1e6)
        e2e.append(s[2])
        inf.append(s[3])
    rate = len(wheels) / (phase["t_end"] - phase["t_start"])
    return {"model": str(model), "seconds": seconds, "camera": "640x480 JPEG q85 at 30 Hz (test camera publisher)",
            "commands_per_s": round(rate, 2), "camera_to_wheels_ms": stats(np.array(c2w)),
            "node_frame_to_publish_ms": stats(np.array(e2e)), "node_inference_ms": stats(np.array(inf))}


def bench_node_in_twin(model: Path, seconds: float, run: Path) -> dict:
    """The policy node driving the digital twin (launch/twin_drive.launch.py as declared, nominal twin, real
    time, 640x480 JPEG camera at 30 Hz): camera-to-wheels from the node's own PolicyStatus (frame stamp ->
    command publish) and at a subscriber (command receive time - frame stamp)."""
    out_json = run / "probe.json"
    with NodeGroup(run) as group:
        start_launch(group, REPO / "launch" / "twin_drive.launch.py", {"robot": "benchbot", "model": str(model), "perturb": ""})
        probe = group.start_python(REPO / "tests" / "nodes" / "policy_probe.py", [
            "--robot", "benchbot", "--out", str(out_json), "--script", "[]", "--listen", str(seconds + 8)])
        probe.wait(timeout=seconds + 90)
    data = json.loads(out_json.read_text())
    t_end = max(w[0] for w in data["wheels"])
    t_start = t_end - seconds
    status = {s[5]: s for s in data["status"] if s[0] >= t_start and s[1] == 0}
    c2w, e2e, inf = [], [], []
    wheels = [w for w in data["wheels"] if w[0] >= t_start]
    for w in wheels:
        s = status.get(w[3])
        if s is None:
            continue
        c2w.append((w[4] - (s[5] - s[2] * 1e6)) / 1e6)
        e2e.append(s[2])
        inf.append(s[3])
    if not c2w:
        raise RuntimeError(f"no driving commands from the policy node in the twin; logs in {run}")
    return {"model": str(model), "seconds": seconds, "camera": "digital twin, nominal, 640x480 JPEG at 30 Hz, real time",
            "commands_per_s": round(len(wheels) / seconds, 2), "camera_to_wheels_ms": stats(np.array(c2w)),
            "node_frame_to_publish_ms": stats(np.array(e2e)), "node_inference_ms": stats(np.array(inf))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", nargs="*", default=[], help="exported policies (policy.onnx with manifest) to time")
    p.add_argument("--presets", nargs="*", default=["tiny", "small", "paper"], help="redraw_training presets to export untrained and time")
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--latency-model", default="", help="model for the node benchmark (default: the 'small' preset, else the tiny test policy)")
    p.add_argument("--latency-seconds", type=float, default=30.0)
    p.add_argument("--no-twin", action="store_true", help="skip the node latency measured in the digital twin")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "policy.json"))
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_policy_"))
    models: dict[str, Path] = {Path(x).parent.name or Path(x).stem: Path(x) for x in args.onnx}
    skipped = {}
    for preset in args.presets:
        try:
            models[f"preset:{preset}"] = export_preset(preset, work)
        except Exception as exc:  # the learning core may not be there yet: say so, measure what exists
            skipped[f"preset:{preset}"] = f"{type(exc).__name__}: {exc}"[:300]
    models["tiny-test-policy"] = build_policy(work / "tiny-test", PreprocessConfig(), error_when_black=False)

    result = {"benchmark": "policy", "machine": {"platform": platform.platform(), "python": platform.python_version(),
                                                 "cpus": __import__("os").cpu_count()}}
    result["inference"] = {}
    for name, path in models.items():
        print(f"timing {name} ...", flush=True)
        result["inference"][name] = bench_inference(path, args.iterations)
    result["skipped"] = skipped
    result["preprocessing"] = bench_preprocessing(max(200, args.iterations // 4))
    latency_model = Path(args.latency_model) if args.latency_model else models.get("preset:small", models["tiny-test-policy"])
    print(f"node latency with {latency_model} for {args.latency_seconds:g} s ...", flush=True)
    result["node"] = bench_node(latency_model, args.latency_seconds, work / "node")
    if not args.no_twin:
        print(f"node latency in the digital twin with {latency_model} for {args.latency_seconds:g} s ...", flush=True)
        result["node_in_twin"] = bench_node_in_twin(latency_model, args.latency_seconds, work / "twin")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
