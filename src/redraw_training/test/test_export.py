"""ONNX export: deterministic encoder + actor, equal to torch within 1e-4 on real observations, with a
manifest the policy node accepts (redraw_common.manifest.load_verified)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from redraw_common.episodes import iter_episodes
from redraw_common.manifest import load_verified
from redraw_training.checkpoint import load_agent, save_checkpoint
from redraw_training.config import load_config
from redraw_training.draw_agent import Agent
from redraw_training.envs import make_env
from redraw_training.export import PolicyGraph, export_policy

pytestmark = pytest.mark.slow


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_export_calibrated_policy_matches_torch(redraw_run, tmp_path):
    result = export_policy(redraw_run.calibrate_dir, tmp_path / "model", model_id="test-model")
    manifest = load_verified(tmp_path / "model" / "policy.onnx")
    assert manifest.model_id == "test-model" and manifest.provenance["method"] == "ReDRAW"
    assert [t.to_dict() for t in manifest.inputs] == [{"name": "obs", "shape": [1, 32, 32, 3], "dtype": "uint8"}]
    assert [t.to_dict() for t in manifest.outputs] == [{"name": "action", "shape": [1, 2], "dtype": "float32"}]
    assert (manifest.preprocessing.mode, manifest.preprocessing.height, manifest.preprocessing.width) == ("rgb", 32, 32)
    assert result["max_abs_diff"] <= 1e-4
    # real observations: target-dataset frames and fresh frames of the reversed env
    agent, _, _ = load_agent(redraw_run.calibrate_dir, optimizers=False)
    agent.eval()
    graph = PolicyGraph(agent).eval()
    frames = [ep["image"][::7] for _, ep in list(iter_episodes(redraw_run.target_dir))[:3]]
    env = make_env("redraw/PointGoal-v0", perturb="reversed")
    frames.append(np.stack([env.reset(seed=s)[0]["image"] for s in range(10)]))
    session = _session(tmp_path / "model" / "policy.onnx")
    worst = 0.0
    moved = []
    for obs in np.concatenate(frames):
        got = session.run(["action"], {"obs": obs[None]})[0]
        with torch.no_grad():
            want = graph(torch.from_numpy(obs[None])).numpy()
            policy = agent.policy({"image": torch.from_numpy(obs[None])}, sample=False).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
        assert np.allclose(want, policy, atol=1e-6)   # the graph is the agent's deterministic policy
        assert got.shape == (1, 2) and got.dtype == np.float32 and np.all(np.abs(got) <= 1)
        moved.append(got[0])
    assert worst <= 1e-4, worst
    assert np.std(np.array(moved), 0).min() > 0.05   # the policy reacts to what it sees


def test_export_with_vector_input(tmp_path):
    torch.manual_seed(0)
    agent = Agent(load_config(["tiny"]), (32, 32, 2), 3, vector_dim=4)
    save_checkpoint(tmp_path / "ckpt", agent, kind="pretrain", counters={}, preprocessing={})
    result = export_policy(tmp_path / "ckpt", tmp_path / "model")
    manifest = load_verified(tmp_path / "model" / "policy.onnx")
    assert [t.name for t in manifest.inputs] == ["obs", "vector"]
    assert manifest.preprocessing.mode == "lane_mask" and manifest.inputs[0].shape == (1, 32, 32, 2)
    assert manifest.action.names == ("a0", "a1", "a2")
    assert result["max_abs_diff"] <= 1e-4
    session = _session(tmp_path / "model" / "policy.onnx")
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (1, 32, 32, 2), dtype=np.uint8)
    a = session.run(["action"], {"obs": obs, "vector": np.zeros((1, 4), np.float32)})[0]
    b = session.run(["action"], {"obs": obs, "vector": np.full((1, 4), 5.0, np.float32)})[0]
    assert a.shape == (1, 3) and not np.allclose(a, b)   # the vector reaches the policy


def test_export_with_the_past_actions_read_by_the_policy(tmp_path):
    """history_to_policy: the graph takes the whole vector; its past actions reach the action (next to z), and the
    ONNX action equals the agent's deterministic torch action."""
    torch.manual_seed(0)
    agent = Agent(load_config(["tiny"], ["history_to_policy=true"]), (32, 32, 2), 2, vector_dim=6)
    with torch.no_grad():   # a trained policy reads the history; the fresh one's weights are small but not zero
        agent.task.actor.mlp.hidden[0].linear.weight[:, agent.wm.zdim:].normal_(0.0, 1.0)
    save_checkpoint(tmp_path / "ckpt", agent, kind="pretrain", counters={}, preprocessing={})
    result = export_policy(tmp_path / "ckpt", tmp_path / "model")
    manifest = load_verified(tmp_path / "model" / "policy.onnx")
    assert [t.name for t in manifest.inputs] == ["obs", "vector"] and manifest.inputs[1].shape == (1, 6)
    assert result["max_abs_diff"] <= 1e-4
    session = _session(tmp_path / "model" / "policy.onnx")
    obs = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 2), dtype=np.uint8)
    velocity = np.array([[0.3, -0.2]], np.float32)
    hists = [np.zeros((1, 4), np.float32), np.array([[1.0, -1.0, 0.5, 0.5]], np.float32)]
    got = [session.run(["action"], {"obs": obs, "vector": np.concatenate([velocity, h], 1)})[0] for h in hists]
    assert not np.allclose(got[0], got[1], atol=1e-3)   # the past actions reach the policy
    with torch.no_grad():
        for h, a in zip(hists, got):
            vector = torch.from_numpy(np.concatenate([velocity, h], 1))
            want = agent.policy({"image": torch.from_numpy(obs), "vector": vector}, sample=False).numpy()
            np.testing.assert_allclose(a, want, atol=1e-4)
