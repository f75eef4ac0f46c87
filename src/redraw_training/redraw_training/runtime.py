"""Torch device setup and replay batch -> tensors, shared by every training run.

Imports only torch and numpy (no gymnasium, no simulators), so `offline.py` can use it on machines that have
no environment installed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from redraw_common.errors import RedrawInputError

from .config import Config


class DeviceError(RedrawInputError):
    """The configured device is not available here."""


def _idle_ticks(cpus: set[int]) -> tuple[int, int]:
    """(idle + iowait, total) jiffies of the given CPUs since boot, from /proc/stat."""
    idle = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(f) for f in fields[:8]]     # user nice system idle iowait irq softirq steal
            idle, total = idle + ticks[3] + ticks[4], total + sum(ticks)
    return idle, total


def usable_cpus() -> set[int]:
    """The CPUs this process may run on."""
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


def free_cores(sample_s: float = 0.5) -> float:
    """How many of this process's usable cores were idle over the next `sample_s` seconds (a busy loop on one
    of two cores gives ~1.0). Without /proc/stat (not Linux), all usable cores count as free."""
    cpus = usable_cpus()
    try:
        idle0, total0 = _idle_ticks(cpus)
        time.sleep(sample_s)
        idle1, total1 = _idle_ticks(cpus)
    except (OSError, ValueError):
        return float(len(cpus))
    if total1 <= total0:
        return float(len(cpus))
    return len(cpus) * (idle1 - idle0) / (total1 - total0)


def auto_threads(sample_s: float = 0.5) -> tuple[int, float]:
    """(threads, free cores): one torch thread per core that is at least 3/4 free, and at least one. More
    threads than free cores make torch's threads wait for each other at every op (bench/bench_calibrate.py)."""
    free = free_cores(sample_s)
    return max(1, int(free + 0.25)), free


def setup_torch(config: Config) -> torch.device:
    """Apply `config.threads` (0: one per free core, `auto_threads`) and return `config.device`, with TF32
    matmuls on CUDA. Prints the thread count and why."""
    if config.threads:
        torch.set_num_threads(int(config.threads))
        print(f"torch threads: {config.threads} (config threads)", flush=True)
    else:
        threads, free = auto_threads()
        torch.set_num_threads(threads)
        print(f"torch threads: {threads} ({free:.1f} of {len(usable_cpus())} cores free; set threads or --threads to choose)",
              flush=True)
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
