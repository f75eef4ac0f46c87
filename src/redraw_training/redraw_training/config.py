"""Configuration: one YAML of defaults plus named presets (configs.yaml), and `key=value` overrides.

    config = load_config(["small"], ["rssm.units=128", "env.kwargs.size=64"])
    config.rssm.units        # attribute access on nested sections
    config["rssm.units"]     # dotted access
    config.to_dict()         # plain nested dict (JSON/YAML-serialisable), stored in checkpoints

Every key a preset or override sets must exist in `defaults` (except inside free-form dict sections such
as `env.kwargs`), and its value must have the default's type (ints are accepted where floats are
expected). Mistakes raise ConfigError naming the key, what was expected and what was found.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from redraw_common.errors import RedrawInputError

CONFIG_FILE = Path(__file__).with_name("configs.yaml")
#: Sections whose keys are free-form (anything may be added by presets and overrides).
FREEFORM = ("env.kwargs",)
#: Keys only one world model reads (agents.agent_class picks the model); the other model ignores them. Size presets
#: set both models' sections; a `--set` of a key the chosen model ignores, or a switch turned on that cannot act, is
#: an error (check_active).
MODEL_KEYS = {
    "draw": ("rssm", "residual", "loss_scales.dyn", "loss_scales.rep", "free_bits", "finetune.draw_dyn",
             "history_to_policy", "history_counterfactual"),
    "dreamer": ("dreamer",),
}
#: where the other model keeps what a key is for
_COUNTERPART = {"loss_scales.dyn": "dreamer.dyn", "loss_scales.rep": "dreamer.rep", "free_bits": "dreamer.free_bits",
                "rssm": "dreamer", "dreamer": "rssm"}


class ConfigError(RedrawInputError):
    """A preset, an override or a stored config does not fit configs.yaml."""


def _read_yaml(path: Path) -> dict[str, Any]:
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or "defaults" not in data:
        raise ConfigError(f"{path}: expected a mapping with 'defaults' and 'presets', found {type(data).__name__}")
    return data


def preset_names() -> list[str]:
    return sorted(_read_yaml(CONFIG_FILE).get("presets", {}))


class Config(Mapping):
    """Read-only nested configuration with attribute and dotted-key access."""

    def __init__(self, data: Mapping[str, Any], presets: Iterable[str] = ()):
        object.__setattr__(self, "_data", copy.deepcopy(dict(data)))
        object.__setattr__(self, "presets", tuple(presets))

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}; keys: {sorted(self._data)}") from None
        return Config(value) if isinstance(value, dict) else value

    def __setattr__(self, name, value):
        raise ConfigError("Config is read-only; use config.update({...}) to get a changed copy")

    def __getitem__(self, key: str) -> Any:
        node: Any = self._data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(key)
            node = node[part]
        return Config(node) if isinstance(node, dict) else node

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Config(presets={list(self.presets)}, {self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def flat(self) -> dict[str, Any]:
        return _flatten(self._data)

    def update(self, changes: Mapping[str, Any], presets: Iterable[str] = ()) -> Config:
        """A copy with `changes` applied: nested dicts or dotted keys, type-checked against this config."""
        data = copy.deepcopy(self._data)
        for key, value in _flatten(changes, keep_empty=True).items():
            _assign(data, key, value)
        return Config(data, tuple(self.presets) + tuple(presets))


def _flatten(d: Mapping[str, Any], prefix: str = "", keep_empty: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and (value or not keep_empty) and full not in FREEFORM:
            out.update(_flatten(value, full + ".", keep_empty))
        elif isinstance(value, Mapping) and full in FREEFORM:
            if not value:
                out[full] = {}
            for k, v in value.items():
                out[f"{full}.{k}"] = v
        else:
            out[full] = value
    return out


def _coerce(key: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads '1e-3' (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        if value is None:
            return ""
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
    elif default is None or isinstance(default, list):
        return value
    raise ConfigError(f"config key {key!r} expects a {type(default).__name__} (default {default!r}), found {type(value).__name__} {value!r}")


def _assign(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        if part not in node or not isinstance(node[part], dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"unknown config key {key!r}: {where!r} is not a section; sections: {sorted(k for k, v in node.items() if isinstance(v, dict))}")
        node = node[part]
    last = parts[-1]
    if any(key.startswith(section + ".") for section in FREEFORM):
        node[last] = value
        return
    if key in FREEFORM:
        node[last] = dict(value) if isinstance(value, dict) else _coerce(key, {}, value)
        return
    if last not in node:
        raise ConfigError(f"unknown config key {key!r}; keys here: {sorted(node)}")
    if isinstance(node[last], dict) and not isinstance(value, dict):
        raise ConfigError(f"config key {key!r} is a section with keys {sorted(node[last])}; set one of them, e.g. {key}.{next(iter(node[last]), 'x')}=...")
    node[last] = _coerce(key, node[last], value)


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=value' -> ('a.b', yaml-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override must look like key=value (e.g. rssm.units=128), found {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return key, value


def _owner(key: str) -> tuple[str, str] | None:
    """(model, owned key or section) when only one model reads `key`."""
    for model, owned in MODEL_KEYS.items():
        for prefix in owned:
            if key == prefix or key.startswith(prefix + "."):
                return model, prefix
    return None


def inactive(config: Config, set_keys: Iterable[str] = ()) -> dict[str, str]:
    """Settings that cannot act in `config`, {key: why}: keys among `set_keys` that the chosen model does not read,
    and switches that are on (true) where nothing reads them."""
    out: dict[str, str] = {}
    for key in set_keys:
        owner = _owner(key)
        if owner is not None and owner[0] != config.model:
            model, prefix = owner
            other = _COUNTERPART.get(prefix)
            hint = ""
            if other in ("rssm", "dreamer"):
                hint = f"; a {config.model} model's latent dynamics are set in {other}.*"
            elif other:
                hint = f"; a {config.model} model reads {other}"
            out[key] = f"only a {model} model reads it, this config's model is {config.model}{hint}"
    for key, value in config.flat().items():
        owner = _owner(key)
        if value is True and owner is not None and owner[0] != config.model:
            out[key] = f"it is true, but only a {owner[0]} model reads it and this config's model is {config.model}"
    if config.model == "draw" and config.history_counterfactual and config.history_to_policy:
        out["history_counterfactual"] = ("it swaps the action history inside the world model's vector, and with "
                                         "history_to_policy: true the past actions go to the actor and critic instead")
    return out


def for_model(overrides: Iterable[str], model: str) -> list[str]:
    """The 'key=value' overrides that a `model` model reads: those of keys only another model reads are left out
    (compare's --set applies to every method, and a size key of one model is not a mistake for the others)."""
    kept = []
    for text in overrides:
        owner = _owner(parse_override(text)[0])
        if owner is None or owner[0] == model:
            kept.append(text)
    return kept


def _describe(problems: Mapping[str, str]) -> str:
    return "; ".join(f"{key}: {why}" for key, why in problems.items())


def load_config(presets: Iterable[str] = (), overrides: Iterable[str] | Mapping[str, Any] = (), path: Path = CONFIG_FILE) -> Config:
    """defaults <- presets (in order) <- overrides."""
    return apply(Config(_read_yaml(path)["defaults"]), presets, overrides, path)


def apply(config: Config, presets: Iterable[str] = (), overrides: Iterable[str] | Mapping[str, Any] = (),
          path: Path = CONFIG_FILE) -> Config:
    """`config` <- presets (in order) <- overrides ('key=value' strings or a mapping). A setting of this call that
    cannot act in the result (`inactive`) is a ConfigError."""
    available = _read_yaml(path).get("presets", {}) or {}
    names = [p for name in presets for p in str(name).split(",") if p]
    set_by_presets: set[str] = set()
    for name in names:
        if name not in available:
            raise ConfigError(f"unknown preset {name!r}; presets in {path.name}: {sorted(available)}")
        config = config.update(available[name] or {}, presets=[name])
        set_by_presets |= set(_flatten(available[name] or {}))
    changes = dict(overrides) if isinstance(overrides, Mapping) else dict(parse_override(o) for o in overrides)
    config = config.update(changes)
    overridden = set(_flatten(changes, keep_empty=True))
    touched = overridden | set_by_presets
    # a preset sizes both models' sections; what this call turned on, or set by hand, must act
    problems = {k: why for k, why in inactive(config, overridden).items()
                if k in touched or "model" in touched}
    if problems:
        raise ConfigError(f"setting(s) that would do nothing: {_describe(problems)}")
    return config


def config_from_dict(data: Mapping[str, Any], presets: Iterable[str] = ()) -> Config:
    """Rebuild a stored config (e.g. from a checkpoint) on top of today's defaults, so keys added since still
    get their default values and keys that no longer exist are reported."""
    presets = tuple(presets)
    unknown = [p for p in presets if p not in preset_names()]
    if unknown:   # the names are recorded as provenance; one configs.yaml does not define is a corrupted or foreign config
        raise ConfigError(f"the stored config names preset(s) {unknown} that configs.yaml does not define; known: {preset_names()}")
    config = Config(_read_yaml(CONFIG_FILE)["defaults"]).update(dict(data)).update({}, presets=presets)
    problems = inactive(config)
    if problems:   # stored weights were trained this way, and the setting never acted: load them, say so
        logging.getLogger("redraw_training").warning("the stored config has setting(s) that do nothing: %s", _describe(problems))
    return config
