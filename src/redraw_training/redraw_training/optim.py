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
        self.fused = all(p.device.type in ("cuda", "cpu") for p in self.params)
        try:
            self.opt = torch.optim.Adam(self.params, lr=lr, eps=eps, fused=self.fused)
        except (RuntimeError, TypeError):
            self.fused = False
            self.opt = torch.optim.Adam(self.params, lr=lr, eps=eps, foreach=True)
        self._skipped = torch.zeros((), device=self.params[0].device)

    @property
    def skipped(self) -> int:
        """Steps skipped because the gradient norm was not finite."""
        return int(self._skipped)

    def step(self, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
        bad = (~torch.isfinite(norm)).to(torch.float32)
        self._skipped += bad
        if self.fused:
            # fused Adam skips the whole update (moments and step count too) where found_inf is 1, on the device:
            # no host synchronisation per step
            self.opt.found_inf = bad
            self.opt.step()
        elif not bool(bad):
            self.opt.step()
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
        self._skipped.fill_(float(meta.get("skipped", 0)))
