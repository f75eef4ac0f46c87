"""Plan2Explore pretraining, the scripted explorer and offline pretraining (tiny preset, synthetic PointGoal env).

The module fixture `p2e` pretrains DRAW with Plan2Explore once (random prefill, then the exploration policy
collects the data while the task policy trains alongside); the learning tests reuse it and state their margins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from redraw_training.collectors import coverage
from redraw_training.plan2explore import Disagreement, member_std
from redraw_training.rollout import PolicyRunner

P2E_STEPS = 800        # 400 random prefill steps, then 400 exploration steps with one update each
P2E_PREFILL = 400


# ----------------------------------------------------------------------------------------------------------
# units (fast)


def test_disagreement_shapes_loss_and_reward():
    """Every member predicts (M, ..., out); the ensemble fits a fixed mapping (loss falls by 90 %); the intrinsic
    reward is the mean over dims of the member std, 0 when all members agree."""
    torch.manual_seed(0)
    ens = Disagreement(6, 4, members=8, layers=1, units=32, lr=3e-3, eps=1e-5, clip=100.0)
    x = torch.randn(5, 7, 6)
    assert ens(x).shape == (8, 5, 7, 4)
    assert ens.intrinsic(x).shape == (5, 7)
    pred = torch.randn(8, 3, 4)
    assert torch.allclose(member_std(pred), pred.std(0, unbiased=False).mean(-1), atol=1e-6)
    assert torch.all(member_std(pred[:1].expand(8, 3, 4)) < 1e-6)
    target = torch.tanh(x @ torch.randn(6, 4))
    first = float(ens.loss(x, target).detach())
    for _ in range(300):
        ens.train_step(x, target)
    assert float(ens.loss(x, target).detach()) < 0.1 * first
    mask = torch.zeros(5, 7, dtype=torch.bool)
    mask[:, :3] = True  # masked pairs do not count
    assert torch.isclose(ens.loss(x, target, mask), ens.loss(x[:, :3], target[:, :3]), rtol=1e-5)


def test_coverage_counts_cells_and_entropy():
    pos = np.array([[-0.95, -0.95], [-0.95, -0.94], [0.95, 0.95]])
    c = coverage(pos, -1.0, 1.0, cells=10)
    assert c["coverage"] == pytest.approx(0.02) and c["positions"] == 3
    uniform = np.stack(np.meshgrid(np.linspace(-0.95, 0.95, 10), np.linspace(-0.95, 0.95, 10)), -1).reshape(-1, 2)
    assert coverage(uniform, -1.0, 1.0, cells=10) == {"coverage": 1.0, "visit_entropy": pytest.approx(1.0), "positions": 100}


def test_scripted_explorer_covers_more_than_random_actions():
    """Per episode (50 steps, 20 episodes), the PointGoal scripted explorer (random waypoints) visits at least
    1.5 x as many of the 100 arena cells as uniform random actions, which jitter around the start."""
    from redraw_training.envs import make_env
    from redraw_training.rollout import run_episodes
    from redraw_training.scripted import WaypointExplorer, driver_input, scripted_driver

    env = make_env("redraw/PointGoal-v0")
    driver = scripted_driver(env, seed=3)
    assert isinstance(driver, WaypointExplorer)
    rng = np.random.default_rng(3)

    def per_episode(act) -> float:
        values = []
        for i in range(20):
            pos: list[np.ndarray] = []

            def wrapped(obs, pos=pos):
                pos.append(env.unwrapped.position())
                return act(obs)

            run_episodes(env, wrapped, 1, seed=100 + i)
            values.append(coverage(np.stack(pos), -1.0, 1.0)["coverage"])
        return float(np.mean(values))

    scripted = per_episode(lambda obs: driver.act(driver_input(env, driver, obs)))
    rand = per_episode(lambda obs: rng.uniform(-1, 1, 2))
    assert scripted >= 1.5 * rand, (scripted, rand)


def test_persistent_explorer_is_seeded_and_bounded():
    """The fallback explorer for envs without a position: same seed, same actions; actions in [-1, 1]; it holds a
    direction for several steps (consecutive actions are closer than independent draws)."""
    from redraw_training.scripted import PersistentExplorer

    def actions(seed):
        d = PersistentExplorer(3, seed=seed)
        return np.stack([d.act(None) for _ in range(200)])

    a, b = actions(5), actions(5)
    assert np.array_equal(a, b) and not np.array_equal(a, actions(6))
    assert a.shape == (200, 3) and np.all(np.abs(a) <= 1.0)
    assert np.mean(np.abs(np.diff(a, axis=0))) < 0.5 * np.mean(np.abs(a[:, None] - a[None]))
    with pytest.raises(ValueError, match="hold"):
        PersistentExplorer(2, hold=(0, 3))


# ----------------------------------------------------------------------------------------------------------
# Plan2Explore pretraining


@pytest.fixture(scope="module")
def p2e(tmp_path_factory):
    from redraw_training.config import load_config
    from redraw_training.pretrain import pretrain

    root = tmp_path_factory.mktemp("p2e")
    config = load_config(["tiny", "plan2explore"], {
        "seed": 0, "threads": 1, "run.steps": P2E_STEPS, "run.prefill": P2E_PREFILL, "run.eval_every": 0, "run.eval_eps": 0,
        "run.log_every": 100, "run.save_every": 0, "imag_starts": 64, "expl.units": 64,
    })
    summary = pretrain(config, root / "run", progress=False)
    return root / "run", summary


def _features(agent, actions_low: float, actions_high: float, episodes: int, seed: int):
    """Disagreement inputs concat[sigma_t, z_t, a_t] and targets e_{t+1} of random-action episodes (x action in
    [actions_low, actions_high], y action in [-1, 1]) filtered through the agent's world model."""
    from redraw_training.envs import make_env
    from redraw_training.plan2explore import disag_inputs
    from redraw_training.rollout import run_episodes

    env = make_env("redraw/PointGoal-v0")
    rng = np.random.default_rng(seed)
    _, eps = run_episodes(env, lambda obs: np.array([rng.uniform(actions_low, actions_high), rng.uniform(-1, 1)]), episodes,
                          seed=seed, keep=True)
    batch = {k: torch.from_numpy(np.stack([ep[k] for ep in eps])) for k in ("image", "action", "is_first")}
    with torch.no_grad():
        embed = agent.wm.embed(batch)
        states = agent.wm.draw.observe(embed, batch["action"], batch["is_first"])
    x = disag_inputs(states["sigma"][:, :-1], states["z"][:, :-1], batch["action"][:, :-1])
    return x.reshape(-1, x.shape[-1]), embed[:, 1:].reshape(-1, embed.shape[-1])


