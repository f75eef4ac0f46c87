"""Training curves of a run folder as a PNG, from its scalars.jsonl (what the logger writes next to TensorBoard).

    python -m redraw_training.curves runs/dt_draw                       # -> runs/dt_draw/curves.png
    python -m redraw_training.curves runs/dt_draw --keys wm/image ac/return --out curves.png
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from redraw_common.errors import RedrawInputError

DEFAULT_KEYS = ("model/loss", "wm/image", "wm/reward", "wm/kl", "ac/return", "ac/imag_reward")


class CurvesError(RedrawInputError):
    """The run folder has no usable scalars."""


def read_scalars(run: str | Path) -> list[dict]:
    path = Path(run) / "scalars.jsonl"
    if not path.is_file():
        raise CurvesError(f"no scalars in {run}: expected {path} (written by pretrain / calibrate / finetune)")
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise CurvesError(f"{path}:{i} is not a JSON line (a run killed mid-write leaves at most the last line broken)") from None
    return rows


def plot_curves(run: str | Path, keys: tuple[str, ...] = DEFAULT_KEYS, out: str | Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_scalars(run)
    present = [k for k in keys if any(k in r for r in rows)]
    if not present:
        raise CurvesError(f"none of the keys {list(keys)} appear in {run}/scalars.jsonl")
    cols = min(3, len(present))
    fig, axes = plt.subplots(math.ceil(len(present) / cols), cols, figsize=(4 * cols, 3 * math.ceil(len(present) / cols)), squeeze=False)
    for ax, key in zip(axes.flat, present):
        pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r and r[key] is not None and math.isfinite(r[key])]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
        if key.endswith(("loss", "image", "kl")) and pts and min(p[1] for p in pts) > 0:
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(present):]:
        ax.set_visible(False)
    fig.suptitle(str(run), fontsize=10)
    fig.tight_layout()
    out = Path(out) if out else Path(run) / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="curves", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder holding scalars.jsonl")
    parser.add_argument("--keys", nargs="+", default=list(DEFAULT_KEYS))
    parser.add_argument("--out", default=None, help="PNG path (default: RUN/curves.png)")
    args = parser.parse_args(argv)
    try:
        print(plot_curves(args.run, tuple(args.keys), args.out))
    except CurvesError as exc:
        print(f"curves: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
