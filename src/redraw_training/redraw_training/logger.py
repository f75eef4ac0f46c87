"""Run logging: TensorBoard scalars, a JSON-lines copy of every logged scalar, and a tqdm progress bar
showing the key losses. Metrics arrive as dicts of scalar tensors or numbers; `Mean` accumulates them
without synchronising the device until they are written."""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

#: metrics shown on the progress bar, in this order (short names)
BAR_KEYS = {"wm/image": "img", "wm/kl": "kl", "wm/reward": "rew", "actor/loss": "act", "ac/return": "ret",
            "residual/loss": "res", "residual/kl_corrected": "klc", "eval/return": "eval"}


class Mean:
    def __init__(self):
        self.sums: dict[str, Any] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().float()
            self.sums[key] = self.sums[key] + value
            self.counts[key] += 1

    def result(self, reset: bool = True) -> dict[str, float]:
        out = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        if reset:
            self.sums.clear()
            self.counts.clear()
        return out


class Logger:
    def __init__(self, logdir: str | Path, total: int, desc: str, unit: str = "step", initial: int = 0, progress: bool = True):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # e.g. a bare GPU machine: scalars.jsonl still has every number
            print("logger: tensorboard is not installed; writing scalars.jsonl only", file=sys.stderr)
            self.writer = None
        else:
            self.writer = SummaryWriter(str(self.logdir / "tb"))
        self.jsonl = open(self.logdir / "scalars.jsonl", "a")
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, disable=not progress,
                        file=sys.stderr, mininterval=1.0)
        self.last: dict[str, float] = {}

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        clean = {}
        for key, value in metrics.items():
            value = float(value)
            if math.isfinite(value) and self.writer is not None:
                self.writer.add_scalar(key, value, step)
            clean[key] = value
        self.jsonl.write(json.dumps({"step": step, **clean}) + "\n")
        self.jsonl.flush()
        if self.writer is not None:
            self.writer.flush()
        self.last.update(clean)
        shown = {short: f"{self.last[k]:.3g}" for k, short in BAR_KEYS.items() if k in self.last}
        self.bar.set_postfix(shown, refresh=False)

    def advance(self, n: int = 1) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
        self.jsonl.close()
