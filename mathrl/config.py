"""Typed configs: frozen dataclasses loaded from YAML with `key.sub=value` overrides.

Every component owns one frozen dataclass (`RolloutConfig`, `ModelConfig`, ...) that
validates itself in `__post_init__`; a stage config nests them. This module turns
YAML + command-line overrides into those objects and makes every mistake name its key:

    >>> load_config(PrepareConfig, "configs/prepare_tiny.yaml", ["model.preset=tiny-25m"])

- an unknown key fails with the full dotted path and the keys allowed there;
- a value of the wrong type fails with the key, the value and the expected type;
- a component's own validation (`require(...)` in `__post_init__`) fails with the key
  prefixed by where the component sits in the stage config (`rollout.n`, not `n`).

Nothing here imports torch or any heavy library, so configs are checked before
anything expensive starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")
_FLOAT_LITERAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class ConfigError(ValueError):
    """A config value is wrong. `key` is the dotted path of the offending entry."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)

    def under(self, prefix: str) -> ConfigError:
        """The same error, seen from one level up in the config tree."""
        return ConfigError(f"{prefix}.{self.key}" if self.key else prefix, self.message)


def require(condition: bool, key: str, message: str) -> None:
    """Validation helper for `__post_init__`: `require(self.n > 0, "n", "must be > 0, got 0")`."""
    if not condition:
        raise ConfigError(key, message)


def from_dict(cls: type[T], data: dict[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass `cls` from a plain dict, checking keys and types recursively."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(prefix, f"expected a mapping of {_allowed_keys(cls)}, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        hint = difflib.get_close_matches(str(key), list(fields), n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ConfigError(_join(prefix, str(key)), f"unknown key{suggestion}; allowed here: {_allowed_keys(cls)}")
    kwargs = {name: _convert(hints[name], value, _join(prefix, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.under(prefix) if prefix else err
    except TypeError as err:  # a required field is missing
        raise ConfigError(prefix, str(err)) from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """The plain-dict form of a config (for saving the resolved config of a run)."""
    return dataclasses.asdict(cfg)


def load_config(cls: type[T], path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> T:
    """Read YAML `path` (optional), apply `key.sub=value` overrides, and build `cls`."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError("", f"config file {path} does not exist")
        with path.open() as f:
            try:
                data = yaml.safe_load(f) or {}
            except yaml.YAMLError as err:
                raise ConfigError("", f"{path} is not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError("", f"{path} must hold a mapping at top level, got {type(data).__name__}")
    for item in overrides:
        apply_override(data, item)
    return from_dict(cls, data)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML (`8`, `true`, `[1, 2]`)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError("", f"override '{item}' must look like key.sub=value")
    parts = key.strip().split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(".".join(parts[: depth + 1]), f"is a value ({child!r}), cannot set '{key}' inside it")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        node[parts[-1]] = raw


def parse_cli(cls: type[T], argv: typing.Sequence[str] | None = None, default_config: str | None = None) -> T:
    """Entry-point helper: `script.py [--config FILE] [key.sub=value ...]`.

    On a config error it prints the message (naming the key) and exits with status 2,
    so launch scripts fail before anything heavy starts."""
    import argparse

    parser = argparse.ArgumentParser(
        description=(cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else None,
        epilog="Overrides are key.sub=value pairs, e.g. model.preset=tiny-25m seed=1.",
    )
    parser.add_argument("--config", default=default_config, help=f"YAML config (default: {default_config})")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)
    try:
        return load_config(cls, args.config, args.overrides)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


# --- type checking -------------------------------------------------------------------


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check `value` against annotation `tp`, recursing into dataclasses and lists."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(option, value, key)
            except ConfigError as err:
                errors.append(err)
        raise errors[0] if len(errors) == 1 else ConfigError(key, f"{value!r} is not a {_type_name(tp)}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(key, f"{value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"expected a list, got {value!r}")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping, got {value!r}")
        key_tp, value_tp = typing.get_args(tp) or (Any, Any)
        return {_convert(key_tp, k, key): _convert(value_tp, v, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_LITERAL.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads `1e-5` (no dot) as a string
        raise ConfigError(key, f"expected a number, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"expected a string, got {value!r}")
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _allowed_keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls) if f.init)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
