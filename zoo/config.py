"""Helpers shared by every entry config: dataclass <-> JSON, and ``key=value`` overrides.

Configs are frozen dataclasses with JSON-safe fields (numbers, strings, bools, tuples, nested
config dataclasses). Tuples become lists in JSON and are turned back into tuples on load.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

from loczoo.errors import LoczooError


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def _convert(value, annotation):
    """Turn a JSON value back into the type a dataclass field declares."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation) and isinstance(value, dict):
        return from_dict(annotation, value)
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in typing.get_args(annotation):
            if arg is type(None):
                continue
            if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return from_dict(arg, value)
            if typing.get_origin(arg) is tuple and isinstance(value, (list, tuple)):
                return tuple(value)
    return value


def from_dict(cls, data: dict):
    """Build config ``cls`` from a dict; unknown keys are an error that names them."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise LoczooError(f"unknown {cls.__name__} field(s) {unknown}; known: {sorted(names)}")
    return cls(**{k: _convert(v, hints[k]) for k, v in data.items()})


def save_json(config, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(config), indent=2) + "\n")


def load_json(cls, path: str | Path):
    return from_dict(cls, json.loads(Path(path).read_text()))


def with_overrides(config, overrides: list[str]):
    """Apply ``["key=value", "imaging.camera.em_gain=300", ...]``; values are parsed as JSON
    (so ``1e-3``, ``[1, 2]``, ``null`` and ``true`` work) and fall back to plain strings."""
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
    try:
        return from_dict(type(config), data)
    except (TypeError, ValueError) as err:
        raise LoczooError(f"bad override: {err}") from None


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
