"""An exported policy (ONNX + manifest) loaded for the robot: verified before it may drive.

    model = PolicyModel("/models/policy.onnx", threads=1)   # raises ManifestError on any mismatch
    obs = model.observe(jpeg_bytes)                         # the manifest's preprocessing (redraw_common)
    raw = model.infer(obs)                                  # (A,) float32, exactly what the network said
    raw = model.infer(obs, vec)                             # a model with a `vector` input (model.uses_vector):
                                                            # (model.vector_dim,) = 2 + 2 * model.action_history
    forward, turn = model.to_drive(raw)                     # policy space [-1, 1]; raises on non-finite

Checks, each with an error that says what was expected and what was found:
    the manifest exists next to the model, is valid, names this file and matches its sha256;
    the manifest's input `obs` is uint8 (1, H, W, C) with (H, W, C) = the preprocessing's output shape;
    an optional input `vector` is float32 (1, D), D = 2 + 2k: the Duckietown env's vector observation
    (redraw_common.observation), the robot's measured velocity [forward m/s, yaw rate rad/s] (wheel odometry,
    redraw_common.topics.ODOM_VELOCITY) followed by the last k actions sent (forward, turn), newest first;
    D = 2 (k = 0) is the velocity alone;
    the ONNX graph's inputs and outputs are exactly the manifest's (names, dtypes, fixed dimensions);
    the output `action` is float32 (1, A) with A = the manifest's action names, which include forward, turn.

onnxruntime + numpy + redraw_common only: no torch on the robot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redraw_common import topics
from redraw_common.errors import ManifestError
from redraw_common.manifest import ModelManifest, TensorSpec, load_verified
from redraw_common.observation import history_length
from redraw_common.preprocessing import preprocess

OBS_INPUT = "obs"
VECTOR_INPUT = "vector"
VECTOR_LAYOUT = (f"[1, 2] (the measured velocity [forward m/s, yaw rate rad/s] from {topics.ODOM_VELOCITY}) or "
                 "[1, 2 + 2k] (the velocity, then the last k actions sent (forward, turn), newest first)")
ACTION_OUTPUT = "action"
_ORT_DTYPES = {"tensor(uint8)": "uint8", "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64"}


def _check_spec(where: str, spec: TensorSpec, ort_arg) -> None:
    dtype = _ORT_DTYPES.get(ort_arg.type, ort_arg.type)
    if dtype != spec.dtype:
        raise ManifestError(f"{where} '{spec.name}': the manifest says dtype {spec.dtype}, the ONNX model has {dtype}")
    shape = list(ort_arg.shape)
    if len(shape) != len(spec.shape) or any(isinstance(d, int) and d != s for d, s in zip(shape, spec.shape)):
        raise ManifestError(f"{where} '{spec.name}': the manifest says shape {list(spec.shape)}, the ONNX model has {shape}")


class PolicyModel:
    def __init__(self, model_path: str | Path, threads: int = 1):
        import onnxruntime as ort

        self.path = Path(model_path)
        self.manifest: ModelManifest = load_verified(self.path)
        m = self.manifest
        cfg = m.preprocessing
        inputs = {t.name: t for t in m.inputs}
        if OBS_INPUT not in inputs:
            raise ManifestError(f"manifest inputs {sorted(inputs)} lack '{OBS_INPUT}', the camera observation the node feeds")
        extra = sorted(set(inputs) - {OBS_INPUT, VECTOR_INPUT})
        if extra:
            raise ManifestError(
                f"model inputs {extra} are not supported by the policy node: it feeds the camera observation '{OBS_INPUT}' "
                f"and optionally the measured velocity '{VECTOR_INPUT}'"
            )
        vector = inputs.get(VECTOR_INPUT)
        self.action_history = 0  # k: past actions in the vector (0 also for a model without one)
        if vector is not None:
            found = f"the manifest says {vector.dtype} {list(vector.shape)}"
            if vector.dtype != "float32" or len(vector.shape) != 2 or vector.shape[0] != 1:
                raise ManifestError(f"input '{VECTOR_INPUT}' must be float32 {VECTOR_LAYOUT}, {found}")
            try:
                self.action_history = history_length(vector.shape[1])
            except ValueError:
                raise ManifestError(f"input '{VECTOR_INPUT}' must be float32 {VECTOR_LAYOUT}, {found}") from None
        obs = inputs[OBS_INPUT]
        expected = (1, *cfg.shape)
        if obs.dtype != "uint8" or tuple(obs.shape) != expected:
            raise ManifestError(
                f"input '{OBS_INPUT}' must be uint8 {list(expected)} (batch 1 + the preprocessing output {cfg.mode} "
                f"{cfg.height}x{cfg.width}x{cfg.channels}), the manifest says {obs.dtype} {list(obs.shape)}"
            )
        outputs = {t.name: t for t in m.outputs}
        if ACTION_OUTPUT not in outputs:
            raise ManifestError(f"manifest outputs {sorted(outputs)} lack '{ACTION_OUTPUT}'")
        act = outputs[ACTION_OUTPUT]
        if act.dtype != "float32" or tuple(act.shape) != (1, len(m.action.names)):
            raise ManifestError(
                f"output '{ACTION_OUTPUT}' must be float32 [1, {len(m.action.names)}] (one value per action name "
                f"{list(m.action.names)}), the manifest says {act.dtype} {list(act.shape)}"
            )
        missing = [n for n in ("forward", "turn") if n not in m.action.names]
        if missing:
            raise ManifestError(f"action names {list(m.action.names)} lack {missing}; the robot drives with (forward, turn)")
        self._fwd, self._turn = m.action.names.index("forward"), m.action.names.index("turn")

        # one frame at a time on a shared CPU: no inter-op parallelism, every graph optimisation onnxruntime has
        # (level all was the fastest of basic / extended / all / pre-optimised at export; int8 quantisation moves
        # the action beyond its tolerance where it would help: bench/bench_onnx.py, bench/results/onnx.json)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ManifestError(f"onnxruntime cannot load {self.path}: {exc}") from None
        graph_inputs = {i.name: i for i in self.session.get_inputs()}
        graph_outputs = {o.name: o for o in self.session.get_outputs()}
        if set(graph_inputs) != set(inputs):
            raise ManifestError(f"the manifest lists inputs {sorted(inputs)}, the ONNX model has {sorted(graph_inputs)}")
        if set(graph_outputs) != set(outputs):
            raise ManifestError(f"the manifest lists outputs {sorted(outputs)}, the ONNX model has {sorted(graph_outputs)}")
        _check_spec("input", obs, graph_inputs[OBS_INPUT])
        if vector is not None:
            _check_spec("input", vector, graph_inputs[VECTOR_INPUT])
        _check_spec("output", act, graph_outputs[ACTION_OUTPUT])
        self.obs_shape = expected
        self.uses_vector = vector is not None
        self.vector_dim = int(vector.shape[1]) if vector is not None else 0  # D = 2 + 2 * action_history

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    def observe(self, frame: bytes | np.ndarray) -> np.ndarray:
        """Camera frame (JPEG bytes or RGB array) -> the model's observation, with the manifest's settings."""
        return preprocess(frame, self.manifest.preprocessing)

    def infer(self, obs: np.ndarray, vector=None) -> np.ndarray:
        """(H, W, C) uint8 observation (+ for a model with a vector input its (vector_dim,) vector: the measured
        [forward, yaw rate], then the last `action_history` actions, redraw_common.observation.compose_vector)
        -> raw action (A,) float32, unchecked."""
        feeds = {OBS_INPUT: obs.reshape(self.obs_shape)}
        if self.uses_vector:
            what = "measured velocity" + (f", then the last {self.action_history} actions" if self.action_history else "")
            if vector is None:
                raise ValueError(f"this model reads '{VECTOR_INPUT}' [1, {self.vector_dim}] ({what}), none was given")
            vec = np.asarray(vector, np.float32)
            if vec.size != self.vector_dim:
                raise ValueError(f"this model reads '{VECTOR_INPUT}' [1, {self.vector_dim}] ({what}), found a vector of "
                                 f"shape {list(vec.shape)}")
            feeds[VECTOR_INPUT] = vec.reshape(1, self.vector_dim)
        elif vector is not None:
            raise ValueError(f"this model has no '{VECTOR_INPUT}' input; found a vector {np.asarray(vector).tolist()}")
        (out,) = self.session.run([ACTION_OUTPUT], feeds)
        return np.asarray(out, np.float32).reshape(-1)

    def to_drive(self, raw: np.ndarray) -> tuple[float, float]:
        """Raw action -> (forward, turn) in [-1, 1]. Raises ValueError if any value is not finite."""
        if not np.all(np.isfinite(raw)):
            raise ValueError(f"non-finite action {raw.tolist()}")
        low, high = self.manifest.action.low, self.manifest.action.high
        a = (np.clip(raw, low, high) - low) / (high - low) * 2.0 - 1.0
        return float(a[self._fwd]), float(a[self._turn])
