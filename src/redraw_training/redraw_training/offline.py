"""Offline pretraining: the world model and the task policy from a fixed, pre-collected dataset (no env).

    pretrain_offline(config, "data/dt_explore", "runs/dt_offline", updates=20000)

The dataset is a folder of episodes (redraw_common.episodes) WITH rewards (e.g. written by redraw_sim's
`collect` with a scripted driver). Image shape, action and vector dims come from the episodes; preprocessing,
control rate and env id from the folder's `dataset.json` when present (`env`, `env_settings.preprocess`,
`env_settings.control_hz`, as redraw_sim's collect writes them), else the defaults for the image shape. Every
update samples one batch from the dataset and runs the agent's ordinary `train_step` (world model + task
actor-critic in imagination), so the checkpoint is an ordinary 'pretrain' checkpoint that calibrate, finetune,
evaluate and export accept. Evaluation in an env is optional (`eval_env`); without one nothing here imports
gymnasium, ROS or the simulators (the GPU-machine path: torch, numpy, PyYAML, safetensors, tqdm; TensorBoard and
matplotlib are used when installed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from redraw_common.episodes import episode_paths
from redraw_common.errors import RedrawInputError
from redraw_common.files import DATASET_JSON, read_json_object

from .agents import build_agent
from .checkpoint import CheckpointError, has_checkpoint, load_agent, read_manifest, save_checkpoint
from .config import Config
from .datasets import DatasetError, load_target_dataset
from .runtime import DeviceError, setup_torch, to_torch
from .trainer import Cadence, Evaluation, Trainer

EVAL_SEED = 10_000_000  # evaluation episodes are reset with EVAL_SEED + update, as online pretraining's


class OfflineError(RedrawInputError):
    """The dataset or settings do not allow offline pretraining."""


def dataset_info(path: Path) -> dict[str, Any]:
    """dataset.json of a dataset folder ({} when absent); a broken file is an error."""
    meta = path / DATASET_JSON
    return read_json_object(meta, "dataset metadata", OfflineError) if meta.is_file() else {}


def check_rewards(path: Path) -> None:
    """Every episode file must carry 'reward' (pretraining learns the reward head; calibration data has none)."""
    if not path.is_dir():
        return
    paths = [p for p in path.glob("*.npz") if not p.name.startswith(".")]
    if not paths:
        return
    missing = []
    for p in episode_paths(path):
        with np.load(p, allow_pickle=False) as f:
            if "reward" not in f.files:
                missing.append(p.name)
    if missing:
        raise OfflineError(f"{path}: {len(missing)} episode(s) have no 'reward' (e.g. {missing[:3]}); pretraining learns the reward "
                           "head, so it needs a dataset recorded with rewards (reward-free data is for calibrate/finetune)")


def preprocessing_of(info: dict[str, Any], image_shape: tuple[int, int, int]) -> dict[str, Any]:
    """dataset.json's env_settings.preprocess, else the default for the image shape (PreprocessConfig.for_shape)."""
    pre = (info.get("env_settings") or {}).get("preprocess")
    if isinstance(pre, dict) and pre:
        return dict(pre)
    try:
        from redraw_common.preprocessing import PreprocessConfig
    except ImportError:  # redraw_common.preprocessing needs OpenCV; the export falls back to the same default
        return {}
    return PreprocessConfig.for_shape(image_shape).to_dict()


def default_updates(config: Config) -> int:
    """The updates an online run of config.run.steps env steps would make (run.train_ratio / (B*T) per step)."""
    return max(1, int(config.run.steps * config.run.train_ratio / (config.batch_size * config.batch_length)))


