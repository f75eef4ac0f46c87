"""Torch device setup and replay batch -> tensors, shared by the online loops and offline pretraining.

Imports only torch and numpy (no gymnasium, no simulators), so `offline.py` can use it on machines that have
no environment installed.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import Config


class DeviceError(RuntimeError):
    """The configured device is not available here."""


def setup_torch(config: Config) -> torch.device:
    """Apply `config.threads` and return `config.device`, with TF32 matmuls on CUDA."""
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"config device is {config.device!r}, but torch has no CUDA here (torch {torch.__version__})")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def to_torch(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """A replay batch as tensors on `device` (float64 -> float32; the replay's 'index' is dropped)."""
    out = {}
    for key, value in batch.items():
        if key == "index":
            continue
        t = torch.from_numpy(np.ascontiguousarray(value))
        if t.dtype == torch.float64:
            t = t.float()
        out[key] = t.to(device, non_blocking=True)
    return out
