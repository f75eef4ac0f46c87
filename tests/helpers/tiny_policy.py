"""Tiny ONNX policies with manifests, for testing the policy node (built with onnx.helper: no torch needed).

The model reads the observation `obs` uint8 (1, H, W, C), averages each channel over the image
(m_c in [0, 1]) and outputs `action` float32 (1, 2):

    forward = 0.3 + 0.4 * m_0                  (lane_mask: more yellow -> faster)
    turn    = tanh(2 * (m_0 - m_last))         (yellow vs white balance)
    nan_gate: with nan_when_white, both are NaN when the last channel is fully covered (m_last == 1, an
              all-white camera frame in lane_mask mode) - a model that fails on demand
    error:    with error_when_black, inference raises (a Reshape to an impossible shape) when the observation
              is almost empty (mean < 1 of 255: an all-black camera frame) - a model error on demand

    build_policy(folder, preprocessing=PreprocessConfig(), nan_when_white=True, error_when_black=True) -> policy.onnx
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from redraw_common.manifest import ActionSpec, ModelManifest, TensorSpec, manifest_path_for, sha256_file
from redraw_common.preprocessing import PreprocessConfig


def _graph(shape: tuple[int, int, int, int], nan_when_white: bool, error_when_black: bool = False, extra_output: bool = False) -> onnx.ModelProto:
    _, h, w, c = shape
    f32 = TensorProto.FLOAT
    nodes = [
        helper.make_node("Cast", ["obs"], ["x"], to=f32),
        helper.make_node("ReduceMean", ["x", "axes_hw"], ["m255"], keepdims=0),          # (1, C)
        helper.make_node("Div", ["m255", "c255"], ["m"]),
        helper.make_node("Gather", ["m", "i0"], ["m0"], axis=1),                          # (1,): scalar index
        helper.make_node("Gather", ["m", "ilast"], ["ml"], axis=1),
        helper.make_node("Mul", ["m0", "c04"], ["f1"]),
        helper.make_node("Add", ["f1", "c03"], ["fwd"]),
        helper.make_node("Sub", ["m0", "ml"], ["d"]),
        helper.make_node("Mul", ["d", "c2"], ["d2"]),
        helper.make_node("Tanh", ["d2"], ["turn"]),
        helper.make_node("Concat", ["fwd", "turn"], ["a0"], axis=0),                      # (2,)
    ]
    if nan_when_white:
        # 0 * log(1 - m_last): 0 while m_last < 1, 0 * -inf = NaN when the last channel is full
        nodes += [
            helper.make_node("Sub", ["c1", "ml"], ["room"]),
            helper.make_node("Log", ["room"], ["lg"]),
            helper.make_node("Mul", ["lg", "c0"], ["gate"]),
            helper.make_node("Add", ["a0", "gate"], ["a1"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["a0"], ["a1"]))
    if error_when_black:
        # k = 1 normally, 7 when the observation is (almost) empty; H*W*C is not a multiple of 7, so the
        # Reshape to (k, -1) fails at run time exactly then; the result joins the output as + 0
        assert (h * w * c) % 7, "error_when_black needs H*W*C not divisible by 7"
        nodes += [
            helper.make_node("ReduceMean", ["x"], ["mall"], keepdims=0),
            helper.make_node("Less", ["mall", "c1"], ["dark"]),
            helper.make_node("Cast", ["dark"], ["darki"], to=TensorProto.INT64),
            helper.make_node("Mul", ["darki", "i6"], ["k6"]),
            helper.make_node("Add", ["k6", "i1"], ["k"]),
            helper.make_node("Unsqueeze", ["k", "axes0"], ["k1"]),
            helper.make_node("Concat", ["k1", "minus1"], ["shape2"], axis=0),
            helper.make_node("Reshape", ["x", "shape2"], ["r"]),
            helper.make_node("ReduceSum", ["r"], ["rs"], keepdims=0),
            helper.make_node("Mul", ["rs", "c0"], ["zero"]),
            helper.make_node("Add", ["a1", "zero"], ["a2"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["a1"], ["a2"]))
    nodes.append(helper.make_node("Unsqueeze", ["a2", "axes0"], ["action"]))
    outputs = [helper.make_tensor_value_info("action", f32, [1, 2])]
    if extra_output:     # a graph with an output beside 'action' (the channel means), that no manifest lists
        nodes.append(helper.make_node("Identity", ["m"], ["channel_means"]))
        outputs.append(helper.make_tensor_value_info("channel_means", f32, [1, c]))
    consts = [
        helper.make_tensor("axes_hw", TensorProto.INT64, [2], [1, 2]),
        helper.make_tensor("axes0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("i0", TensorProto.INT64, [], [0]),
        helper.make_tensor("ilast", TensorProto.INT64, [], [c - 1]),
        *(helper.make_tensor(n, f32, [], [v]) for n, v in (("c255", 255.0), ("c04", 0.4), ("c03", 0.3), ("c2", 2.0), ("c1", 1.0), ("c0", 0.0))),
        helper.make_tensor("i6", TensorProto.INT64, [], [6]),
        helper.make_tensor("i1", TensorProto.INT64, [], [1]),
        helper.make_tensor("minus1", TensorProto.INT64, [1], [-1]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_policy",
        [helper.make_tensor_value_info("obs", TensorProto.UINT8, list(shape))],
        outputs,
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="redraw-tests")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def reference_action(obs: np.ndarray) -> np.ndarray:
    """What the tiny policy computes, in numpy (for checking the node's output)."""
    m = obs.astype(np.float64).mean(axis=(0, 1)) / 255.0
    return np.array([0.3 + 0.4 * m[0], np.tanh(2 * (m[0] - m[-1]))], np.float32)


def build_policy(folder: str | Path, preprocessing: PreprocessConfig | None = None, *, nan_when_white: bool = True, error_when_black: bool = True,
                 input_shape: tuple[int, ...] | None = None, manifest_input_shape: tuple[int, ...] | None = None,
                 model_id: str = "tiny-test-policy", control_hz: float = 10.0, extra_output: bool = False) -> Path:
    """Write policy.onnx + policy.manifest.json into `folder`. `input_shape` overrides the ONNX input shape
    and `manifest_input_shape` the shape the manifest declares (both default to (1, *preprocessing.shape)),
    and `extra_output` adds a graph output the manifest does not list, to build mismatched models."""
    cfg = preprocessing or PreprocessConfig()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shape = tuple(input_shape or (1, *cfg.shape))
    path = folder / "policy.onnx"
    onnx.save(_graph(shape, nan_when_white, error_when_black and (shape[1] * shape[2] * shape[3]) % 7 != 0, extra_output), path)
    manifest = ModelManifest(
        model_id=model_id, model_file=path.name, sha256=sha256_file(path), preprocessing=cfg,
        inputs=(TensorSpec("obs", tuple(manifest_input_shape or shape), "uint8"),),
        outputs=(TensorSpec("action", (1, 2), "float32"),), action=ActionSpec(), control_hz=control_hz,
        created="2026-11-21T00:00:00Z", provenance={"method": "tests/helpers/tiny_policy.py"},
    )
    manifest_path_for(path).write_text(json.dumps(manifest.to_dict(), indent=2))
    return path


def tamper_hash(model_path: Path) -> None:
    """Change the model file after its manifest was written (hash mismatch)."""
    data = bytearray(model_path.read_bytes())
    data[-1] ^= 0xFF
    model_path.write_bytes(bytes(data))


def with_manifest(model_path: Path, **changes) -> None:
    """Rewrite the manifest with changed fields (hash kept)."""
    from redraw_common.manifest import load_manifest

    m = load_manifest(manifest_path_for(model_path))
    manifest_path_for(model_path).write_text(json.dumps(replace(m, **changes).to_dict(), indent=2))


def build_vector_policy(folder: str | Path, preprocessing: PreprocessConfig, weights: np.ndarray, *, manifest_dim: int | None = None,
                        model_id: str = "tiny-vector-policy") -> Path:
    """A policy over the camera and a vector of size D: action = tanh(vector @ weights + mean(obs) / 255), weights (D, 2).
    `manifest_dim` makes the manifest declare another vector size than the graph (a mismatched model)."""
    f32 = TensorProto.FLOAT
    weights = np.asarray(weights, np.float32)
    dim = int(weights.shape[0])
    nodes = [
        helper.make_node("Cast", ["obs"], ["x"], to=f32),
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
        helper.make_node("Div", ["m", "c255"], ["m1"]),
        helper.make_node("MatMul", ["vector", "w"], ["v"]),
        helper.make_node("Add", ["v", "m1"], ["a"]),
        helper.make_node("Tanh", ["a"], ["action"]),
    ]
    consts = [helper.make_tensor("c255", f32, [], [255.0]), helper.make_tensor("w", f32, [dim, 2], weights.ravel().tolist())]
    graph = helper.make_graph(nodes, "vector_policy",
                              [helper.make_tensor_value_info("obs", TensorProto.UINT8, [1, *preprocessing.shape]),
                               helper.make_tensor_value_info("vector", f32, [1, dim])],
                              [helper.make_tensor_value_info("action", f32, [1, 2])], initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="redraw-tests")
    model.ir_version = 9
    onnx.checker.check_model(model)
    path = build_policy(folder, preprocessing, model_id=model_id)  # a camera-only manifest, then this graph and its inputs
    onnx.save(model, path)
    with_manifest(path, sha256=sha256_file(path),
                  inputs=(TensorSpec("obs", (1, *preprocessing.shape), "uint8"), TensorSpec("vector", (1, manifest_dim or dim), "float32")))
    return path
