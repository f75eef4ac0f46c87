"""The paper's baselines: the DreamerV3 world model (RSSM + backprop actor-critic), the finetune modes and the
one-command comparison (tiny preset, synthetic PointGoal env). Effects are asserted with stated margins."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from redraw_training.config import load_config
from redraw_training.dreamer import RSSM, DreamerAgent


def _random_episodes(perturb: str = "", episodes: int = 6, seed: int = 0, reward: bool = True):
    from redraw_training.envs import make_env
    from redraw_training.rollout import run_episodes

    env = make_env("redraw/PointGoal-v0", perturb)
    rng = np.random.default_rng(seed)
    _, eps = run_episodes(env, lambda obs: rng.uniform(-1, 1, 2), episodes, seed=seed, keep=True)
    if not reward:
        for ep in eps:
            ep.pop("reward")
    return eps


def _replay(eps):
    from redraw_training.replay import Replay

    replay = Replay(100_000, seed=0)
    for ep in eps:
        replay.add_episode(ep)
    return replay


def _changed(before: dict, after: dict) -> set[str]:
    assert sorted(before) == sorted(after)
    return {k for k in before if not torch.equal(before[k], after[k])}


# ----------------------------------------------------------------------------------------------------------
# DreamerV3 world model


def test_rssm_resets_at_is_first_and_heads_read_deter_and_stoch():
    """Filtering restarts from the learned initial state wherever is_first (what came before does not matter), the
    features are [h, z] with 32 x 32 latents at the paper size, and the prior of step t uses the action of t-1."""
    torch.manual_seed(0)
    rssm = RSSM(embed_dim=12, action_dim=2, deter=16, stoch=4, classes=3, units=8)
    embed, action = torch.randn(2, 6, 12), torch.randn(2, 6, 2)
    is_first = torch.zeros(2, 6, dtype=torch.bool)
    is_first[:, 0] = True
    is_first[0, 3] = True
    out = rssm.observe(embed, action, is_first)
    assert out["h"].shape == (2, 6, 16) and out["z"].shape == (2, 6, 12) and out["post_logit"].shape == (2, 6, 3, 4)
    # the same 3 steps observed as a fresh sequence give the same deterministic state as steps 3..5 of row 0
    fresh = rssm.observe(embed[:1, 3:], action[:1, 3:], torch.tensor([[True, False, False]]))
    assert torch.allclose(fresh["h"][0, 0], out["h"][0, 3], atol=1e-6)
    assert not torch.allclose(out["h"][1, 3], out["h"][0, 3])
    paper = DreamerAgent(load_config(["dreamer"]), (64, 64, 3), 2)
    assert paper.wm.rssm.zdim == 32 * 32 and paper.wm.feat_dim == 512 + 1024
    assert paper.wm.scales["dyn"] == 0.5 and paper.wm.scales["rep"] == 0.1 and paper.config.dreamer.imag_horizon == 15


def test_backprop_actor_gradient_flows_through_the_model_only_into_the_actor():
    """The Dreamer actor loss reaches the actor through the imagined dynamics (non-zero actor gradients with a
    reward that depends on the state only), and leaves no gradient in the world model or the critic."""
    torch.manual_seed(0)
    config = load_config(["tiny", "dreamer"], {"dreamer.imag_horizon": 5})
    agent = DreamerAgent(config, (32, 32, 3), 2)
    wm, ac = agent.wm, agent.task
    for p in list(wm.parameters()) + list(ac.critic.parameters()):
        p.grad = None
    n = 16
    h, z = wm.rssm.initial_state(n)
    start = {"h": h.detach(), "z": z.detach(), "cont": torch.ones(n)}
    grads = {}
    original = ac.actor_opt.step

    def spy(loss):
        ac.actor_opt.opt.zero_grad(set_to_none=True)
        loss.backward(retain_graph=True)
        grads["actor"] = sum(float(p.grad.abs().sum()) for p in ac.actor.parameters() if p.grad is not None)
        grads["wm"] = [n for n, p in wm.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
        grads["critic"] = [n for n, p in ac.critic.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
        return original(loss)

    ac.actor_opt.step = spy
    ac.train_step(wm, start, reward_fn=lambda feat, action: feat[..., : wm.rssm.deter].sum(-1))
    assert grads["actor"] > 0 and grads["wm"] == [] and grads["critic"] == [], grads
    assert all(p.requires_grad for p in wm.parameters())  # restored after imagination


def test_dreamer_world_model_trains():
    """On a fixed set of random-action PointGoal episodes, 100 updates of the Dreamer world model cut its loss to
    at most 30 % and the image reconstruction error to at most 20 % of the first update's; the actor-critic trains
    alongside without errors."""
    torch.manual_seed(0)
    config = load_config(["tiny", "dreamer"], {"imag_starts": 32})
    agent = DreamerAgent(config, (32, 32, 3), 2)
    replay = _replay(_random_episodes(episodes=6, seed=1))
    from redraw_training.runtime import to_torch

    history = []
    for _ in range(100):
        metrics = agent.train_step(to_torch(replay.sample(8, 16), torch.device("cpu")))
        history.append({k: float(v) for k, v in metrics.items()})
    first = np.mean([h["model/loss"] for h in history[:5]])
    last = np.mean([h["model/loss"] for h in history[-10:]])
    mse_first, mse_last = history[0]["wm/image_mse"], np.mean([h["wm/image_mse"] for h in history[-10:]])
    assert last <= 0.30 * first, (first, last)
    assert mse_last <= 0.20 * mse_first, (mse_first, mse_last)
    assert all(math.isfinite(h["actor/loss"]) and math.isfinite(h["critic/loss"]) for h in history)


# ----------------------------------------------------------------------------------------------------------
# finetune modes: only the named modules change


@pytest.fixture(scope="module")
def dreamer_ckpt(tmp_path_factory):
    from redraw_training.pretrain import pretrain

    root = tmp_path_factory.mktemp("dreamer")
    config = load_config(["tiny", "dreamer"], {"seed": 0, "threads": 1, "run.steps": 260, "run.prefill": 200, "run.eval_every": 0,
                                               "run.eval_eps": 0, "run.save_every": 0, "run.log_every": 100, "imag_starts": 32})
    pretrain(config, root / "run", progress=False)
    return root / "run"


@pytest.fixture(scope="module")
def target_data(tmp_path_factory):
    from redraw_common.episodes import save_episode

    folder = tmp_path_factory.mktemp("target") / "reversed"
    for i, ep in enumerate(_random_episodes("reversed", episodes=5, seed=77, reward=False)):
        save_episode(folder / f"ep_{i:03d}.npz", ep)
    return folder


def _finetune(src, data, out, method, updates=25):
    from redraw_training.checkpoint import read_manifest
    from redraw_training.config import config_from_dict
    from redraw_training.finetune import finetune

    _, manifest = read_manifest(src)
    config = config_from_dict(manifest["config"], manifest["presets"]).update(
        {"calibrate.updates": updates, "calibrate.log_every": updates, "calibrate.eval_every": 0, "calibrate.holdout": 0.25, "threads": 1})
    return finetune(config, src, data, out, method, progress=False)


@pytest.mark.slow
def test_dreamer_finetune_changes_only_the_rssm_and_the_policy(dreamer_ckpt, target_data, tmp_path):
    """Encoder, decoder, reward and continue heads stay bit-identical; the RSSM (GRU, prior, posterior) and the
    kept actor-critic change; no reward loss is computed; held-out KL(posterior || prior) is reported."""
    out = tmp_path / "ft"
    summary = _finetune(dreamer_ckpt, target_data, out, "dreamer_finetune")
    before = load_file(str(dreamer_ckpt / "checkpoint" / "weights.safetensors"))
    after = load_file(str(out / "checkpoint" / "weights.safetensors"))
    changed = _changed(before, after)
    assert changed, "nothing was trained"
    assert all(k.startswith(("wm.rssm.", "task.")) for k in changed), sorted(changed)
    assert {"wm.rssm.gru.linear.weight", "wm.rssm.img_stats.linear.weight", "wm.rssm.obs_stats.linear.weight"} <= changed
    assert any(k.startswith("task.actor.") for k in changed)
    frozen = [k for k in before if k.startswith(("wm.encoder.", "wm.decoder.", "wm.reward.", "wm.cont."))]
    assert frozen and not set(frozen) & changed
    assert "wm/reward" not in summary["last_metrics"] and "wm/image" in summary["last_metrics"]
    assert summary["holdout"]["holdout/kl_before"] > 0 and summary["holdout"]["holdout/kl_after"] > 0
    manifest = json.loads((out / "checkpoint" / "checkpoint.json").read_text())
    assert manifest["kind"] == "finetune" and manifest["data"]["method"] == "dreamer_finetune"


@pytest.mark.slow
def test_draw_finetune_changes_only_the_prior_and_the_policy(redraw_run, target_data, tmp_path):
    """Only the prior network (img_in / img_hidden / img_out / img_stats), the initial logits and the kept
    actor-critic change; encoder, posterior (obs_*), decoder, reward and continue heads stay bit-identical; on the
    reversed-action data the held-out KL(posterior || prior) falls."""
    out = tmp_path / "ft"
    summary = _finetune(redraw_run.pretrain_dir, target_data, out, "draw_finetune", updates=60)
    before = load_file(str(redraw_run.pretrain_dir / "checkpoint" / "weights.safetensors"))
    after = load_file(str(out / "checkpoint" / "weights.safetensors"))
    changed = _changed(before, after)
    prior = ("wm.draw.img_in.", "wm.draw.img_hidden.", "wm.draw.img_out.", "wm.draw.img_stats.", "wm.draw.initial")
    assert all(k.startswith(prior + ("task.",)) for k in changed), sorted(changed)
    assert {"wm.draw.img_in.linear.weight", "wm.draw.img_stats.linear.weight", "wm.draw.initial"} <= changed
    assert any(k.startswith("task.actor.") for k in changed)
    frozen = [k for k in before if k.startswith(("wm.encoder.", "wm.draw.obs_", "wm.decoder.", "wm.reward.", "wm.cont."))]
    assert frozen and not set(frozen) & changed
    hold = summary["holdout"]
    assert hold["holdout/kl_after"] < hold["holdout/kl_before"], hold


@pytest.mark.slow
def test_finetune_refuses_the_wrong_model(dreamer_ckpt, target_data, tmp_path):
    from redraw_training.finetune import FinetuneError

    with pytest.raises(FinetuneError, match="DRAW"):
        _finetune(dreamer_ckpt, target_data, tmp_path / "x", "draw_finetune")
    from redraw_training.checkpoint import load_agent

    agent, _, _ = load_agent(dreamer_ckpt, optimizers=False)
    with pytest.raises(ValueError, match="DRAW"):
        agent.start_calibration()


# ----------------------------------------------------------------------------------------------------------
# compare: all five methods x seeds (x dataset sizes) in one command


def test_summary_mean_and_sem():
    from redraw_training.compare_report import summarize

    rows = [{"method": "redraw", "perturb": "reversed", "size": 100, "return_mean": v} for v in (1.0, 2.0, 3.0)]
    (s,) = summarize(rows)
    assert s["mean"] == pytest.approx(2.0) and s["sem"] == pytest.approx(1.0 / math.sqrt(3)) and s["seeds"] == 3


@pytest.mark.slow
def test_compare_one_command_all_methods(local_ray, tmp_path):
    """`compare` over the five methods, 2 seeds and a two-size dataset sweep writes results.json (one row per
    method x size x seed, one evaluation format), table.md (mean ± SEM per method and condition) and plot.png;
    the sweep's smaller dataset is a prefix of the larger one; rerunning resumes without redoing any stage."""
    from redraw_training.cli.compare import main

    out = tmp_path / "cmp"
    args = ["--env", "redraw/PointGoal-v0", "--target-perturb", "reversed", "--seeds", "2", "--out", str(out), "--preset", "tiny",
            "--pretrain-steps", "110", "--updates", "4", "--sizes", "60,110", "--eval-episodes", "2",
            "--set", "run.prefill=100", "--set", "imag_starts=32", "--set", "calibrate.log_every=2"]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert len(rows) == 5 * 2 * 2
    for row in rows:
        assert len(row["returns"]) == 2 and math.isfinite(row["return_mean"])
    assert {r["method"] for r in rows} == {"dreamer_zeroshot", "dreamer_finetune", "draw_zeroshot", "draw_finetune", "redraw"}
    ft = [r for r in rows if r["method"] in ("draw_finetune", "dreamer_finetune", "redraw")]
    assert all(r["updates"] == 4 for r in ft)
    small = {r["train_steps"] for r in ft if r["size"] == 60}
    large = {r["train_steps"] for r in ft if r["size"] == 110}
    assert max(small) < min(large)
    assert len(results["summary"]) == 10 and all(s["seeds"] == 2 for s in results["summary"])
    table = (out / "table.md").read_text()
    for label in ("Dreamer zero-shot", "Dreamer finetune", "DRAW zero-shot", "DRAW finetune", "ReDRAW"):
        line = next(ln for ln in table.splitlines() if ln.startswith(f"| {label} |"))
        assert line.count("±") == 2, line
    assert (out / "plot.png").stat().st_size > 5000
    stamp = (out / "runs" / "redraw" / "reversed_n60" / "seed0" / "checkpoint" / "checkpoint.json").stat().st_mtime
    assert main(args) == 0
    assert (out / "runs" / "redraw" / "reversed_n60" / "seed0" / "checkpoint" / "checkpoint.json").stat().st_mtime == stamp
    assert json.loads((out / "results.json").read_text())["summary"] == results["summary"]


