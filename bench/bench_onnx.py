"""ONNX runtime options and int8 quantisation of an exported policy: latency, and how far each moves the action.

    python bench/bench_onnx.py                 # the shipped model (trained) + the paper preset (untrained)
    python bench/bench_onnx.py --max-load 99   # measure on a busy machine anyway (the load is recorded)

For each model, every variant runs `--iterations` single-frame inferences with 1 intra-op thread and sequential
execution (the policy node's settings), after a warm-up: wall-clock and calling-thread CPU time p50/p99, session
creation time and file size. Variants:
  fp32 at graph optimisation level basic / extended / all (all: what the policy node uses);
  fp32 pre-optimised: the graph optimised offline at level extended (portable across CPUs: level all adds
      layout transforms for this machine's instruction set) and saved, then loaded at level all;
  int8 dynamic quantisation (onnxruntime.quantization.quantize_dynamic, int8 weights per output channel,
      activations quantised at run time) of every MatMul/Gemm, and of only the actor's (the layers after the
      posterior's argmax; the encoder's stay fp32).
Action error = max |action(variant) - action(fp32)| per observation (actions in [-1, 1]) over observations of
the Duckietown simulator driven by the shipped policy with noise (`--frames`); the verdict holds each variant to
INT8_TOLERANCE on the maximum. The shipped model reads the velocity and its last 2 actions; the paper preset is
exported untrained with the velocity alone.

Refuses when the 1-minute load average is above --max-load at the start (latency on a shared machine is mostly
waiting for a core). Writes bench/results/onnx.json and onnx.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_policy import export_preset, load, stats  # noqa: E402

#: the most an int8 variant may move any action component (of [-1, 1]) for it to be worth shipping
INT8_TOLERANCE = 0.05
SHIPPED = REPO / "models" / "duckietown_draw" / "checkpoint"


def pre_argmax_matmuls(model) -> list[str]:
    """Names quantize_dynamic gives the MatMuls before the posterior's ArgMax (it renames a Gemm to <name>_MatMul)."""
    names = []
    for node in model.graph.node:
        if node.op_type == "ArgMax":
            return names
        if node.op_type in ("Gemm", "MatMul"):
            names.append(f"{node.name}_MatMul" if node.op_type == "Gemm" else node.name)
    raise ValueError("the policy graph has no ArgMax (the posterior mode); cannot tell the encoder from the actor")


def build_variants(fp32: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (model file, runtime graph optimisation level)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32))
    # the exporter's value_info carries shapes that onnx's shape inference (run by the quantiser) rejects: drop them
    del model.graph.value_info[:]
    bare = folder / "fp32_bare.onnx"
    onnx.save(model, str(bare))
    variants = {f"fp32 {level}": (fp32, level) for level in ("basic", "extended", "all")}
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(folder / "fp32_preoptimised.onnx")
    ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"])
    variants["fp32 pre-optimised"] = (folder / "fp32_preoptimised.onnx", "all")
    for name, exclude in (("int8 all MatMuls", []), ("int8 actor only", pre_argmax_matmuls(model))):
        out = folder / (name.replace(" ", "_") + ".onnx")
        quantize_dynamic(str(bare), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                         per_channel=True, nodes_to_exclude=exclude)
        variants[name] = (out, "all")
    return variants