@pytest.mark.slow
def test_p2e_intrinsic_reward_higher_on_novel_transitions(p2e):
    """A disagreement ensemble (the agent's expl settings) trained on familiar transitions of the pretrained world
    model (robot driven left: x action <= 0) gives at least 1.5 x the intrinsic reward on novel transitions (driven
    right: x action > 0, the right half of the arena) than on held-out familiar ones. The pretrained agent's own
    ensemble has learned: its loss fell below a third of its first logged value."""
    from redraw_training.checkpoint import load_agent

    agent, _, _ = load_agent(p2e[0], optimizers=False)
    agent.eval()
    x, target = _features(agent, -1.0, 0.0, 16, seed=21)
    x_fam, _ = _features(agent, -1.0, 0.0, 4, seed=22)
    x_new, _ = _features(agent, 0.0, 1.0, 4, seed=23)
    e = agent.config.expl
    torch.manual_seed(0)
    ens = Disagreement(x.shape[-1], target.shape[-1], e.members, e.layers, e.units, e.lr, e.eps, e.clip)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        idx = torch.randint(0, len(x), (128,), generator=gen)
        ens.train_step(x[idx], target[idx])
    with torch.no_grad():
        familiar, novel = float(ens.intrinsic(x_fam).mean()), float(ens.intrinsic(x_new).mean())
    assert novel >= 1.5 * familiar, (novel, familiar)
    rows = [json.loads(line) for line in (p2e[0] / "scalars.jsonl").read_text().splitlines()]
    disag = [r["disag/loss"] for r in rows if "disag/loss" in r]
    assert disag[-1] < disag[0] / 3, disag


