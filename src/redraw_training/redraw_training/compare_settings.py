"""The vocabulary of `compare` (redraw_training.compare): the methods, the settings of a comparison and their checks,
the condition labels and the lane columns of the paper's Duckiebot table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from redraw_common.errors import RedrawInputError

METHODS = ("dreamer_zeroshot", "dreamer_finetune", "draw_zeroshot", "draw_finetune", "redraw")
MODEL_OF = {"dreamer_zeroshot": "dreamer", "dreamer_finetune": "dreamer", "draw_zeroshot": "draw", "draw_finetune": "draw", "redraw": "draw"}
LABELS = {"dreamer_zeroshot": "Dreamer zero-shot", "dreamer_finetune": "Dreamer finetune", "draw_zeroshot": "DRAW zero-shot",
          "draw_finetune": "DRAW finetune", "redraw": "ReDRAW"}
TARGET_DRIVERS = ("auto", "random", "scripted", "policy")
#: the paper's Duckiebot columns (METHOD.md 9) and laps per episode: key of evaluation.lane_metrics -> header
LANE_COLUMNS = {"dense_reward": "dense reward / step ↑", "lap_time_s": "lap time s ↓", "centre_offset_cm": "centre offset cm ↓",
                "laps": "laps / episode ↑"}


class CompareError(RedrawInputError):
    """Bad comparison settings."""


@dataclass
class CompareSettings:
    env: str
    target_perturbs: list[str]
    out: Path
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    presets: list[str] = field(default_factory=lambda: ["tiny"])
    overrides: list[str] = field(default_factory=list)
    explore: str = "plan2explore"
    source_perturb: str = ""
    env_kwargs: dict[str, Any] = field(default_factory=dict)   # target data collection (and every model without its own)
    model_env_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)   # per model ("draw", "dreamer"): its env's
    pretrain_steps: int | None = None          # default: config run.steps
    updates: int | None = None                 # offline updates of calibration / finetuning (default: calibrate.updates)
    sizes: list[int] = field(default_factory=lambda: [2000])   # target dataset sizes, transitions
    target_driver: str = "auto"
    target_noise: float = 0.3                  # the `policy` driver: std of the Gaussian noise on its actions
    eval_episodes: int = 10
    threads: int = 1                           # torch threads (and Ray CPUs) per cell
    jobs: int | None = None                    # CPUs of the local Ray instance (default: the machine's cores)
    ray_address: str | None = None             # join this Ray cluster ("auto" or HOST:PORT) instead of a local instance
    draw_checkpoint: str | None = None         # a pretrained DRAW checkpoint used for every seed instead of pretraining
    dreamer_checkpoint: str | None = None      # the same for the Dreamer baselines
    record: Path | None = None                 # a folder of the sweep's records (cluster.write_record): restored, then kept up

    def kwargs_for(self, model: str) -> dict[str, Any]:
        """The env kwargs a model acts in (its checkpoint's, e.g. DRAW's action history; else the common ones)."""
        return dict(self.model_env_kwargs.get(model, self.env_kwargs))

    def check(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise CompareError(f"unknown methods {unknown or self.methods}; expected a comma-separated subset of {list(METHODS)}")
        if not self.target_perturbs:
            raise CompareError("give at least one target condition (--target-perturb, e.g. reversed)")
        if len(set(self.target_perturbs)) != len(self.target_perturbs):
            raise CompareError(f"target conditions must be distinct, found {self.target_perturbs}")
        if not self.seeds:
            raise CompareError("give at least one seed")
        if any(int(s) < 1 for s in self.sizes) or not self.sizes:
            raise CompareError(f"dataset sizes must be positive transition counts, found {self.sizes}")
        if self.target_driver not in TARGET_DRIVERS:
            raise CompareError(f"target driver must be one of {TARGET_DRIVERS}, found {self.target_driver!r}")
        if self.target_driver == "policy":
            if not self.target_noise >= 0.0:
                raise CompareError(f"target noise is the std of Gaussian action noise, >= 0; found {self.target_noise}")
            model = self.driver_model()
            if self.kwargs_for(model) != dict(self.env_kwargs):
                raise CompareError(f"the policy target driver is the {model} source policy, which acts in env kwargs "
                                   f"{self.kwargs_for(model)}; the target data is collected with {dict(self.env_kwargs)}")
        if self.explore not in ("task", "plan2explore", "scripted"):
            raise CompareError(f"explore must be task, plan2explore or scripted, found {self.explore!r}")
        if self.jobs is not None and self.jobs < 1:
            raise CompareError(f"jobs must be >= 1 (CPUs of the local Ray instance), found {self.jobs}")
        if self.threads < 1:
            raise CompareError(f"threads must be >= 1, found {self.threads}")
        if self.eval_episodes < 1:
            raise CompareError(f"eval_episodes must be >= 1, found {self.eval_episodes}")
        if self.record is not None:
            out, record = Path(self.out).resolve(), Path(self.record).resolve()
            if out == record or out in record.parents or record in out.parents:
                raise CompareError(f"the records folder {self.record} and the output folder {self.out} must be apart (neither "
                                   f"inside the other): a record leaves out the large files of its cell")
        for model in ("draw", "dreamer"):
            if self.checkpoint_of(model) is not None:
                pretrained_manifest(self.checkpoint_of(model), model)

    def driver_model(self) -> str:
        """The model whose source task policy the `policy` target driver runs: DRAW's when a DRAW method is compared."""
        return "draw" if any(MODEL_OF[m] == "draw" for m in self.methods) else "dreamer"

    def checkpoint_of(self, model: str) -> str | None:
        return self.draw_checkpoint if model == "draw" else self.dreamer_checkpoint

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["record"] = None if self.record is None else str(self.record)
        return d


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in (text or "nominal"))


def pretrained_manifest(path: str | Path, model: str) -> dict[str, Any]:
    """The manifest of a given pretrained checkpoint, checked to be a 'pretrain' checkpoint of `model`."""
    from .checkpoint import CheckpointError, read_manifest

    try:
        _, manifest = read_manifest(path)
    except (CheckpointError, OSError, ValueError) as exc:
        raise CompareError(f"--{model}-checkpoint {path}: not a readable checkpoint ({exc})") from None
    found = manifest.get("config", {}).get("model", "draw")
    if found != model:
        raise CompareError(f"--{model}-checkpoint {path}: expected a {model} model, found a {found} model")
    if manifest.get("kind") != "pretrain":
        raise CompareError(f"--{model}-checkpoint {path}: expected a pretrained ('pretrain') checkpoint, found kind {manifest.get('kind')!r}")
    return manifest


def checkpoint_env(path: str | Path) -> tuple[str, dict[str, Any]]:
    """The env id and kwargs a checkpoint was pretrained in (its manifest's extra.env, else config env)."""
    from .checkpoint import read_manifest

    _, manifest = read_manifest(path)
    env = manifest.get("extra", {}).get("env") or manifest["config"]["env"]
    if not env.get("id"):
        raise CompareError(f"{path} does not record the env it was pretrained in (its dataset had no dataset.json); give --env")
    return str(env["id"]), dict(env.get("kwargs") or {})


def condition_label(perturb: str) -> str:
    return perturb or "nominal"
