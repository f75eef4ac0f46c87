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
import os
import shutil
import tempfile
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from redraw_common.errors import RedrawInputError
from redraw_common.manifest import ActionSpec, ModelManifest, TensorSpec, manifest_path_for, sha256_file
from redraw_common.preprocessing import PreprocessConfig

from .checkpoint import load_agent

#: the files of one export, in the order they are put in place (the manifest, which names the model's sha256, last)
EXPORT_FILES = ("policy.onnx", "policy.manifest.json")


class ExportError(RedrawInputError):
    """An export that cannot be made or would replace one without being told to."""


class ParityError(ExportError):
    """The ONNX graph's action differs from torch's by more than the tolerance."""


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
                  seed: int = 0, parity_feeds: list[dict[str, np.ndarray]] | None = None, overwrite: bool = False,
                  tolerance: float | None = None) -> dict[str, Any]:
    """Write out/policy.onnx and out/policy.manifest.json; check ONNX against torch. Returns a summary.

    Everything is written into a hidden sibling folder first and put in place only when the export and its parity
    check (|onnx - torch| <= tolerance, when given) succeeded: a failure leaves `out` as it was. An `out` that
    already holds an export is replaced only with overwrite=True."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; expected a folder for {' and '.join(EXPORT_FILES)}")
    held = [name for name in EXPORT_FILES if (out / name).exists()]
    if held and not overwrite:
        raise ExportError(f"{out} already holds an export ({', '.join(held)}); choose another --out or pass --overwrite to replace it")
    agent, manifest, directory = load_agent(checkpoint, "cpu", optimizers=False)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ExportError(f"--out {out}: a file is in the way of its parent folder {out.parent}") from None
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        result = _export_into(agent, manifest, directory, checkpoint, staging, model_id, verify_samples, seed, parity_feeds)
        if tolerance is not None and result["max_abs_diff"] > tolerance:
            raise ParityError(f"ONNX output differs from torch by {result['max_abs_diff']:.3e} > tolerance {tolerance}; nothing was written to {out}")
        if out.exists():
            for name in EXPORT_FILES:
                os.replace(staging / name, out / name)
        else:
            os.chmod(staging, 0o755)
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {**result, "model": str(out / EXPORT_FILES[0]), "manifest": str(out / EXPORT_FILES[1])}


def _export_into(agent, manifest: dict[str, Any], directory: Path, checkpoint: str | Path, out: Path, model_id: str | None,
                 verify_samples: int, seed: int, parity_feeds: list[dict[str, np.ndarray]] | None) -> dict[str, Any]:
    model = manifest.get("config", {}).get("model", "draw")
    if model != "draw":
        raise ValueError(f"{checkpoint}: export takes DRAW / ReDRAW checkpoints (a policy of the current frame only), "
                         f"found model {model!r}, whose policy is recurrent (it needs the previous state); evaluate it in "
                         "simulation with `evaluate` instead")
    agent.eval()
    graph = PolicyGraph(agent).eval()
    h, w, c = agent.image_shape
    path = out / EXPORT_FILES[0]
    rng = np.random.default_rng(seed)

    def random_feed() -> dict[str, np.ndarray]:
        feed = {"obs": rng.integers(0, 256, (1, h, w, c), dtype=np.uint8)}
        if agent.vector_dim:
            feed["vector"] = rng.standard_normal((1, agent.vector_dim)).astype(np.float32)
        return feed

    example = random_feed()
    inputs = [TensorSpec("obs", (1, h, w, c), "uint8")] + ([TensorSpec("vector", (1, agent.vector_dim), "float32")] if agent.vector_dim else [])
    _export_onnx(graph, tuple(torch.from_numpy(example[k]) for k in example), path, list(example))
    feeds = list(parity_feeds or []) + [random_feed() for _ in range(verify_samples)]
    max_diff = max((onnx_parity(path, graph, f) for f in feeds), default=0.0)

    extra = manifest.get("extra", {})
    pre = manifest.get("preprocessing") or {}
    preprocessing = PreprocessConfig.from_dict(pre) if pre else PreprocessConfig.for_shape((h, w, c))
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
