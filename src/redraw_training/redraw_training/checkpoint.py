"""Checkpoints: safetensors weights + safetensors optimiser/RNG state + a JSON manifest. No pickle.

A checkpoint is a folder:

    checkpoint.json        manifest: format, kind (pretrain | calibrate), config + presets, model spec
                           (image shape, action dim, vector dim), step counters, metrics, data it was trained on
                           (dataset digests), preprocessing settings, code version, optimiser param groups,
                           numpy RNG states, and the sha256 of both tensor files
    weights.safetensors    Agent.state_dict(): wm.*, task.*, residual.*
    state.safetensors      optimiser moments (<optimizer>/<param index>.<key>) and the torch RNG state

It is written to a temporary folder and swapped in with renames, so a crash leaves either the old or the
new checkpoint. Loading checks the manifest, both hashes and every tensor name and shape, and raises
CheckpointError naming what was expected and what was found.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

# the folder and manifest side (torch-free), used here and re-exported for the rest of redraw_training
from redraw_common.checkpointfile import FORMAT, FORMAT_VERSION, MANIFEST, CheckpointError, has_checkpoint, read_manifest, resolve  # noqa: F401
from redraw_common.files import sha256_file, write_json

from .config import ConfigError, config_from_dict

WEIGHTS = "weights.safetensors"
STATE = "state.safetensors"
KINDS = ("pretrain", "calibrate", "finetune")


def code_version() -> str:
    """Package version plus the git commit of the source tree (with '+dirty' when it has local changes)."""
    from . import __version__

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return __version__
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=5)
        return f"{__version__}+g{commit.stdout.strip()}" + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return __version__


#: config sections that define the world model: resuming, calibrating or finetuning may not change them
MODEL_KEYS = ("encoder", "decoder", "rssm", "reward_head", "cont_head")


def model_differences(stored: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """'section.key: checkpoint A, now B' for every MODEL_KEYS setting in which a checkpoint's config and a config differ."""
    diffs = []
    for section in MODEL_KEYS:
        for key in sorted(set(stored.get(section, {})) | set(config.get(section, {}))):
            va, vb = stored.get(section, {}).get(key), config.get(section, {}).get(key)
            if va != vb:
                diffs.append(f"{section}.{key}: checkpoint {va!r}, now {vb!r}")
    return diffs


def save_checkpoint(directory: str | Path, agent, *, kind: str, counters: dict[str, int], metrics: dict[str, Any] | None = None,
                    data: dict[str, Any] | None = None, preprocessing: dict[str, Any] | None = None,
                    rng: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write `agent` (weights, optimisers, RNG) and the manifest to `directory` atomically."""
    if kind not in KINDS:
        raise ValueError(f"checkpoint kind must be one of {KINDS}, found {kind!r}")
    directory = Path(directory)
    tmp = directory.with_name(directory.name + f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

    weights = {k: v.detach().cpu().contiguous() for k, v in agent.state_dict().items()}
    save_file(weights, str(tmp / WEIGHTS))
    state: dict[str, torch.Tensor] = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            state[f"rng/cuda{i}"] = torch.cuda.get_rng_state(i)
    opt_meta = {}
    for name, opt in agent.optimizers().items():
        tensors, meta = opt.state_tensors()
        state.update({f"{name}/{k}": v for k, v in tensors.items()})
        opt_meta[name] = meta
    save_file(state, str(tmp / STATE))

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "code_version": code_version(),
        "presets": list(agent.config.presets),
        "config": agent.config.to_dict(),
        "model": {"image_shape": list(agent.image_shape), "action_dim": agent.action_dim, "vector_dim": agent.vector_dim,
                  "calibrated": agent.calibrated},
        "counters": dict(counters),
        "metrics": metrics or {},
        "data": data or {},
        "preprocessing": preprocessing or {},
        "optimizers": opt_meta,
        "rng": rng or {},
        "extra": extra or {},
        "files": {WEIGHTS: sha256_file(tmp / WEIGHTS), STATE: sha256_file(tmp / STATE)},
    }
    write_json(tmp / MANIFEST, manifest)     # tensors and numpy values as numbers and lists
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())

    old = directory.with_name(directory.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old.exists():
        shutil.rmtree(old)
    return directory


def _load_tensors(directory: Path, manifest: dict[str, Any], name: str) -> dict[str, torch.Tensor]:
    path = directory / name
    if not path.is_file():
        raise CheckpointError(f"checkpoint file missing: {path}")
    want = manifest["files"].get(name)
    have = sha256_file(path)
    if want != have:
        raise CheckpointError(f"checkpoint file {path} is corrupted: sha256 {have} does not match the manifest's {want}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint file {path} is unreadable as safetensors: {exc}") from None


def load_state_into(module: torch.nn.Module, weights: dict[str, torch.Tensor], where: str = "checkpoint") -> None:
    """Strict load with a readable report of missing, unexpected and mis-shaped tensors."""
    own = module.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shapes = [f"{k}: checkpoint {tuple(weights[k].shape)}, model {tuple(own[k].shape)}" for k in sorted(set(own) & set(weights))
              if tuple(own[k].shape) != tuple(weights[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:3])})")
        if missing:
            parts.append(f"{len(missing)} tensors missing from the {where} (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors in the {where} (e.g. {unexpected[:3]})")
        raise CheckpointError(f"{where} does not match the model: " + "; ".join(parts))
    module.load_state_dict(weights, strict=True)


def load_agent(path: str | Path, device: str | torch.device = "cpu", optimizers: bool = True, restore_rng: bool = False,
               overrides: dict[str, Any] | None = None):
    """Rebuild the Agent a checkpoint was saved from and load it. Returns (agent, manifest, directory)."""
    from .agents import build_agent

    directory, manifest = read_manifest(path)
    try:
        config = config_from_dict(manifest["config"], manifest.get("presets", []))
        if overrides:
            config = config.update(overrides)
    except ConfigError as exc:
        raise CheckpointError(f"{directory / MANIFEST}: its config does not fit this code's configs.yaml: {exc}") from None
    model = manifest["model"]
    try:
        agent = build_agent(config, tuple(model["image_shape"]), int(model["action_dim"]), int(model.get("vector_dim", 0)),
                      calibrated=bool(model.get("calibrated", False)))
    except (KeyError, TypeError, ValueError) as exc:  # ConfigError is a ValueError
        raise CheckpointError(f"{directory / MANIFEST}: cannot build the model it describes ({exc})") from None
    weights = _load_tensors(directory, manifest, WEIGHTS)
    load_state_into(agent, weights, f"checkpoint {directory}")
    agent.to(device)
    if optimizers or restore_rng:
        state = _load_tensors(directory, manifest, STATE)
        if optimizers:
            opts = agent.optimizers()
            metas = manifest.get("optimizers", {})
            if set(opts) != set(metas):
                raise CheckpointError(f"checkpoint {directory} has optimizers {sorted(metas)}, the model has {sorted(opts)}")
            for name, opt in opts.items():
                prefix = f"{name}/"
                tensors = {k[len(prefix):]: v.to(device) for k, v in state.items() if k.startswith(prefix)}
                try:
                    opt.load_state_tensors(tensors, metas[name])
                except (ValueError, KeyError, RuntimeError) as exc:
                    raise CheckpointError(f"checkpoint {directory}: optimizer state does not match: {exc}") from None
        if restore_rng:
            torch.set_rng_state(state["rng/torch"])
            if torch.cuda.is_available():
                for i in range(torch.cuda.device_count()):
                    if f"rng/cuda{i}" in state:
                        torch.cuda.set_rng_state(state[f"rng/cuda{i}"], i)
    return agent, manifest, directory
