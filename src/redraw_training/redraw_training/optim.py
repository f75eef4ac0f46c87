"""Adam with global-norm gradient clipping, one per trained module group (METHOD.md 3.6, 5, 6.3).

A step whose gradient norm is not finite is skipped (and counted), so one bad batch cannot poison the
weights. `state_tensors` / `load_state_tensors` turn the optimiser state into flat named tensors and a
JSON-able dict, so checkpoints can store it in safetensors (no pickle).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


class Optimizer:
    def __init__(self, name: str, params: Iterable[nn.Parameter], lr: float, eps: float, clip: float):
        self.name = name
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError(f"optimizer {name!r} got no trainable parameters")
        self.clip = clip
        fused = all(p.device.type in ("cuda", "cpu") for p in self.params)
        try:
            self.opt = torch.optim.Adam(self.params, lr=lr, eps=eps, fused=fused)
        except (RuntimeError, TypeError):
            self.opt = torch.optim.Adam(self.params, lr=lr, eps=eps, foreach=True)
        self.skipped = 0

    def step(self, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
        if torch.isfinite(norm):
            self.opt.step()
        else:
            self.skipped += 1
        return {f"{self.name}/loss": loss.detach(), f"{self.name}/grad_norm": norm.detach()}

    # ------------------------------------------------------------------------------------------------------
    # checkpoint support

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        state = self.opt.state_dict()
        tensors: dict[str, torch.Tensor] = {}
        for idx, entry in state["state"].items():
            for key, value in entry.items():
                tensors[f"{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        groups = [{k: v for k, v in g.items()} for g in state["param_groups"]]
        return tensors, {"param_groups": groups, "skipped": self.skipped, "num_params": len(self.params)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        if meta.get("num_params") != len(self.params):
            raise ValueError(f"optimizer {self.name!r}: checkpoint has state for {meta.get('num_params')} parameters, "
                             f"this model has {len(self.params)}")
        state: dict[int, dict[str, torch.Tensor]] = {}
        for name, value in tensors.items():
            idx, key = name.split(".", 1)
            state.setdefault(int(idx), {})[key] = value
        for idx, entry in state.items():
            ref = self.params[idx]
            for key in ("exp_avg", "exp_avg_sq"):
                if key in entry and entry[key].shape != ref.shape:
                    raise ValueError(f"optimizer {self.name!r}: state {idx}.{key} has shape {tuple(entry[key].shape)}, "
                                     f"parameter has {tuple(ref.shape)}")
        self.opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        self.skipped = int(meta.get("skipped", 0))