def session(path: Path, level: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    options.log_severity_level = 3
    t = time.perf_counter()
    s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return s, (time.perf_counter() - t) * 1000


def sim_observations(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(image, velocity, last 2 actions) of the Duckietown simulator driven by the shipped policy + noise."""
    import gymnasium as gym

    import redraw_sim  # noqa: F401  (registers the envs)
    from redraw_common.observation import ActionHistory, compose_vector
    from redraw_training.export import export_policy

    work = Path(tempfile.mkdtemp(prefix="bench_onnx_drive_"))
    driver, _ = session(Path(export_policy(SHIPPED, work / "shipped", verify_samples=1)["model"]), "all")
    env = gym.make("redraw/DuckietownLoop-v0")
    rng = np.random.default_rng(seed)
    history = ActionHistory(2)
    obs, _ = env.reset(seed=seed)
    frames = []
    for t in range(n):
        vector = compose_vector(obs["vector"], history)
        frames.append((obs["image"], obs["vector"].astype(np.float32), vector))
        action = driver.run(["action"], {"obs": obs["image"][None], "vector": vector[None]})[0][0]
        action = np.clip(action + rng.normal(0.0, 0.3, 2), -1.0, 1.0)
        history.push(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset(seed=seed + t + 1)
            history.reset()
    env.close()
    return frames


def feeds_for(session_, frames) -> list[dict[str, np.ndarray]]:
    dim = dict((i.name, i.shape) for i in session_.get_inputs())["vector"][1]
    return [{"obs": image[None], "vector": (vector if dim == vector.size else velocity)[None]} for image, velocity, vector in frames]


def time_variant(path: Path, level: str, feeds, iterations: int) -> dict:
    s, created_ms = session(path, level)
    for i in range(50):
        s.run(["action"], feeds[i % len(feeds)])
    wall, cpu = np.empty(iterations), np.empty(iterations)
    before = load()
    for i in range(iterations):
        c, t = time.thread_time_ns(), time.perf_counter_ns()
        s.run(["action"], feeds[i % len(feeds)])
        wall[i], cpu[i] = (time.perf_counter_ns() - t) / 1e6, (time.thread_time_ns() - c) / 1e6
    actions = np.concatenate([s.run(["action"], f)[0] for f in feeds])
    return {"file": path.name, "size_kib": round(path.stat().st_size / 1024, 1), "session_create_ms": round(created_ms, 1),
            "wall_ms": stats(wall), "cpu_ms": stats(cpu), "load_before": before, "load_after": load(), "actions": actions}


def bench_model(label: str, fp32: Path, frames, iterations: int, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    reference = None
    for name, (path, level) in build_variants(fp32, folder).items():
        print(f"  {label}: {name} ...", flush=True)
        feeds = feeds_for(session(path, level)[0], frames)
        r = time_variant(path, level, feeds, iterations)
        actions = r.pop("actions")
        if reference is None:  # fp32 basic: the graph as exported
            reference = actions
        error = np.abs(actions - reference).max(1)
        r["action_error_vs_fp32"] = {"max": round(float(error.max()), 4), "p99": round(float(np.percentile(error, 99)), 4),
                                     "mean": round(float(error.mean()), 5), "n": int(error.size)}
        r["within_tolerance"] = bool(error.max() <= INT8_TOLERANCE)
        out[name] = r
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = result["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4))
    for ax, (label, variants) in zip(np.atleast_1d(axes), models.items()):
        names = list(variants)
        x = np.arange(len(names))
        ax.bar(x - 0.2, [variants[n]["wall_ms"]["p50"] for n in names], 0.4, label="wall p50")
        ax.bar(x + 0.2, [variants[n]["wall_ms"]["p99"] for n in names], 0.4, label="wall p99")
        for i, n in enumerate(names):
            e = variants[n]["action_error_vs_fp32"]["max"]
            ax.text(i, variants[n]["wall_ms"]["p99"], f"err {e:.3f}", ha="center", va="bottom", fontsize=7,
                    color="k" if variants[n]["within_tolerance"] else "r")
        ax.set_xticks(x, names, rotation=25, fontsize=8)
        ax.set_ylabel("ms per inference (1 thread)")
        ax.set_title(f"{label} (max action error in red: above {INT8_TOLERANCE})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--frames", type=int, default=400, help="simulator observations for the action error")
    p.add_argument("--max-load", type=float, default=0.5, help="refuse when the 1-minute load average is above this")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "onnx.json"))
    args = p.parse_args()
    if os.getloadavg()[0] > args.max_load:
        print(f"bench_onnx: the 1-minute load average is {os.getloadavg()[0]:.2f}, above --max-load {args.max_load}: "
              "latency would measure the wait for a core; run it on a quiet machine or raise --max-load", file=sys.stderr)
        return 2
    from redraw_training.export import export_policy

    work = Path(tempfile.mkdtemp(prefix="bench_onnx_"))
    print(f"observations: {args.frames} simulator frames ...", flush=True)
    frames = sim_observations(args.frames)
    shipped = Path(export_policy(SHIPPED, work / "shipped", verify_samples=1)["model"])
    paper = export_preset("paper", work)
    result = {"benchmark": "onnx", "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
              "threads": 1, "iterations": args.iterations, "int8_tolerance": INT8_TOLERANCE,
              "observations": f"{args.frames} frames of redraw/DuckietownLoop-v0 driven by the shipped policy + N(0, 0.3) noise",
              "models": {"shipped (duckietown_draw, trained)": bench_model("shipped", shipped, frames, args.iterations, work / "v_shipped"),
                         "paper preset (untrained)": bench_model("paper", paper, frames, args.iterations, work / "v_paper")}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    for label, variants in result["models"].items():
        print(label)
        for name, r in variants.items():
            e = r["action_error_vs_fp32"]
            print(f"  {name:20s} wall p50 {r['wall_ms']['p50']:6.3f} p99 {r['wall_ms']['p99']:6.3f} ms | cpu p50 {r['cpu_ms']['p50']:6.3f} | "
                  f"session {r['session_create_ms']:5.1f} ms | {r['size_kib']:8.1f} KiB | action error max {e['max']:.4f} "
                  f"p99 {e['p99']:.4f} {'ok' if r['within_tolerance'] else 'ABOVE ' + str(INT8_TOLERANCE)} | load {r['load_before'][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
