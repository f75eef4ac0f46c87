"""convert-bags: redraw recordings / rosbag2 bags -> a dataset of episodes (redraw_training.bags).

    convert-bags BAG [BAG ...] --out DIR [--preprocess FILE] [--control-hz 10] [--vector-dim 6]

--preprocess takes a model's checkpoint.json or ONNX manifest (whose vector size then applies too), or a JSON/YAML
file of preprocessing settings.
"""


from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from redraw_common.cli import entry_point, number
from redraw_common.errors import BagError, KinematicsError, PreprocessError
from redraw_common.kinematics import KinematicsConfig
from redraw_common.preprocessing import PreprocessConfig

from ..bagread import ODOMETRY_NAMES
from ..bags import convert_bags


def _read_settings(path: Path) -> Any:
    if not path.is_file():
        raise BagError(f"settings file not found: {path}")
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BagError(f"{path}: neither JSON nor YAML ({exc})") from None


def load_vector_dim(path: str | Path) -> int | None:
    """The vector size a model expects, from its checkpoint manifest (checkpoint.json: model.vector_dim) or its ONNX
    manifest (the 'vector' input's shape [1, D]; 0 without one); None for a file of preprocessing settings only."""
    path = Path(path)
    d = _read_settings(path)
    if not isinstance(d, dict):
        return None
    if isinstance(d.get("model"), dict) and "vector_dim" in d["model"]:
        return int(d["model"]["vector_dim"])
    if isinstance(d.get("inputs"), list):
        vec = [t for t in d["inputs"] if isinstance(t, dict) and t.get("name") == "vector"]
        if not vec:
            return 0
        shape = vec[0].get("shape")
        if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int)):
            raise BagError(f"{path}: the 'vector' input's shape must be [1, D], found {shape!r}")
        return shape[1]
    return None


def load_preprocess_config(path: str | Path) -> PreprocessConfig:
    """Preprocessing settings from a model manifest (its 'preprocessing'), or a JSON/YAML file of them."""
    path = Path(path)
    d = _read_settings(path)
    if isinstance(d, dict) and isinstance(d.get("preprocessing"), dict):
        d = d["preprocessing"]
    try:
        return PreprocessConfig.from_dict(d)
    except PreprocessError as exc:
        raise BagError(f"{path}: invalid preprocessing settings: {exc}") from None


def load_kinematics_config(path: str | Path) -> KinematicsConfig:
    """A robot's kinematics from a JSON/YAML mapping of KinematicsConfig's fields (gain, trim, baseline, radius, k, ...)."""
    path = Path(path)
    d = _read_settings(path)
    if not isinstance(d, dict):
        raise BagError(f"{path}: expected a mapping of kinematics settings (gain: 1.0, trim: 0.0, ...), found {type(d).__name__}")
    try:
        return KinematicsConfig.from_dict(d)
    except KinematicsError as exc:
        raise BagError(f"{path}: invalid kinematics: {exc}") from None


@entry_point("convert-bags")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convert-bags", description="Convert redraw recordings / rosbag2 bags into a dataset of episodes.")
    parser.add_argument("bags", nargs="+", help="recording folders, bag folders, .mcap files, or folders of them")
    parser.add_argument("--out", required=True, help="dataset folder to create (must not exist)")
    parser.add_argument("--preprocess", help="model manifest or JSON/YAML preprocessing settings (default: those stored with the bags)")
    parser.add_argument("--control-hz", type=number(low=0, high=100, low_open=True), default=None,
                        help="rate of the control ticks (default: the rate the recordings were made at, else 10)")
    parser.add_argument("--mixed-robots", action="store_true", help="convert recordings of several robots into one dataset")
    parser.add_argument("--kinematics", default=None,
                        help="YAML/JSON mapping of the robot's kinematics (gain, trim, baseline, radius, k, limit), to turn wheel "
                             "commands into actions (default: those stored with the bags)")
    parser.add_argument("--action-source", choices=("auto", "action", "wheels"), default="auto")
    parser.add_argument("--max-gap", type=number(low=0, low_open=True), default=0.5, help="seconds without commands that end an episode")
    parser.add_argument("--max-frame-age", type=number(low=0, low_open=True), default=None, help="oldest usable frame at a tick, s (default: 1/control_hz)")
    parser.add_argument("--min-episode-length", type=number(int, low=2), default=8)
    parser.add_argument("--max-bad-fraction", type=number(low=0, high=1), default=0.05)
    parser.add_argument("--vector-dim", type=number(int, low=0), default=None,
                        help="the model's vector observation size: 0 = none, or 2 + 2k = wheel odometry (forward m/s, yaw rate "
                             "rad/s) then the last k actions (forward, turn), newest first (2, 4, 6, ...); "
                             "default: from the model manifest given to --preprocess, else 0")
    parser.add_argument("--odometry-topic", default=None, help="odometry topic (default: the recording's, else the one named as a robot profile names it: "
                        + ", ".join(f"<robot>/{suffix}" for suffix in ODOMETRY_NAMES) + ")")
    parser.add_argument("--max-odometry-age", type=number(low=0, low_open=True), default=None, help="oldest usable odometry before a frame, s (default: 2/control_hz)")
    args = parser.parse_args(argv)
    cfg = load_preprocess_config(args.preprocess) if args.preprocess else None
    kinematics = load_kinematics_config(args.kinematics) if args.kinematics else None
    vector_dim = args.vector_dim if args.vector_dim is not None else ((load_vector_dim(args.preprocess) or 0) if args.preprocess else 0)
    convert_bags(args.bags, args.out, cfg, args.control_hz, action_source=args.action_source, max_gap=args.max_gap, kinematics=kinematics,
                 max_frame_age=args.max_frame_age, min_episode_length=args.min_episode_length,
                 max_bad_fraction=args.max_bad_fraction, vector_dim=vector_dim, odometry_topic=args.odometry_topic,
                 max_odometry_age=args.max_odometry_age, mixed_robots=args.mixed_robots, progress=sys.stderr.isatty())
    return 0


if __name__ == "__main__":
    sys.exit(main())
