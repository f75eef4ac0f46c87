"""Open-loop prediction report: the model filters the first `context` frames of a few sequences, then
predicts the rest from the actions alone (imagination), and the image shows truth | model | error rows per
sequence (for a calibrated agent also the uncorrected sim model), with the per-step squared error in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


def to_rgb(images: np.ndarray) -> np.ndarray:
    """(..., H, W, C) floats in [0, 1] -> (..., H, W, 3): 2-channel lane masks as yellow/white, 1 channel as grey."""
    c = images.shape[-1]
    if c == 3:
        return images
    if c == 1:
        return np.repeat(images, 3, -1)
    if c == 2:
        y, w = images[..., 0], images[..., 1]
        return np.stack([np.maximum(y, w), np.maximum(y, w), w], -1)
    return np.repeat(images[..., :1], 3, -1)


@torch.no_grad()
def openloop(agent, batch: dict[str, torch.Tensor], context: int, residual: bool) -> np.ndarray:
    """Predicted frames (B, T, H, W, C) in [0, 1]: posterior reconstructions for t < context, then prior rollouts."""
    wm = agent.wm
    res = agent.residual if residual else None
    ctx = {k: v[:, :context] for k, v in batch.items() if isinstance(v, torch.Tensor)}
    states = wm.draw.observe(wm.embed(ctx), ctx["action"], ctx["is_first"], residual=res)
    frames = [wm.decoder(states["z"])["image"]]
    sigma, z = states["sigma"][:, -1], states["z"][:, -1]
    for t in range(context, batch["image"].shape[1]):
        sigma, z = wm.draw.img_step(sigma, z, batch["action"][:, t - 1], res)
        frames.append(wm.decoder(z)["image"][:, None])
    return torch.cat(frames, 1).clamp(0, 1).float().cpu().numpy()


def write_report(agent, batch: dict[str, torch.Tensor], path: str | Path, context: int = 5, title: str = "") -> dict:
    """Save the PNG at `path` and the per-step MSE next to it (same name, .json). Returns the numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    truth = batch["image"].float().cpu().numpy() / 255.0
    rows = [("model", openloop(agent, batch, context, residual=agent.calibrated))]
    if agent.calibrated:
        rows = [("ReDRAW", rows[0][1]), ("sim model", openloop(agent, batch, context, residual=False))]
    count, length = truth.shape[:2]
    lines, labels = [], []
    numbers = {"context": context, "length": length}
    for b in range(count):
        lines.append(to_rgb(truth[b]))
        labels.append(f"seq {b} truth")
        for name, pred in rows:
            err = np.abs(pred[b] - truth[b])
            lines += [to_rgb(pred[b]), to_rgb(err)]
            labels += [name, f"{name} error"]
    for name, pred in rows:
        numbers[f"{name}_mse_per_step"] = ((pred - truth) ** 2).mean((0, 2, 3, 4)).tolist()
        numbers[f"{name}_openloop_mse"] = float(((pred[:, context:] - truth[:, context:]) ** 2).mean())
    h, w = truth.shape[2:4]
    grid = np.ones((len(lines) * (h + 2), length * (w + 2), 3), np.float32)
    for r, line in enumerate(lines):
        for t in range(length):
            grid[r * (h + 2) + 1: r * (h + 2) + 1 + h, t * (w + 2) + 1: t * (w + 2) + 1 + w] = line[t]
    fig_w = max(4.0, length * (w + 2) / 40)
    fig_h = max(2.0, len(lines) * (h + 2) / 40)
    fig, ax = plt.subplots(figsize=(fig_w + 1.5, fig_h + 0.6), dpi=100)
    ax.imshow(np.clip(grid, 0, 1), interpolation="nearest")
    ax.set_yticks([r * (h + 2) + h / 2 for r in range(len(lines))], labels, fontsize=7)
    ax.set_xticks([t * (w + 2) + w / 2 for t in range(length)], [str(t) for t in range(length)], fontsize=6)
    ax.axvline(context * (w + 2) - 0.5, color="red", lw=1)
    ax.set_title(title or f"open-loop predictions: {context} context frames (left of the red line), then actions only", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    path.with_suffix(".json").write_text(json.dumps(numbers, indent=2) + "\n")
    return numbers
