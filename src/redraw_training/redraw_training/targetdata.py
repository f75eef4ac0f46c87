"""The target data of an offline method (ReDRAW calibration, the finetune baselines): `--data` is a dataset folder of
.npz episodes, or rosbag2 recordings (a recording folder, a bag, or a folder of those).

    folder = target_data_folder("bags/db1_reversed", "runs/db1_redraw", manifest, batch_length=16)

Bags are converted once with the checkpoint's settings - its preprocessing, its vector size (a model with a vector
observes the recorded wheel odometry with each frame, then the last k recorded commands: vector_dim 2 + 2k,
redraw_common.observation) and its control rate - into OUT/dataset/ (cached by input and settings,
`dataset_from_bags`), and the conversion report is printed. Then the data checks (redraw_training.datacheck):
data that fail them are refused (DatasetError naming each failed check) and what this call wrote is removed again,
unless `accept_unclean`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from redraw_common.errors import BagError
from redraw_common.preprocessing import PreprocessConfig

from .bagread import discover
from .datasets import DatasetError


def target_data_folder(data: str | Path, out: str | Path, manifest: dict[str, Any], batch_length: int = 1,
                       accept_unclean: bool = False, log: Callable[[str], None] = print) -> Path:
    """`data` itself if it is not rosbag2 input; else the converted dataset, after the data checks."""
    from .bags import format_report

    if not is_bag_input(data):
        return Path(data)
    from .datacheck import failed_checks

    pre = manifest.get("preprocessing") or {}
    if not pre:
        raise DatasetError(f"{data} holds rosbag2 recordings, but the checkpoint records no preprocessing settings to convert them with")
    control_hz = float(manifest.get("extra", {}).get("control_hz", 10.0))
    from .bags import recorded_control_hz

    recorded = recorded_control_hz(discover(data))
    if recorded != control_hz:
        raise DatasetError(f"{data} was recorded at {recorded:g} Hz, the checkpoint acts at {control_hz:g} Hz: its transitions would "
                           "not be the model's; record at the checkpoint's control rate")
    vector_dim = int(manifest["model"].get("vector_dim", 0))
    vector = (f" and a {vector_dim}-dim vector (odometry + last commands)" if vector_dim > 2 else
              " and odometry vector" if vector_dim else "")
    log(f"converting rosbag2 input {data} with the checkpoint's preprocessing ({pre.get('mode')}, "
        f"{pre.get('height')}x{pre.get('width')}){vector} at {control_hz:g} Hz -> {out}/dataset/")
    out = Path(out)
    made = out if not out.exists() else out / "dataset" if not (out / "dataset").exists() else None

    def remove_what_this_call_made() -> None:    # a conversion cached by an earlier run stays
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)

    try:
        # the report is printed below, also for a cached conversion
        folder, report = dataset_from_bags(data, out / "dataset", PreprocessConfig.from_dict(pre), control_hz, vector_dim=vector_dim,
                                           verbose=False)
    except Exception:
        remove_what_this_call_made()
        raise
    log(format_report(report))
    failed = failed_checks(report, batch_length)
    if failed and not accept_unclean:
        remove_what_this_call_made()
        raise DatasetError(f"{data}: the converted data fail {len(failed)} check(s); nothing was trained:\n  - " + "\n  - ".join(failed)
                           + "\n(record again, on a less loaded machine if frames or ticks were lost, or pass --accept-unclean to "
                             "train on them anyway)")
    if failed:
        log(f"warning: training on data that fail {len(failed)} check(s) (--accept-unclean): " + "; ".join(failed))
    return Path(folder)


def is_bag_input(path: str | Path) -> bool:
    """True if `path` is something convert_bags reads (a recording, a rosbag2 bag, an .mcap/.db3 file, or a
    folder of those), False if it is a dataset folder of episodes (.npz) or anything else."""
    path = Path(path).expanduser()
    if path.is_file():
        return path.suffix in (".mcap", ".db3")
    if not path.is_dir() or any(path.glob("*.npz")):
        return False
    try:
        discover(path)
    except BagError:
        return False
    return True


def dataset_from_bags(bag_paths: str | Path | Sequence[str | Path], cache_root: str | Path, preprocess_config: PreprocessConfig,
                      control_hz: float | None = None, **options: Any) -> tuple[Path, dict[str, Any]]:
    """The dataset of these bags for this preprocessing, converted once and cached under `cache_root` (for CLIs
    such as `calibrate` that accept bag folders directly). The cache key covers the bags' files (paths, sizes,
    modification times), the preprocessing, the control rate and the options. Returns (folder, report)."""
    from .bags import REPORT, convert_bags

    if isinstance(bag_paths, (str, Path)):
        bag_paths = [bag_paths]
    files = []
    for src in [s for p in bag_paths for s in discover(p)]:
        for f in sorted(x for x in src.path.rglob("*") if x.is_file()) if src.path.is_dir() else [src.path]:
            st = f.stat()
            files.append(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    # "decode": conversions cached before the reduced JPEG decode (redraw_common.preprocessing.decode_for) differ from
    # what the policy node now sees by about 1 level: they are converted again
    key = json.dumps({"files": files, "pre": preprocess_config.to_dict(), "hz": control_hz, "options": options, "decode": "reduced"},
                     sort_keys=True, default=str)
    folder = Path(cache_root).expanduser() / f"bags-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if (folder / REPORT).is_file():
        return folder, json.loads((folder / REPORT).read_text())
    report = convert_bags(bag_paths, folder, preprocess_config, control_hz, **options)
    return folder, report
