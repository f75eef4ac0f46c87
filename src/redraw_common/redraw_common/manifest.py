"""The model manifest: JSON that travels with every exported policy model (ONNX).

It records what the policy node must know to run the model exactly as it was trained: the preprocessing
settings, the action spec, the ONNX input and output tensors, the control rate, and the sha256 of the
model file. The policy node refuses a model whose manifest is missing, malformed or does not match.

    {
      "format_version": 1,
      "model_id": "redraw-calibrated-2026-11-21T10:00:00Z",
      "model_file": "policy.onnx",
      "sha256": "<64 hex digits of model_file>",
      "preprocessing": {... PreprocessConfig.to_dict() ...},
      "action": {"names": ["forward", "turn"], "low": -1.0, "high": 1.0},
      "inputs": [{"name": "obs", "shape": [1, 64, 64, 2], "dtype": "uint8"}],
      "outputs": [{"name": "action", "shape": [1, 2], "dtype": "float32"}],
      "control_hz": 10.0,
      "created": "2026-11-21T10:00:00Z",
      "provenance": {... free-form: method, checkpoint, datasets, metrics ...}
    }
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError, PreprocessError
from .files import read_json_object, sha256_file, write_json
from .preprocessing import PreprocessConfig

FORMAT_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
DTYPES = ("uint8", "float32", "float16", "int64")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # fixed shape, batch dimension included
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class ActionSpec:
    names: tuple[str, ...] = ("forward", "turn")
    low: float = -1.0
    high: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "low": self.low, "high": self.high}


@dataclass(frozen=True)
class ModelManifest:
    model_id: str
    model_file: str
    sha256: str
    preprocessing: PreprocessConfig
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    action: ActionSpec = ActionSpec()
    control_hz: float = 10.0
    created: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "model_id": self.model_id,
            "model_file": self.model_file,
            "sha256": self.sha256,
            "preprocessing": self.preprocessing.to_dict(),
            "action": self.action.to_dict(),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "control_hz": self.control_hz,
            "created": self.created,
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        validate_manifest_dict(self.to_dict())
        return write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: Any) -> ModelManifest:
        validate_manifest_dict(d)
        return cls(
            model_id=d["model_id"],
            model_file=d["model_file"],
            sha256=d["sha256"],
            preprocessing=PreprocessConfig.from_dict(d["preprocessing"]),
            inputs=tuple(TensorSpec(t["name"], tuple(t["shape"]), t["dtype"]) for t in d["inputs"]),
            outputs=tuple(TensorSpec(t["name"], tuple(t["shape"]), t["dtype"]) for t in d["outputs"]),
            action=ActionSpec(tuple(d["action"]["names"]), float(d["action"]["low"]), float(d["action"]["high"])),
            control_hz=float(d["control_hz"]),
            created=d.get("created", ""),
            provenance=d.get("provenance", {}),
            format_version=d["format_version"],
        )


def _require(d: dict, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    label = f"{where}{key}"
    if key not in d:
        raise ManifestError(f"manifest field '{label}' is missing")
    value = d[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ManifestError(f"manifest field '{label}' must be {names}, found {type(value).__name__} {value!r}")
    return value


def _tensor_list(d: dict, key: str) -> None:
    tensors = _require(d, key, list)
    if not tensors:
        raise ManifestError(f"manifest field '{key}' must list at least one tensor, found an empty list")
    for i, t in enumerate(tensors):
        where = f"{key}[{i}]."
        if not isinstance(t, dict):
            raise ManifestError(f"manifest field '{key}[{i}]' must be an object, found {type(t).__name__}")
        _require(t, "name", str, where)
        shape = _require(t, "shape", list, where)
        if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
            raise ManifestError(f"manifest field '{where}shape' must be a list of positive ints, found {shape!r}")
        dtype = _require(t, "dtype", str, where)
        if dtype not in DTYPES:
            raise ManifestError(f"manifest field '{where}dtype' must be one of {DTYPES}, found {dtype!r}")


def validate_manifest_dict(d: Any) -> None:
    """Raise ManifestError naming the first bad field; return None if `d` is a valid manifest."""
    if not isinstance(d, dict):
        raise ManifestError(f"manifest must be a JSON object, found {type(d).__name__}")
    version = _require(d, "format_version", int)
    if version != FORMAT_VERSION:
        raise ManifestError(f"manifest field 'format_version' must be {FORMAT_VERSION}, found {version}")
    if not _require(d, "model_id", str).strip():
        raise ManifestError("manifest field 'model_id' must be a non-empty string")
    model_file = _require(d, "model_file", str)
    if not model_file or "/" in model_file or model_file.startswith("."):
        raise ManifestError(f"manifest field 'model_file' must be a plain file name next to the manifest, found {model_file!r}")
    if not _SHA256.match(_require(d, "sha256", str)):
        raise ManifestError(f"manifest field 'sha256' must be 64 lowercase hex digits, found {d['sha256']!r}")
    try:
        PreprocessConfig.from_dict(_require(d, "preprocessing", dict))
    except PreprocessError as exc:
        raise ManifestError(f"manifest field 'preprocessing' is invalid: {exc}") from None
    action = _require(d, "action", dict)
    names = _require(action, "names", list, "action.")
    if not names or not all(isinstance(n, str) for n in names):
        raise ManifestError(f"manifest field 'action.names' must be a non-empty list of strings, found {names!r}")
    low = _require(action, "low", (int, float), "action.")
    high = _require(action, "high", (int, float), "action.")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ManifestError(f"manifest fields 'action.low' < 'action.high' must be finite, found {low}, {high}")
    _tensor_list(d, "inputs")
    _tensor_list(d, "outputs")
    hz = _require(d, "control_hz", (int, float))
    if not (math.isfinite(hz) and 0 < hz <= 100):
        raise ManifestError(f"manifest field 'control_hz' must be in (0, 100], found {hz}")
    if "provenance" in d and not isinstance(d["provenance"], dict):
        raise ManifestError(f"manifest field 'provenance' must be an object, found {type(d['provenance']).__name__}")


def manifest_path_for(model_path: str | Path) -> Path:
    """policy.onnx -> policy.manifest.json (same folder)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + MANIFEST_SUFFIX)


def load_manifest(path: str | Path) -> ModelManifest:
    return ModelManifest.from_dict(read_json_object(path, "model manifest", ManifestError))


def load_verified(model_path: str | Path) -> ModelManifest:
    """Load the manifest next to `model_path` and check that it names this file and matches its sha256."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ManifestError(f"model file not found: {model_path}")
    manifest = load_manifest(manifest_path_for(model_path))
    if manifest.model_file != model_path.name:
        raise ManifestError(f"manifest names model file {manifest.model_file!r}, but the model is {model_path.name!r}")
    actual = sha256_file(model_path)
    if actual != manifest.sha256:
        raise ManifestError(f"sha256 mismatch for {model_path}: manifest says {manifest.sha256}, file has {actual}")
    return manifest
