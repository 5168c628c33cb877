"""Run folders: what ``train`` writes and presets ship. Same layout for both:
``config.json`` (the entry config), ``model.weights.h5`` and ``metadata.json`` (entry name,
versions, date, training data and command, measured metrics). ``loczoo.training`` adds
``history.csv``, ``curves.png``, ``logs/`` and, until the run completes, ``checkpoint/``."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
from pathlib import Path

from loczoo.errors import LoczooError
from loczoo.outputs import atomic_path

CONFIG = "config.json"
WEIGHTS = "model.weights.h5"
METADATA = "metadata.json"


def versions() -> dict:
    import keras
    import numpy
    import tensorflow as tf

    from loczoo import __version__

    return {"loczoo": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def is_run_folder(path: str | Path) -> bool:
    path = Path(path)
    return all((path / name).is_file() for name in (CONFIG, WEIGHTS, METADATA))


def read_metadata(folder: str | Path) -> dict:
    try:
        return json.loads((Path(folder) / METADATA).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise LoczooError(f"cannot read {Path(folder) / METADATA}: {err}") from None


def write_run_folder(folder: str | Path, *, entry: str, config, model, metadata: dict,
                     overwrite: bool = False) -> Path:
    """Write a complete run folder atomically: into ``folder.tmp``, then renamed."""
    from loczoo.config import save_json

    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise LoczooError(f"output {folder} exists; pass --overwrite to replace it")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_json(config, tmp / CONFIG)
    _without_optimizer(entry, config, model).save_weights(tmp / WEIGHTS)
    write_metadata(tmp, entry=entry, parameters=model.count_params(), metadata=metadata)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def write_metadata(folder: str | Path, *, entry: str, parameters: int, metadata: dict) -> None:
    """``folder/metadata.json`` (written to a temporary name, then renamed): the entry, date,
    versions and parameter count, then ``metadata``."""
    meta = {"entry": entry, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "versions": versions(), "parameters": int(parameters), **metadata}
    with atomic_path(Path(folder) / METADATA) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")


def save_weights(model, path: str | Path) -> None:
    """``model.save_weights(path)`` through a temporary name, so that ``path`` always holds
    complete weights (Keras wants names ending in .weights.h5, hence the prefix)."""
    path = Path(path)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _without_optimizer(entry: str, config, model):
    """A fresh, uncompiled copy holding the model's weights: a compiled model would also save
    its optimizer state (twice the size of the weights for Adam), which inference never needs.
    (``keras.models.clone_model`` keeps the optimizer, so the entry builds the copy.)"""
    if getattr(model, "optimizer", None) is None:
        return model
    from loczoo.registry import get_entry

    plain = get_entry(entry).build_model(config)
    plain.set_weights(model.get_weights())
    return plain