def pretrain_offline(config: Config, dataset: str | Path, out: str | Path, updates: int | None = None, progress: bool = True,
                     resume: bool = True, eval_env: str | None = None, eval_perturb: str = "", eval_kwargs: dict[str, Any] | None = None,
                     init_from: str | Path | None = None) -> dict[str, Any]:
    """Pretrain config's agent (DRAW or Dreamer, explore task) on a fixed dataset; returns the summary.

    init_from: a pretrained run or checkpoint to start from (weights, optimiser state and update count) when `out`
    holds no checkpoint yet: continuing a run on a new or extended dataset. Its shapes must fit the dataset."""
    if config.explore == "plan2explore":
        raise OfflineError("offline pretraining learns from a fixed dataset; Plan2Explore needs to collect its own data "
                           "(use --explore task or scripted data collected beforehand)")
    try:
        device = setup_torch(config)
    except DeviceError as exc:
        raise OfflineError(str(exc)) from None
    dataset, out = Path(dataset), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    updates = int(updates) if updates is not None else default_updates(config)
    check_rewards(dataset)
    info = dataset_info(dataset)
    try:
        data = load_target_dataset(dataset, holdout=0.0, seed=config.seed)
    except DatasetError as exc:
        raise OfflineError(str(exc)) from None
    replay = data.train
    arrays = replay.arrays
    image_shape = tuple(int(s) for s in arrays["image"].shape[1:])
    action_dim = int(arrays["action"].shape[1])
    vector_dim = int(arrays["vector"].shape[1]) if "vector" in arrays else 0
    if len(image_shape) != 3:
        raise OfflineError(f"{dataset}: images must be (H, W, C), found {image_shape}")
    batch_size, length = config.batch_size, config.batch_length
    if len(replay) < length:
        raise OfflineError(f"{dataset}: {len(replay)} steps, fewer than one training sequence of {length}")
    preprocessing = preprocessing_of(info, image_shape)
    settings = info.get("env_settings") or {}
    # env settings a policy needs at deployment beyond the env's defaults (the vector observation's layout)
    env_kwargs = {"action_history": int(settings["action_history"])} if settings.get("action_history") else {}
    env_info = {"id": info.get("env") or "", "perturb": settings.get("perturb", ""), "kwargs": env_kwargs}
    control_hz = float(settings.get("control_hz") or 10.0)

    ckpt_dir = out / "checkpoint"
    counters = {"updates": 0, "env_steps": 0, "episodes": 0}
    lineage: dict[str, Any] | None = None   # data["init_from"] of the checkpoint: the run this one continues
    if resume and has_checkpoint(out):
        _, manifest = read_manifest(out)
        if manifest["kind"] != "pretrain" or manifest.get("data", {}).get("dataset", {}).get("sha256") != data.digest:
            raise CheckpointError(f"{out} holds a checkpoint that was not pretrained on {dataset}; use another --out folder")
        agent, manifest, _ = load_agent(out, device, optimizers=True, restore_rng=True,
                                        overrides={"device": config.device, "threads": config.threads, "run": config.run.to_dict()})
        counters.update(manifest["counters"])
        if "replay" in manifest.get("rng", {}):
            replay.set_rng_state(manifest["rng"]["replay"])
        lineage = manifest.get("data", {}).get("init_from")
    elif init_from is not None:
        _, manifest = read_manifest(init_from)
        if manifest["kind"] != "pretrain":
            raise OfflineError(f"--init-from {init_from}: a {manifest['kind']!r} checkpoint; expected a pretrained one")
        want = {"image_shape": list(image_shape), "action_dim": action_dim, "vector_dim": vector_dim}
        have = {k: manifest["model"].get(k, 0 if k == "vector_dim" else None) for k in want}
        widen = 0 < have["vector_dim"] < vector_dim and {**have, "vector_dim": vector_dim} == want
        if have != want and not widen:
            raise OfflineError(f"--init-from {init_from}: the model has {have}, the dataset {dataset} needs {want}")
        # this run's config (the source's, then --preset / --set on top) builds the model; the source gives the weights
        overrides = config.to_dict()
        if widen:   # the source is built as it was trained; the wide model below takes this run's config
            overrides["history_to_policy"] = bool(manifest.get("config", {}).get("history_to_policy", False))
        agent, manifest, _ = load_agent(init_from, device, optimizers=True, overrides=overrides)
        lineage = {"checkpoint": str(init_from), "updates": manifest["counters"]["updates"],
                   "dataset": manifest.get("data", {}).get("dataset", {})}
        if widen:
            lineage["widened_vector"] = [have["vector_dim"], vector_dim]
            # the dataset's vector observation extends the model's (e.g. velocity + past actions): the new inputs
            # start with zero weights, so the widened model encodes every old observation exactly as before
            with torch.device(device):
                wide = build_agent(agent.config.update({"history_to_policy": config.history_to_policy}), image_shape, action_dim, vector_dim)
            widen_vector_input(agent, wide)
            agent = wide
        counters.update(manifest["counters"])
        torch.manual_seed(config.seed + counters["updates"])
    else:
        torch.manual_seed(config.seed)
        with torch.device(device):
            agent = build_agent(config, image_shape, action_dim, vector_dim)
    if config.compile:
        agent.compile()
    env = None
    if eval_env:
        from .envs import make_env

        env = make_env(eval_env, eval_perturb, **(eval_kwargs or {}))
    run = config.run
    trainer = Trainer(out, kind="pretrain", total=updates, counters=counters, counter="updates", desc="pretrain (offline)",
                      cadence=Cadence(run.log_every, run.eval_every, run.save_every), agent=agent, device=device,
                      evaluation=Evaluation(env, run.eval_eps, EVAL_SEED), progress=progress)
    data_info = {"dataset": data.describe(), "dataset_json": {k: v for k, v in info.items() if k not in ("episode_lengths", "episode_ends")}}
    if lineage is not None:
        data_info["init_from"] = lineage

    def step() -> dict[str, Any]:
        return agent.train_step(to_torch(replay.sample(batch_size, length), device))

    def save(final: bool) -> None:
        save_checkpoint(ckpt_dir, agent, kind="pretrain", counters=counters, metrics=trainer.checkpoint_metrics(),
                        data=data_info, preprocessing=preprocessing, rng={"replay": replay.rng_state()},
                        extra={"env": env_info, "action_names": ["forward", "turn"] if action_dim == 2 else [f"a{i}" for i in range(action_dim)],
                               "control_hz": control_hz, "offline": True, "final": final})

    trainer.run(step, save=save)
    return trainer.finish(offline=True, dataset=data.describe(),
                          model={"image_shape": list(image_shape), "action_dim": action_dim, "vector_dim": vector_dim})


