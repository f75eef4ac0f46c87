"""configs.yaml: defaults at the paper's values, presets, overrides and their errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from redraw_training.config import (
    ConfigError,
    apply,
    config_from_dict,
    for_model,
    inactive,
    load_config,
    parse_override,
    preset_names,
)


def test_presets_exist():
    assert {"paper", "small", "tiny"} <= set(preset_names())


def test_paper_values_match_method():
    c = load_config(["paper"])
    assert (c.rssm.stoch, c.rssm.classes, c.rssm.units, c.rssm.unimix) == (256, 4, 512, 0.01)
    assert (c.encoder.cnn_depth, c.encoder.mlp_layers, c.encoder.mlp_units, c.encoder.minres) == (32, 5, 1024, 4)
    assert (c.loss_scales.dyn, c.loss_scales.rep, c.free_bits) == (1.5, 0.5, 1.0)
    assert (c.batch_size, c.batch_length, c.imag_horizon, c.discount_horizon, c.return_lambda) == (16, 64, 40, 333, 0.95)
    assert (c.model_opt.lr, c.model_opt.eps, c.model_opt.clip) == (1e-4, 1e-8, 1000.0)
    assert (c.actor_opt.lr, c.critic_opt.lr, c.actor_opt.eps, c.actor_opt.clip) == (3e-5, 3e-5, 1e-5, 100.0)
    assert (c.actent, c.slow_critic.fraction, c.retnorm.decay, c.retnorm.max) == (3e-4, 0.02, 0.99, 1.0)
    assert (c.actor.minstd, c.actor.maxstd, c.reward_head.bins, c.critic.bins) == (0.1, 1.0, 255, 255)
    assert (c.residual.members, c.residual.layers, c.residual.units, c.residual.lr) == (1, 1, 256, 1e-2)
    assert c.run.train_ratio == 512
    assert abs(c.calibrate.imag_start_fraction - 1 / 3) < 1e-9


def test_presets_and_overrides_layer_in_order():
    c = load_config(["small"], ["rssm.units=64", "model_opt.lr=1e-3", "env.kwargs.size=64", "env.perturb=reversed"])
    assert c.presets == ("small",)
    assert c.rssm.units == 64 and c.rssm.stoch == 32          # override beats preset, preset beats default
    assert c.model_opt.lr == pytest.approx(1e-3)               # '1e-3' (a string to PyYAML) becomes a float
    assert c["env.kwargs.size"] == 64 and c.env.perturb == "reversed"
    assert load_config(["small", "tiny"]).rssm.stoch == 16     # later presets win
    assert load_config(["tiny,small"]).rssm.stoch == 32


def test_config_round_trip_through_dict():
    c = load_config(["tiny"], ["env.kwargs.size=64"])
    back = config_from_dict(c.to_dict(), c.presets)
    assert back.to_dict() == c.to_dict() and back.presets == ("tiny",)
    assert apply(back, [], {"seed": 3}).seed == 3


@pytest.mark.parametrize("override, message", [
    ("rssm.unitz=3", "unknown config key 'rssm.unitz'"),
    ("rssm.units=abc", "expects a int"),
    ("rssm=3", "is a section"),
    ("nokey", "key=value"),
    ("compile=maybe", "expects a bool"),
])
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(["tiny"], [override])


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*paper"):
        load_config(["huge"])


def test_parse_override_yaml_values():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("env.perturb=") == ("env.perturb", "")


def test_config_is_read_only():
    c = load_config()
    with pytest.raises(ConfigError):
        c.seed = 3


@pytest.mark.parametrize("presets, overrides, message", [
    (["tiny", "dreamer"], ["loss_scales.dyn=2"], r"loss_scales.dyn: only a draw model reads it.*dreamer.dyn"),
    (["tiny", "dreamer"], ["free_bits=0.5"], r"free_bits: only a draw model.*dreamer.free_bits"),
    (["tiny", "dreamer"], ["rssm.units=64"], r"rssm.units: only a draw model reads it.*dreamer\.\*"),
    (["tiny"], ["dreamer.deter=32"], r"dreamer.deter: only a dreamer model reads it"),
    (["tiny"], ["history_to_policy=true", "history_counterfactual=true"], r"history_counterfactual: .*history_to_policy: true"),
    (["dreamer", "duckietown"], [], r"history_to_policy: it is true, but only a draw model reads it"),
])
def test_a_setting_the_model_cannot_act_on_is_an_error(presets, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(presets, overrides)


def test_size_presets_set_both_models_and_the_dreamer_preset_turns_the_history_switch_off():
    config = load_config(["duckietown", "dreamer"])
    assert config.model == "dreamer" and config.history_to_policy is False
    assert load_config(["tiny", "dreamer"], ["dreamer.deter=32"]).dreamer.deter == 32
    assert inactive(load_config(["duckietown"])) == {}


def test_compare_gives_each_model_the_overrides_it_reads():
    overrides = ["rssm.units=64", "dreamer.deter=32", "calibrate.updates=10", "free_bits=0.5"]
    assert for_model(overrides, "draw") == ["rssm.units=64", "calibrate.updates=10", "free_bits=0.5"]
    assert for_model(overrides, "dreamer") == ["dreamer.deter=32", "calibrate.updates=10"]


def test_a_stored_config_with_a_setting_that_never_acted_loads_with_a_warning(caplog):
    stored = load_config(["duckietown"]).to_dict()
    stored["history_counterfactual"] = True
    with caplog.at_level(logging.WARNING, logger="redraw_training"):
        config = config_from_dict(stored, ["duckietown"])
    assert config.history_counterfactual is True
    assert "history_counterfactual" in caplog.text and "do nothing" in caplog.text


def test_the_shipped_checkpoints_carry_no_setting_that_does_nothing():
    import json

    root = Path(__file__).resolve().parents[3] / "models"
    for name in ("duckietown_draw", "duckietown_dreamer"):
        manifest = json.loads((root / name / "checkpoint" / "checkpoint.json").read_text())
        assert inactive(config_from_dict(manifest["config"], manifest["presets"])) == {}, name
