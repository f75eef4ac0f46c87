"""Export encoder + actor to ONNX for the robot (onnxruntime, no torch there).

The exported graph is deterministic: posterior mode (argmax per latent) and the actor's mean action.

    inputs   obs     uint8 (1, H, W, C)   the preprocessed observation (redraw_common.preprocess)
             vector  float32 (1, D)       only if the model encodes a vector observation
    output   action  float32 (1, A)       in [-1, 1]

Next to `policy.onnx` it writes `policy.manifest.json` (redraw_common.manifest): sha256 of the model, the
preprocessing settings recorded in the checkpoint, action names, control rate, tensor specs, provenance.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from redraw_common.manifest import ActionSpec, ModelManifest, TensorSpec, manifest_path_for, sha256_file
from redraw_common.preprocessing import PreprocessConfig

from .checkpoint import load_agent
from .envs import default_preprocessing


class PolicyGraph(nn.Module):
    """obs (+ vector) -> deterministic action, built from a (trained) Agent's encoder, posterior and actor."""

    def __init__(self, agent):
        super().__init__()
        self.encoder = agent.wm.encoder
        self.obs_out = agent.wm.draw.obs_out
        self.obs_stats = agent.wm.draw.obs_stats
        self.actor = agent.task.actor.mlp
        self.stoch, self.classes = agent.wm.draw.stoch, agent.wm.draw.classes
        self.action_dim = agent.action_dim
        # history_to_policy: the encoder reads the vector's head (velocity), the actor its tail (past actions)
        self.model_vector_dim, self.hist_dim = agent.wm.model_vector_dim, agent.hist_dim

    def forward(self, obs: torch.Tensor, vector: torch.Tensor | None = None) -> torch.Tensor:
        embed = self.encoder(obs, vector if not self.hist_dim else vector[:, : self.model_vector_dim])
        raw = self.obs_stats(self.obs_out(embed)).reshape(-1, self.classes, self.stoch)      # (1, C, K) layout
        z = F.one_hot(torch.argmax(raw, 1), self.classes).to(raw.dtype).permute(0, 2, 1)  # (1, C, K) one-hot
        z = z.reshape(-1, self.stoch * self.classes)
        out = self.actor(z if not self.hist_dim else torch.cat([z, vector[:, self.model_vector_dim:]], -1))
        return torch.tanh(out[:, : self.action_dim])


def _export_onnx(graph: nn.Module, args: tuple, path: Path, input_names: list[str]) -> None:
    quiet = io.StringIO()
    previous = logging.getLogger("torch.onnx").level
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), redirect_stdout(quiet), redirect_stderr(quiet):
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, args, str(path), input_names=input_names, output_names=["action"], dynamo=True,
                              external_data=False, optimize=True)
    except Exception as exc:
        raise RuntimeError(f"ONNX export failed: {exc}\n{quiet.getvalue()[-2000:]}") from exc
    finally:
        logging.getLogger("torch.onnx").setLevel(previous)


def onnx_parity(path: Path, graph: nn.Module, feeds: dict[str, np.ndarray]) -> float:
    """max |onnxruntime - torch| over the given inputs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(["action"], feeds)[0]
    with torch.no_grad():
        args = [torch.from_numpy(feeds["obs"])] + ([torch.from_numpy(feeds["vector"])] if "vector" in feeds else [])
        want = graph(*args).numpy()
    return float(np.max(np.abs(got - want)))


def export_policy(checkpoint: str | Path, out: str | Path, model_id: str | None = None, verify_samples: int = 8,
                  seed: int = 0, parity_feeds: list[dict[str, np.ndarray]] | None = None) -> dict[str, Any]:
    """Write out/policy.onnx and out/policy.manifest.json; check ONNX against torch. Returns a summary."""
    agent, manifest, directory = load_agent(checkpoint, "cpu", optimizers=False)
    model = manifest.get("config", {}).get("model", "draw")
    if model != "draw":
        raise ValueError(f"{checkpoint}: export takes DRAW / ReDRAW checkpoints (a policy of the current frame only), "
                         f"found model {model!r}, whose policy is recurrent (it needs the previous state); evaluate it in "
                         "simulation with `evaluate` instead")
    agent.eval()
    graph = PolicyGraph(agent).eval()
    h, w, c = agent.image_shape
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "policy.onnx"
    rng = np.random.default_rng(seed)
    example = {"obs": rng.integers(0, 256, (1, h, w, c), dtype=np.uint8)}
    inputs = [TensorSpec("obs", (1, h, w, c), "uint8")]
    if agent.vector_dim:
        example["vector"] = rng.standard_normal((1, agent.vector_dim)).astype(np.float32)
        inputs.append(TensorSpec("vector", (1, agent.vector_dim), "float32"))
    args = tuple(torch.from_numpy(example[k]) for k in example)
    _export_onnx(graph, args, path, list(example))

    feeds = list(parity_feeds or [])
    for _ in range(verify_samples):
        feed = {"obs": rng.integers(0, 256, (1, h, w, c), dtype=np.uint8)}
        if agent.vector_dim:
            feed["vector"] = rng.standard_normal((1, agent.vector_dim)).astype(np.float32)
        feeds.append(feed)
    max_diff = max((onnx_parity(path, graph, f) for f in feeds), default=0.0)

    extra = manifest.get("extra", {})
    pre = manifest.get("preprocessing") or {}
    preprocessing = PreprocessConfig.from_dict(pre) if pre else default_preprocessing((h, w, c))
    if preprocessing.shape != (h, w, c):
        raise ValueError(f"checkpoint preprocessing gives observations {preprocessing.shape}, but the model takes {(h, w, c)}")
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = tuple(extra.get("action_names") or (["forward", "turn"] if agent.action_dim == 2 else [f"a{i}" for i in range(agent.action_dim)]))
    model_manifest = ModelManifest(
        model_id=model_id or f"redraw-{manifest['kind']}-{created}",
        model_file=path.name,
        sha256=sha256_file(path),
        preprocessing=preprocessing,
        inputs=tuple(inputs),
        outputs=(TensorSpec("action", (1, agent.action_dim), "float32"),),
        action=ActionSpec(names=names, low=-1.0, high=1.0),
        control_hz=float(extra.get("control_hz", 10.0)),
        created=created,
        provenance={
            "method": "ReDRAW" if manifest["kind"] == "calibrate" else "DRAW (sim policy)",
            "checkpoint": str(directory),
            "checkpoint_weights_sha256": manifest["files"]["weights.safetensors"],
            "code_version": manifest.get("code_version"),
            "presets": manifest.get("presets", []),
            "counters": manifest.get("counters", {}),
            "data": manifest.get("data", {}),
            "policy": "posterior mode -> actor mean",
            "onnx_max_abs_diff_vs_torch": max_diff,
        },
    )
    manifest_path = model_manifest.save(manifest_path_for(path))
    return {"model": str(path), "manifest": str(manifest_path), "sha256": model_manifest.sha256, "max_abs_diff": max_diff,
            "inputs": [t.to_dict() for t in inputs], "checked_inputs": len(feeds)}