# the only tensors whose size depends on the vector's: the world model's vector encoder and decoder, and (with
# history_to_policy) the first layers of the actor and critics, which read the past actions next to z
VECTOR_LAYERS = ("wm.encoder.mlp.", "wm.decoder.vector.", "task.actor.mlp.hidden.0.", "task.critic.mlp.hidden.0.",
                 "task.slow_critic.mlp.hidden.0.")


def widen_vector_input(old, new) -> None:
    """Copy agent `old` into `new`, whose vector observation is wider (the old entries first, new ones appended).

    Every tensor of the same shape is copied. A tensor that grew along one axis gets the old values in its leading
    slice: an input weight (axis 1, the vector encoder's first layer) gets zeros in its new columns, so it encodes
    the old entries exactly as before and ignores the new ones until trained; an output (axis 0, the vector
    decoder's last layer) keeps its fresh initialisation in the new rows. Optimiser moments are padded with zeros,
    as for parameters never updated; step counts carry over."""
    old_state, new_state = old.state_dict(), new.state_dict()
    if set(old_state) != set(new_state):
        raise OfflineError(f"cannot widen: the models differ in tensors {sorted(set(old_state) ^ set(new_state))[:6]}")
    grown: dict[str, int] = {}   # tensor name -> the axis it grew along
    with torch.no_grad():
        for name, target in new_state.items():
            source = old_state[name]
            if source.shape == target.shape:
                target.copy_(source)
                continue
            axes = [i for i, (a, b) in enumerate(zip(source.shape, target.shape)) if a != b]
            if (not name.startswith(VECTOR_LAYERS) or source.dim() != target.dim() or len(axes) != 1
                    or source.shape[axes[0]] > target.shape[axes[0]]):
                raise OfflineError(f"cannot widen {name}: shape {tuple(source.shape)} -> {tuple(target.shape)}")
            axis = axes[0]
            if axis == 1:
                target.zero_()
            target.narrow(axis, 0, source.shape[axis]).copy_(source)
            grown[name] = axis
    new_names = {id(p): n for n, p in new.named_parameters()}
    old_opts, new_opts = old.optimizers(), new.optimizers()
    for key, opt in new_opts.items():
        tensors, meta = old_opts[key].state_tensors()
        for tname, value in list(tensors.items()):
            idx, field = tname.split(".", 1)
            param = opt.params[int(idx)]
            if field in ("exp_avg", "exp_avg_sq") and value.shape != param.shape:
                padded = torch.zeros(param.shape, dtype=value.dtype)
                axis = grown[new_names[id(param)]]
                padded.narrow(axis, 0, value.shape[axis]).copy_(value)
                tensors[tname] = padded.to(param.device)
        opt.load_state_tensors(tensors, meta)
