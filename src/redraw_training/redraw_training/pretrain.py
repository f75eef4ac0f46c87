"""Online pretraining in simulation: DRAW (or Dreamer) and the task actor-critic from the data they collect.

    pretrain(config, "runs/dt_draw")      # env -> replay (on disk) -> updates at config.run.train_ratio

Each env step (the Trainer's counter) asks the collector (config.explore: the task policy, Plan2Explore or a scripted
driver; uniform random during run.prefill) for an action; finished episodes go to the replay; once it holds a
sequence, run.train_ratio / (batch_size * batch_length) updates are due per step. A run folder that holds a
checkpoint of the same model resumes (counters, optimisers, RNGs, replay); report.png shows open-loop predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .agents import build_agent
from .checkpoint import CheckpointError, has_checkpoint, load_agent, model_differences, read_manifest, save_checkpoint
from .collectors import Collector
from .config import Config
from .draw_agent import Agent
from .envs import env_spec, make_env, preprocess_config_of
from .replay import Replay
from .report import write_report
from .rollout import EnvStepper
from .runtime import setup_torch, to_torch
from .trainer import Cadence, Evaluation, Trainer

EVAL_SEED = 10_000_000  # evaluation episodes are reset with EVAL_SEED + env step: never a training episode's seed


def pretrain(config: Config, out: str | Path, progress: bool = True, resume: bool = True) -> dict[str, Any]:
    """Online pretraining of DRAW + the task actor-critic in config.env (a gymnasium id); returns the summary."""
    device = setup_torch(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = make_env(config.env.id, config.env.perturb, **dict(config.env.kwargs))
    spec = env_spec(env)
    preprocessing = preprocess_config_of(env).to_dict()
    run = config.run
    counters = {"env_steps": 0, "updates": 0, "episodes": 0}
    due = {"updates": 0.0}
    resumed = False
    replay = Replay(run.replay_capacity, out / "replay", seed=config.seed)
    if resume and has_checkpoint(out):
        _, manifest = read_manifest(out)
        diffs = model_differences(manifest["config"], config.to_dict())
        if diffs or manifest["kind"] != "pretrain":
            raise CheckpointError(f"{out} holds a {manifest['kind']} checkpoint of a different model ({'; '.join(diffs[:4])}); "
                                  "use another --out folder or the same settings to resume")
        with torch.device(device):
            agent, manifest, _ = load_agent(out, device, optimizers=True, restore_rng=True, overrides=runtime_overrides(config))
        counters.update(manifest["counters"])
        due["updates"] = float(manifest.get("extra", {}).get("updates_due", 0.0))
        replay.load_directory()
        if "replay" in manifest.get("rng", {}):
            replay.set_rng_state(manifest["rng"]["replay"])
        resumed = True
    else:
        torch.manual_seed(config.seed)
        with torch.device(device):
            agent = build_agent(config, spec["image_shape"], spec["action_dim"], spec["vector_dim"])
        if any((out / "replay").glob("*.npz")):
            replay.load_directory()  # episodes of a run that crashed before its first checkpoint
    if config.compile:
        agent.compile()
    batch_size, length = config.batch_size, config.batch_length
    ratio = run.train_ratio / (batch_size * length)
    stepper = EnvStepper(env, spec["action_dim"], seed=config.seed * 100003 + counters["episodes"])
    collector = Collector(config.explore, agent, env, device, np.random.default_rng(config.seed + counters["env_steps"]),
                          seed=config.seed * 100003 + counters["episodes"])
    eval_env = make_env(config.env.id, config.env.perturb, **dict(config.env.kwargs))
    trainer = Trainer(out, kind="pretrain", total=run.steps, counters=counters, counter="env_steps", unit="env step",
                      cadence=Cadence(run.log_every, run.eval_every, run.save_every), agent=agent, device=device,
                      evaluation=Evaluation(eval_env, run.eval_eps, EVAL_SEED), progress=progress)
    reports = hasattr(agent.wm, "draw")

    def step() -> list[dict[str, Any]]:
        metrics = []
        action = collector.act(stepper.obs, prefill=counters["env_steps"] < run.prefill and not resumed)
        done = stepper.step(action)
        if done is not None:
            collector.episode_end()
            ep, _ = done
            replay.add_episode(ep)
            counters["episodes"] += 1
            metrics.append({"train/episode_return": float(ep["reward"].sum()), "train/episode_length": len(ep["reward"])})
        if counters["env_steps"] + 1 >= run.prefill and len(replay) >= length:
            due["updates"] += ratio
            while due["updates"] >= 1.0:
                metrics.append(agent.train_step(to_torch(replay.sample(batch_size, length), device)))
                counters["updates"] += 1
                due["updates"] -= 1.0
        return metrics

    def save(final: bool) -> None:
        save_checkpoint(out / "checkpoint", agent, kind="pretrain", counters=counters, metrics=trainer.checkpoint_metrics(),
                        data={"replay": {"folder": str(out / "replay"), "episodes": replay.episodes, "steps": replay.steps_added,
                                         "sha256": replay.digest()}},
                        preprocessing=preprocessing, rng={"replay": replay.rng_state()},
                        extra={"updates_due": due["updates"], "env": {"id": config.env.id, "perturb": config.env.perturb,
                               "kwargs": dict(config.env.kwargs)}, "action_names": action_names(env, spec["action_dim"]),
                               "control_hz": control_hz(env), "final": final, "collection": collector.summary()})

    def report_now(n: int) -> None:
        if reports and len(replay) >= length:
            open_loop_report(agent, replay, out / f"report_{n:08d}.png", device, length)

    trainer.run(step, save=save, every=[(run.report_every, report_now)],
                log=lambda: {"run/updates": counters["updates"], "run/replay_steps": len(replay)})
    report = open_loop_report(agent, replay, out / "report.png", device, length) if reports and len(replay) >= length else {}
    return trainer.finish(report=report, collection=collector.summary())


def runtime_overrides(config: Config) -> dict[str, Any]:
    """Keys that may differ between a checkpoint and the run that resumes it."""
    return {"device": config.device, "threads": config.threads, "compile": config.compile, "run": config.run.to_dict()}


def action_names(env, action_dim: int) -> list[str]:
    names = getattr(env.unwrapped, "action_names", None)
    if names and len(names) == action_dim:
        return [str(n) for n in names]
    return ["forward", "turn"] if action_dim == 2 else [f"a{i}" for i in range(action_dim)]


def control_hz(env) -> float:
    hz = getattr(env.unwrapped, "control_hz", None) or env.metadata.get("render_fps") or 10.0
    return float(min(100.0, max(0.1, hz)))


def open_loop_report(agent: Agent, replay: Replay, path: Path, device: torch.device, length: int, count: int = 4) -> dict[str, Any]:
    """report.png of `count` replay sequences (the same ones every time, without touching the training RNG)."""
    state = replay.rng.bit_generator.state
    replay.rng = np.random.default_rng(1234)
    batch = to_torch(replay.sample(count, length), device)
    replay.rng.bit_generator.state = state
    agent.eval()
    numbers = write_report(agent, batch, path, context=min(5, length - 1))
    agent.train()
    return numbers