@pytest.mark.slow
def test_p2e_data_covers_more_than_task_policy(p2e):
    """Over the same 20 episodes x 50 steps in the pretraining env, the exploration policy visits at least 6 more
    of the 100 arena cells than the task policy trained alongside it (which heads for the goal), with a higher
    visit entropy. The pretraining summary reports the coverage of the data it collected. (Measured: about 0.69
    vs 0.56; uniform random actions cover about 0.86, since episodes start anywhere in the arena.)"""
    from redraw_training.checkpoint import load_agent
    from redraw_training.envs import make_env
    from redraw_training.rollout import run_episodes

    run, summary = p2e
    col = summary["collection"]
    assert col["explore"] == "plan2explore" and col["steps"] == {"prefill": P2E_PREFILL, "plan2explore": P2E_STEPS - P2E_PREFILL}
    assert 0.0 < col["coverage_plan2explore"]["coverage"] <= 1.0
    agent, _, _ = load_agent(run, optimizers=False)
    env = make_env("redraw/PointGoal-v0")
    result = {}
    for behavior in ("expl", "task"):
        torch.manual_seed(0)
        runner = PolicyRunner(agent, torch.device("cpu"), behavior=behavior)
        pos: list[np.ndarray] = []

        def act(obs, pos=pos, runner=runner):
            pos.append(env.unwrapped.position())
            return runner(obs)

        run_episodes(env, act, 20, seed=500)
        result[behavior] = coverage(np.stack(pos), -1.0, 1.0)
    assert result["expl"]["coverage"] >= result["task"]["coverage"] + 0.06, result
    assert result["expl"]["visit_entropy"] > result["task"]["visit_entropy"], result


@pytest.mark.slow
def test_p2e_checkpoint_holds_exploration_parts_and_calibration_drops_them(p2e):
    from safetensors.torch import load_file

    from redraw_training.checkpoint import load_agent
    from redraw_training.plan2explore import P2EAgent

    run, summary = p2e
    weights = load_file(str(run / "checkpoint" / "weights.safetensors"))
    assert any(k.startswith("disag.") for k in weights) and any(k.startswith("expl_behavior.actor.") for k in weights)
    agent, manifest, _ = load_agent(run, optimizers=True)
    assert isinstance(agent, P2EAgent) and manifest["config"]["explore"] == "plan2explore"
    assert {"disag", "expl_actor", "expl_critic", "model", "actor", "critic"} <= set(agent.optimizers())
    assert agent.task.retnorm.max == 100.0 and agent.expl_behavior.retnorm.max == 100.0  # METHOD.md 4
    agent.start_calibration()
    assert agent.disag is None and agent.expl_behavior is None and agent.task.retnorm.max == 1.0
    assert not any(k.startswith(("disag.", "expl_behavior.")) for k in agent.state_dict())
    assert summary["last_metrics"]["disag/loss"] > 0 and "expl_actor/loss" in summary["last_metrics"]


# ----------------------------------------------------------------------------------------------------------
# pretrain CLI: --explore scripted, --dataset (offline, no env)


