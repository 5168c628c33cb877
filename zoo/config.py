"""Helpers shared by every entry config: dataclass <-> JSON, and ``key=value`` overrides.

Configs are frozen dataclasses with JSON-safe fields (numbers, strings, bools, tuples, nested
config dataclasses). Tuples become lists in JSON and are turned back into tuples on load.
Every value read from JSON or an override is checked against the field's declared type before
the config is built: numbers must be finite (JSON readers accept ``NaN`` and ``Infinity``), an
integer field takes no fraction, a string is not a number, and a few runtime fields common to
the entries have sane ranges (``batch_size`` >= 1, ``learning_rate`` > 0, ...). Errors name the
field by its dotted path, e.g. ``imaging.camera.baseline_adu must be a finite number, got nan``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path

from loczoo.errors import LoczooError

# Runtime fields that several entries share, by name, wherever they appear: (bound, inclusive).
# Entry-specific limits stay in each config's __post_init__.
FIELD_MINIMUMS: dict[str, tuple[float, bool]] = {
    "batch_size": (1, True),
    "learning_rate": (0, False),
    "threshold": (0, True),
    "weight_decay": (0, True),
    "upsampling": (1, True),
    "patch_size": (1, True),
}


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def _describe(value) -> str:
    return repr(value) if isinstance(value, (str, list, dict, tuple)) else str(value)


def _number(value, name: str, integer: bool):
    """A finite int or float (an integral float for an int field), never a bool or string."""
    kind = "an integer" if integer else "a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LoczooError(f"{name} must be {kind}, got {_describe(value)}")
    if not math.isfinite(value):
        raise LoczooError(f"{name} must be a finite number, got {value}")
    if integer and isinstance(value, float):
        if not value.is_integer():
            raise LoczooError(f"{name} must be an integer, got {value}")
        value = int(value)
    return value


def _check(value, annotation, name: str):
    """``value`` as field type ``annotation`` wants it (lists -> tuples, dicts -> configs), or
    LoczooError naming the field ``name``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        options = [arg for arg in options if arg is not type(None)]
        if len(options) == 1:
            return _check(value, options[0], name)
        for arg in options:  # the first type the value fits
            try:
                return _check(value, arg, name)
            except LoczooError:
                continue
        raise LoczooError(f"{name} has the wrong type: {_describe(value)}")
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise LoczooError(f"{name} must be a section ({{...}}) of {annotation.__name__} "
                              f"fields, got {_describe(value)}")
        return _build(annotation, value, f"{name}.")
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise LoczooError(f"{name} must be a list, got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif args and len(value) != len(args):
            raise LoczooError(f"{name} must be a list of {len(args)} values, got "
                              f"{_describe(list(value))}")
        if not args:
            return tuple(value)
        return tuple(_check(v, a, f"{name}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if annotation is bool:
        if not isinstance(value, bool):
            raise LoczooError(f"{name} must be true or false, got {_describe(value)}")
        return value
    if annotation in (int, float):
        return _number(value, name, integer=annotation is int)
    if annotation is str:
        if not isinstance(value, str):
            raise LoczooError(f"{name} must be a string, got {_describe(value)}")
        return value
    _check_finite(value, name)  # a type this checker does not know: at least no NaN
    return value


def _check_finite(value, name: str) -> None:
    """Every number in ``value`` (nested lists, dicts, configs) is finite."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = to_dict(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise LoczooError(f"{name} must be a finite number, got {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite(item, f"{name}[{i}]")


def _check_minimum(name: str, field: str, value) -> None:
    if field not in FIELD_MINIMUMS or not isinstance(value, (int, float)):
        return
    bound, inclusive = FIELD_MINIMUMS[field]
    if value < bound or (value == bound and not inclusive):
        raise LoczooError(f"{name} must be {'>=' if inclusive else '>'} {bound}, got {value}")


def _build(cls, data: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        where = f" in {prefix[:-1]}" if prefix else ""
        raise LoczooError(f"unknown {cls.__name__} field(s) {unknown}{where}; "
                          f"known: {sorted(names)}")
    values = {}
    for key, value in data.items():
        values[key] = _check(value, hints[key], f"{prefix}{key}")
        _check_minimum(f"{prefix}{key}", key, values[key])
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise LoczooError(f"bad {prefix[:-1] or cls.__name__} settings: {err}") from None


def from_dict(cls, data: dict, prefix: str = ""):
    """Build config ``cls`` from a dict. Unknown keys, values of the wrong type, NaN or
    infinite numbers are errors that name the field (``prefix`` goes before its name, e.g.
    ``"imaging.camera."`` for a camera section)."""
    if not isinstance(data, dict):
        raise LoczooError(f"a {cls.__name__} must be a JSON object ({{...}}), got "
                          f"{type(data).__name__}")
    config = _build(cls, data, prefix)
    _check_finite(config, prefix[:-1])
    return config


def save_json(config, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(config), indent=2) + "\n")


def load_json(cls, path: str | Path):
    """Config ``cls`` from a JSON file; every problem (unreadable, not JSON, a bad field) is a
    LoczooError that names the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise LoczooError(f"cannot read {path}: {err.strerror or err}") from None
    except ValueError as err:  # JSONDecodeError, or UnicodeDecodeError for binary garbage
        raise LoczooError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise LoczooError(f"{path} must hold a JSON object ({{...}}) of {cls.__name__} "
                          f"fields, got {type(data).__name__}")
    try:
        return from_dict(cls, data)
    except LoczooError as err:
        raise LoczooError(f"{path}: {err}") from None


def with_overrides(config, overrides: list[str], prefix: str = ""):
    """Apply ``["key=value", "imaging.camera.em_gain=300", ...]``; values are parsed as JSON
    (so ``1e-3``, ``[1, 2]``, ``null`` and ``true`` work) and fall back to plain strings. The
    result is checked as ``from_dict`` checks (``prefix`` names where ``config`` sits, e.g.
    ``"imaging.camera."``)."""
    data = to_dict(config)
    for item in overrides:
        if "=" not in item:
            raise LoczooError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise LoczooError(f"override {key!r}: {part!r} is not a config section")
            node = node[part]
        if parts[-1] not in node:
            raise LoczooError(f"override {key!r}: no field {parts[-1]!r}; known: {sorted(node)}")
        node[parts[-1]] = value
    return from_dict(type(config), data, prefix)


def check_range(name: str, value, low: float = float("-inf"), high: float = float("inf")):
    """Validate a (lo, hi) pair: two numbers, lo <= hi, within [low, high]."""
    if len(value) != 2 or not value[0] <= value[1]:
        raise LoczooError(f"{name} must be a (low, high) pair with low <= high, got {value!r}")
    if value[0] < low or value[1] > high:
        raise LoczooError(f"{name} must lie within [{low}, {high}], got {value!r}")


def named_config(config_cls, name: str):
    """``default``, ``tiny`` or one of the config class's ``variants()`` (if it has any)."""
    if name == "default":
        return config_cls.default()
    if name == "tiny":
        return config_cls.tiny()
    variants = config_cls.variants() if hasattr(config_cls, "variants") else {}
    if name not in variants:
        known = ", ".join(["default", "tiny", *variants])
        raise LoczooError(f"unknown configuration {name!r}; known: {known}")
    return variants[name]