def test_export_refuses_a_dreamer_checkpoint_with_a_clear_error(dreamer_ckpt, tmp_path):
    from redraw_training.export import export_policy

    with pytest.raises(ValueError, match="export takes DRAW / ReDRAW checkpoints .* found model 'dreamer'"):
        export_policy(dreamer_ckpt, tmp_path / "out")
    assert not (tmp_path / "out" / "policy.onnx").exists()


@pytest.mark.parametrize("every", [0, 1, 3])
def test_slow_critic_cadence_is_the_same_rule_for_draw_and_dreamer(every):
    """slow_critic.every <= 1 moves the slow critic every update, else every `every` updates, in both actor-critics
    (Dreamer's divided by zero at every: 0)."""
    from redraw_training.behavior import ImagActorCritic
    from redraw_training.dreamer import DreamerActorCritic

    config = load_config(["tiny"], {"slow_critic.every": every, "slow_critic.fraction": 0.5})
    for ac in (ImagActorCritic(config, 8, 2), DreamerActorCritic(config, 8, 2)):
        with torch.no_grad():
            for p in ac.critic.parameters():
                p.add_(1.0)
        moved = []
        for _ in range(3):
            before = [p.clone() for p in ac.slow_critic.parameters()]
            ac.count_update()
            moved.append(any(not torch.equal(a, b) for a, b in zip(before, ac.slow_critic.parameters())))
        assert moved == ([True, True, True] if every <= 1 else [False, False, True]), (type(ac).__name__, moved)