def test_pretrain_cli_scripted_explore(tmp_path):
    from redraw_training.cli.pretrain import main

    out = tmp_path / "scripted"
    assert main(["--env", "redraw/PointGoal-v0", "--preset", "tiny", "--explore", "scripted", "--steps", "130", "--set", "run.prefill=100",
                 "--set", "run.eval_eps=1", "--threads", "1", "--no-progress", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["collection"]["explore"] == "scripted"
    assert summary["collection"]["steps"] == {"prefill": 100, "scripted": 30}
    manifest = json.loads((out / "checkpoint" / "checkpoint.json").read_text())
    assert manifest["config"]["explore"] == "scripted" and manifest["extra"]["collection"]["explore"] == "scripted"


def _write_dataset(folder: Path, episodes: int, reward: bool = True, dataset_json: dict | None = None) -> None:
    from redraw_training.rollout import collect

    collect("redraw/PointGoal-v0", folder, episodes, "random", seed=4, keep_reward=reward)
    if dataset_json is not None:
        (folder / "dataset.json").write_text(json.dumps(dataset_json))


def test_offline_pretrain_needs_no_env(tmp_path):
    """`pretrain --dataset` runs in a Python where importing gymnasium fails; image shape, action dim and
    preprocessing come from the dataset and its dataset.json; the model trains (loss falls); the checkpoint loads."""
    data = tmp_path / "data"
    pre = {"mode": "rgb", "height": 32, "width": 32, "horizon_crop": 0.0}
    _write_dataset(data, 4, dataset_json={"env": "redraw/PointGoal-v0", "env_settings": {"preprocess": pre, "control_hz": 12.5}})
    out = tmp_path / "offline"
    code = ("import sys; sys.modules['gymnasium'] = None\n"
            "from redraw_training.cli.pretrain import main\n"
            f"rc = main(['--dataset', {str(data)!r}, '--preset', 'tiny', '--updates', '40', '--threads', '1', '--no-progress',"
            f" '--set', 'run.log_every=20', '--set', 'imag_starts=32', '--out', {str(out)!r}])\n"
            "assert 'gymnasium' not in sys.modules or sys.modules['gymnasium'] is None\n"
            "raise SystemExit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "checkpoint" / "checkpoint.json").read_text())
    assert manifest["kind"] == "pretrain" and manifest["model"]["image_shape"] == [32, 32, 3] and manifest["model"]["action_dim"] == 2
    assert manifest["preprocessing"] == pre and manifest["extra"]["control_hz"] == 12.5 and manifest["extra"]["offline"] is True
    assert manifest["extra"]["env"]["id"] == "redraw/PointGoal-v0" and manifest["counters"]["updates"] == 40
    rows = [json.loads(line) for line in (out / "scalars.jsonl").read_text().splitlines()]
    losses = [r["model/loss"] for r in rows if "model/loss" in r]
    assert len(losses) == 2 and losses[-1] < 0.7 * losses[0], losses

    from redraw_training.checkpoint import load_agent

    agent, _, _ = load_agent(out, optimizers=True)
    assert agent.config.model == "draw"


def test_offline_pretrain_dreamer_and_resume(tmp_path):
    """The Dreamer model pretrains offline the same way; a second call with more updates resumes the checkpoint."""
    from redraw_training.config import load_config
    from redraw_training.offline import pretrain_offline

    data = tmp_path / "data"
    _write_dataset(data, 3)
    config = load_config(["tiny", "dreamer"], {"threads": 1, "imag_starts": 32, "run.log_every": 10})
    first = pretrain_offline(config, data, tmp_path / "out", updates=10, progress=False)
    assert first["counters"]["updates"] == 10 and first["model"]["image_shape"] == [32, 32, 3]
    second = pretrain_offline(config, data, tmp_path / "out", updates=15, progress=False)
    assert second["counters"]["updates"] == 15
    steps = [json.loads(line)["step"] for line in (tmp_path / "out" / "scalars.jsonl").read_text().splitlines()]
    assert steps == [10, 15]


def test_offline_pretrain_refuses_reward_free_data(tmp_path):
    from redraw_training.config import load_config
    from redraw_training.offline import OfflineError, pretrain_offline

    data = tmp_path / "data"
    _write_dataset(data, 2, reward=False)
    with pytest.raises(OfflineError, match="no 'reward'"):
        pretrain_offline(load_config(["tiny"]), data, tmp_path / "out", updates=1, progress=False)
    with pytest.raises(OfflineError, match="Plan2Explore"):
        pretrain_offline(load_config(["tiny", "plan2explore"]), data, tmp_path / "out", updates=1, progress=False)


def test_offline_pretrain_continues_from_another_run_on_new_data(tmp_path):
    """--init-from: a run continues on an extended dataset from the given run's weights and update count (no fresh
    start: its first loss is far below a fresh model's), records where it came from, and refuses shape mismatches."""
    from redraw_training.cli.pretrain import main

    small, more = tmp_path / "small", tmp_path / "more"
    _write_dataset(small, 3)
    _write_dataset(more, 5)
    common = ["--preset", "tiny", "--threads", "1", "--no-progress", "--set", "run.log_every=1", "--set", "imag_starts=32"]
    assert main(["--dataset", str(small), "--updates", "60", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["--dataset", str(more), "--updates", "65", "--init-from", str(tmp_path / "a"), "--out", str(tmp_path / "b"), *common]) == 0
    assert main(["--dataset", str(more), "--updates", "5", "--out", str(tmp_path / "fresh"), *common]) == 0
    rows = lambda run: [json.loads(line) for line in (tmp_path / run / "scalars.jsonl").read_text().splitlines()]  # noqa: E731
    cont, fresh = rows("b"), rows("fresh")
    assert [r["step"] for r in cont] == [61, 62, 63, 64, 65]
    assert cont[0]["model/loss"] < 0.5 * fresh[0]["model/loss"], (cont[0]["model/loss"], fresh[0]["model/loss"])
    manifest = json.loads((tmp_path / "b" / "checkpoint" / "checkpoint.json").read_text())
    assert manifest["counters"]["updates"] == 65 and manifest["data"]["init_from"]["updates"] == 60
    # resuming the continued run on its own dataset works; a checkpoint of other shapes is refused
    assert main(["--dataset", str(more), "--updates", "66", "--out", str(tmp_path / "b"), *common]) == 0
    other = tmp_path / "other"
    from redraw_training.rollout import collect

    collect("redraw/PointGoal-v0", other, 2, "random", seed=5, keep_reward=True, env_kwargs={"size": 64})
    assert main(["--dataset", str(other), "--updates", "70", "--init-from", str(tmp_path / "a"), "--out", str(tmp_path / "c"), *common]) == 2


def _with_vector(src: Path, dst: Path, dim: int) -> None:
    """Copy a dataset, giving every step a vector of size `dim` (a function of the step, the same for any dim in its
    first entries, so that a wider dataset extends a narrower one)."""
    from redraw_common.episodes import episode_paths, load_episode, save_episode

    dst.mkdir(parents=True, exist_ok=True)
    for path in episode_paths(src):
        ep = dict(load_episode(path))
        t = np.arange(len(ep["action"]), dtype=np.float32)[:, None]
        ep["vector"] = np.concatenate([np.sin(0.3 * t * (j + 1)) for j in range(dim)], 1).astype(np.float32)
        save_episode(dst / path.name, ep)


def test_widening_the_vector_keeps_what_the_model_knows():
    """widen_vector_input: every old tensor carries over; the encoder ignores the new vector entries until trained
    (same embedding whatever they hold); the vector decoder's old outputs are unchanged; Adam moments are padded."""
    from redraw_training.agents import build_agent
    from redraw_training.config import load_config
    from redraw_training.offline import OfflineError, widen_vector_input

    config = load_config(["tiny"])
    torch.manual_seed(0)
    narrow, wide = build_agent(config, (16, 16, 3), 2, 2), build_agent(config, (16, 16, 3), 2, 6)
    image = torch.randint(0, 255, (3, 16, 16, 3), dtype=torch.uint8)
    vec = torch.randn(3, 6)
    # one optimiser step so that the moments are non-zero
    narrow.wm.opt.step(narrow.wm.encoder(image, vec[:, :2]).square().mean())
    widen_vector_input(narrow, wide)
    with torch.no_grad():
        e_old = narrow.wm.encoder(image, vec[:, :2])
        e_new = wide.wm.encoder(image, vec)
        e_other = wide.wm.encoder(image, torch.cat([vec[:, :2], 5 * torch.randn(3, 4)], 1))
        z = torch.randn(3, wide.wm.zdim)
        d_old, d_new = narrow.wm.decoder.vector(z), wide.wm.decoder.vector(z)
    assert torch.equal(e_old, e_new) and torch.equal(e_new, e_other)
    assert torch.allclose(d_old, d_new[:, :2], atol=1e-6) and d_new.shape == (3, 6)   # (matmul blocking differs)
    old_state = narrow.wm.opt.state_tensors()[0]
    new_state = wide.wm.opt.state_tensors()[0]
    assert set(old_state) == set(new_state)
    grown = [k for k in old_state if old_state[k].shape != new_state[k].shape]
    assert grown, "the vector layers' moments should have grown"
    for k in grown:
        axis = [i for i, (a, b) in enumerate(zip(old_state[k].shape, new_state[k].shape)) if a != b][0]
        assert torch.equal(new_state[k].narrow(axis, 0, old_state[k].shape[axis]), old_state[k])
        assert not new_state[k].narrow(axis, old_state[k].shape[axis], new_state[k].shape[axis] - old_state[k].shape[axis]).any()
    with pytest.raises(OfflineError, match="cannot widen"):
        widen_vector_input(narrow, build_agent(config, (16, 16, 3), 3, 6))


def _velocity_and_history_datasets(tmp_path: Path) -> list[str]:
    """tmp_path/v2 (velocity) and tmp_path/v6 (velocity + 2 past actions) over the same episodes; returns the common
    pretrain arguments of the widening tests."""
    base = tmp_path / "base"
    _write_dataset(base, 3)
    _with_vector(base, tmp_path / "v2", 2)
    _with_vector(base, tmp_path / "v6", 6)
    return ["--preset", "tiny", "--threads", "1", "--no-progress", "--set", "run.log_every=1", "--set", "imag_starts=32"]


def test_offline_pretrain_widens_the_vector_from_a_narrower_run(tmp_path):
    """--init-from a run whose vector is narrower than the dataset's (velocity -> velocity + past actions): the run
    continues with the old weights (first loss far below a fresh model's) and records the widening; narrowing is refused."""
    from redraw_training.cli.pretrain import main

    common = _velocity_and_history_datasets(tmp_path)
    assert main(["--dataset", str(tmp_path / "v2"), "--updates", "60", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["--dataset", str(tmp_path / "v6"), "--updates", "62", "--init-from", str(tmp_path / "a"), "--out", str(tmp_path / "b"),
                 "--set", "history_counterfactual=true", *common]) == 0
    assert main(["--dataset", str(tmp_path / "v6"), "--updates", "2", "--out", str(tmp_path / "fresh"), *common]) == 0
    rows = lambda run: [json.loads(line) for line in (tmp_path / run / "scalars.jsonl").read_text().splitlines()]  # noqa: E731
    assert rows("b")[0]["wm/image"] < 0.5 * rows("fresh")[0]["wm/image"], (rows("b")[0], rows("fresh")[0])
    assert "wm/reward_cf" in rows("b")[0] and "wm/reward_cf" not in rows("fresh")[0]   # --set applies to the continued run
    manifest = json.loads((tmp_path / "b" / "checkpoint" / "checkpoint.json").read_text())
    assert manifest["model"]["vector_dim"] == 6 and manifest["data"]["init_from"]["widened_vector"] == [2, 6]
    assert main(["--dataset", str(tmp_path / "v2"), "--updates", "70", "--init-from", str(tmp_path / "b"), "--out", str(tmp_path / "c"), *common]) == 2


def test_offline_pretrain_widens_a_velocity_run_into_a_policy_that_reads_the_past_actions(tmp_path):
    """--init-from a velocity-only run with --set history_to_policy=true: the world model keeps its 2-entry vector
    (its weights carry over unchanged), the actor and critic gain the 4 past-action inputs; the run records it."""
    from safetensors.torch import load_file

    from redraw_training.cli.pretrain import main

    common = _velocity_and_history_datasets(tmp_path)
    assert main(["--dataset", str(tmp_path / "v2"), "--updates", "40", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["--dataset", str(tmp_path / "v6"), "--updates", "42", "--init-from", str(tmp_path / "a"), "--out", str(tmp_path / "b"),
                 "--set", "history_to_policy=true", *common]) == 0
    manifest = json.loads((tmp_path / "b" / "checkpoint" / "checkpoint.json").read_text())
    assert manifest["model"]["vector_dim"] == 6 and manifest["config"]["history_to_policy"] is True
    assert manifest["data"]["init_from"]["widened_vector"] == [2, 6]
    a = load_file(str(tmp_path / "a" / "checkpoint" / "weights.safetensors"))
    b = load_file(str(tmp_path / "b" / "checkpoint" / "weights.safetensors"))
    assert a["wm.encoder.mlp.hidden.0.linear.weight"].shape == b["wm.encoder.mlp.hidden.0.linear.weight"].shape
    grown = b["task.actor.mlp.hidden.0.linear.weight"].shape[1] - a["task.actor.mlp.hidden.0.linear.weight"].shape[1]
    assert grown == 4
