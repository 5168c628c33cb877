"""Run folders: what ``train`` and ``finetune`` write, ``config.json`` (the entry config),
``model.weights.h5`` and ``metadata.json`` (entry name, versions, date, training data and
command, measured metrics); presets ship the last two (``loczoo.presets``). ``loczoo.training`` adds
``history.csv``, ``curves.png``, ``logs/`` and, until the run completes, ``checkpoint/``."""

from __future__ import annotations

import datetime
import json
import platform
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
    """``folder/metadata.json``: a JSON object with the ``entry`` (a string) that wrote it; a
    missing, unreadable or malformed file is a LoczooError that names it."""
    path = Path(folder) / METADATA
    try:
        meta = json.loads(path.read_text())
    except OSError as err:
        raise LoczooError(f"cannot read {path}: {err.strerror or err}") from None
    except ValueError as err:  # JSONDecodeError, or UnicodeDecodeError for binary garbage
        raise LoczooError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise LoczooError(f"{path} must hold a JSON object ({{...}}), got "
                          f"{type(meta).__name__}")
    if not isinstance(meta.get("entry"), str):
        got = "none" if "entry" not in meta else repr(meta["entry"])
        raise LoczooError(f"{path} must name the zoo entry that wrote it (\"entry\": a string), "
                          f"got {got}")
    return meta


def write_metadata(folder: str | Path, *, entry: str, parameters: int, metadata: dict) -> None:
    """``folder/metadata.json`` (written to a temporary name, then renamed): the entry, date,
    versions and parameter count, then ``metadata``."""
    meta = {"entry": entry, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "versions": versions(), "parameters": int(parameters), **metadata}
    with atomic_path(Path(folder) / METADATA) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")


def save_weights(model, path: str | Path) -> None:
    """``model.save_weights(path)`` through a temporary name, so that ``path`` always holds
    complete weights."""
    with atomic_path(path) as tmp:
        model.save_weights(tmp)
