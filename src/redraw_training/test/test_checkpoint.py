"""Checkpoints: exact resume (save -> load -> continue gives the same next losses), corruption and mismatch
errors, and resuming the online loop after a stop."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from redraw_training.checkpoint import CheckpointError, load_agent, load_state_into, save_checkpoint
from redraw_training.config import load_config
from redraw_training.draw_agent import Agent
from redraw_training.pretrain import pretrain
from redraw_training.replay import Replay
from redraw_training.rollout import collect
from redraw_training.runtime import to_torch


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt_episodes")
    collect("redraw/PointGoal-v0", folder, 4, "random", seed=3)
    return folder


def _replay(folder, seed=0):
    replay = Replay(10_000, folder, seed=seed)
    replay.load_directory()
    return replay


def _train(agent, replay, steps):
    out = []
    for _ in range(steps):
        metrics = agent.train_step(to_torch(replay.sample(4, 8), torch.device("cpu")))
        out.append({k: float(v) for k, v in metrics.items()})
    return out


def _saved(tmp_path, episodes):
    config = load_config(["tiny"], {"batch_size": 4, "batch_length": 8, "imag_starts": 16, "imag_horizon": 4})
    torch.manual_seed(0)
    agent = Agent(config, (32, 32, 3), 2)
    replay = _replay(episodes)
    _train(agent, replay, 3)
    save_checkpoint(tmp_path / "ckpt", agent, kind="pretrain", counters={"updates": 3}, rng={"replay": replay.rng_state()})
    return agent, replay


def test_save_load_continue_gives_identical_losses(tmp_path, episodes):
    agent, replay = _saved(tmp_path, episodes)
    expected = _train(agent, replay, 2)
    loaded, manifest, _ = load_agent(tmp_path / "ckpt", optimizers=True, restore_rng=True)
    replay2 = _replay(episodes, seed=99)
    replay2.set_rng_state(manifest["rng"]["replay"])
    got = _train(loaded, replay2, 2)
    assert got == expected
    assert manifest["counters"] == {"updates": 3} and manifest["presets"] == ["tiny"]
    assert manifest["code_version"].startswith("0.1.0")
    # without the optimiser state the next losses differ (the test can fail)
    fresh_opt, _, _ = load_agent(tmp_path / "ckpt", optimizers=False, restore_rng=True)
    replay3 = _replay(episodes)
    replay3.set_rng_state(manifest["rng"]["replay"])
    assert _train(fresh_opt, replay3, 2)[1] != expected[1]


def test_corrupted_checkpoints_are_refused(tmp_path, episodes):
    _saved(tmp_path, episodes)
    weights = tmp_path / "ckpt" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted: sha256"):
        load_agent(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "checkpoint.json").write_text('{"format": "redraw-checkpoint", ')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_agent(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_agent(tmp_path / "nothing")


def test_mismatched_checkpoints_are_refused(tmp_path, episodes):
    agent, _ = _saved(tmp_path, episodes)
    manifest_path = tmp_path / "ckpt" / "checkpoint.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["rssm"]["units"] = 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"does not match the model: \d+ shape mismatches \(e.g. wm\.draw"):
        load_agent(tmp_path / "ckpt")
    other = Agent(load_config(["tiny"], {"rssm.classes": 4}), (32, 32, 3), 2)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_state_into(other, load_file(str(tmp_path / "ckpt" / "weights.safetensors")))
    manifest["config"]["rssm"]["units"] = 128
    manifest["model"]["calibrated"] = True
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="missing from the checkpoint"):
        load_agent(tmp_path / "ckpt")


def test_online_loop_resumes_and_refuses_another_model(tmp_path):
    config = load_config(["tiny"], {"run.steps": 120, "run.prefill": 100, "run.eval_eps": 1, "run.eval_every": 0,
                                    "run.save_every": 0, "run.log_every": 50, "threads": 1, "imag_starts": 16})
    first = pretrain(config, tmp_path / "run", progress=False)
    assert first["counters"]["env_steps"] == 120 and first["counters"]["updates"] == 21
    second = pretrain(config.update({"run.steps": 160}), tmp_path / "run", progress=False)
    assert second["counters"]["env_steps"] == 160 and second["counters"]["updates"] == 61
    assert second["counters"]["episodes"] == 2 and len(list((tmp_path / "run" / "replay").glob("*.npz"))) == 2
    with pytest.raises(CheckpointError, match="different model.*rssm.units"):
        pretrain(config.update({"rssm.units": 64}), tmp_path / "run", progress=False)
