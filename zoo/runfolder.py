"""Run folders: the one place that names their files and reads and writes them.

What ``train`` and ``finetune`` write into a run folder ``OUT`` (presets ship the weights, the
record and the model card in the same layout, ``loczoo.presets``):

- ``CONFIG`` (``config.json``): the entry config, with its data constants;
- ``WEIGHTS`` (``model.weights.h5``): the inference weights, without optimizer state;
- ``METADATA`` (``metadata.json``): the record: entry name, versions, date, parameter count,
  training data and command, history, measured metrics, calibration;
- ``HISTORY`` (``history.csv``, one row per epoch), ``CURVES`` (``curves.png``, loss curves) and
  ``LOGS`` (``logs/``, TensorBoard scalars);
- ``CHECKPOINT`` (``checkpoint/``, until the run completes): what ``--resume`` continues from,
  ``CHECKPOINT_WEIGHTS`` (``train.weights.h5``, with optimizer state) and ``STATE``
  (``state.json``, see ``loczoo.training``);
- ``MODEL_CARD`` (``MODEL_CARD.md``, optional): what the model is and how well it does.

Every file is written to a temporary name and renamed (``loczoo.outputs.atomic_path``), so that
a reader never sees half a file. Readers turn a missing, unreadable or malformed file into a
LoczooError that names it.
"""

from __future__ import annotations

import csv
import datetime
import json
import platform
import shutil
from pathlib import Path

from loczoo.errors import LoczooError
from loczoo.outputs import atomic_folder, atomic_path

CONFIG = "config.json"
WEIGHTS = "model.weights.h5"
METADATA = "metadata.json"
HISTORY = "history.csv"
CURVES = "curves.png"
LOGS = "logs"
CHECKPOINT = "checkpoint"
CHECKPOINT_WEIGHTS = "train.weights.h5"
STATE = "state.json"
MODEL_CARD = "MODEL_CARD.md"


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


def _read_json(path: Path):
    """The parsed JSON of ``path``; a missing, unreadable or malformed file is a LoczooError
    that names it."""
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise LoczooError(f"cannot read {path}: {err.strerror or err}") from None
    except ValueError as err:  # JSONDecodeError, or UnicodeDecodeError for binary garbage
        raise LoczooError(f"{path} is not valid JSON ({err})") from None


def _write_json(path: Path, value, indent: int = 2) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=indent) + "\n")


# The entry config.

def write_config(folder: str | Path, config) -> None:
    """``folder/config.json``: the entry config ``config`` (a config dataclass)."""
    from loczoo.config import save_json

    with atomic_path(Path(folder) / CONFIG) as tmp:
        save_json(config, tmp)


def read_config(folder: str | Path, cls):
    """The ``cls`` config in ``folder/config.json``; every problem (unreadable, not JSON, a bad
    field) is a LoczooError that names the file."""
    from loczoo.config import load_json

    return load_json(cls, Path(folder) / CONFIG)


# The record.

def read_metadata(folder: str | Path) -> dict:
    """``folder/metadata.json``: a JSON object with the ``entry`` (a string) that wrote it; a
    missing, unreadable or malformed file is a LoczooError that names it."""
    path = Path(folder) / METADATA
    meta = _read_json(path)
    if not isinstance(meta, dict):
        raise LoczooError(f"{path} must hold a JSON object ({{...}}), got "
                          f"{type(meta).__name__}")
    if not isinstance(meta.get("entry"), str):
        got = "none" if "entry" not in meta else repr(meta["entry"])
        raise LoczooError(f"{path} must name the zoo entry that wrote it (\"entry\": a string), "
                          f"got {got}")
    return meta


def write_metadata(folder: str | Path, metadata: dict, *, entry: str | None = None,
                   parameters: int | None = None) -> dict:
    """Write ``folder/metadata.json`` and return what was written. With ``entry`` (and
    ``parameters``, the model's parameter count) a new record: the entry, date, versions and
    parameter count, then ``metadata``. Without, ``metadata`` as it is (a record read before,
    e.g. with changes): it must name its entry."""
    if entry is not None:
        if parameters is None:
            raise ValueError("a new record needs the model's parameter count")
        metadata = {"entry": entry, "date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "versions": versions(), "parameters": int(parameters), **metadata}
    elif not isinstance(metadata.get("entry"), str):
        raise ValueError(f"a {METADATA} record must name its entry, got {metadata.get('entry')!r}")
    _write_json(Path(folder) / METADATA, metadata)
    return metadata


def update_metadata(folder: str | Path, **changes) -> dict:
    """Set the top-level keys ``changes`` in ``folder/metadata.json``, keeping the others, and
    return the new record (the file is replaced at once, never half-written)."""
    return write_metadata(folder, {**read_metadata(folder), **changes})


# Weights.

def save_weights(model, path: str | Path) -> None:
    """``model.save_weights(path)`` through a temporary name, so that ``path`` always holds
    complete weights."""
    with atomic_path(path) as tmp:
        model.save_weights(tmp)


def write_weights(folder: str | Path, model) -> None:
    """``folder/model.weights.h5``: the weights of ``model`` (build it uncompiled for weights
    without optimizer state)."""
    save_weights(model, Path(folder) / WEIGHTS)


def weights_path(folder: str | Path) -> Path:
    return Path(folder) / WEIGHTS


def model_card_path(folder: str | Path) -> Path:
    return Path(folder) / MODEL_CARD


# Training history.

def write_history(folder: str | Path, history: list[dict]) -> None:
    """``folder/history.csv``: one row per epoch, a column per key of any row."""
    columns = list(dict.fromkeys(key for row in history for key in row))
    with atomic_path(Path(folder) / HISTORY) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(history)


def read_history(folder: str | Path) -> list[dict]:
    """The rows of ``folder/history.csv``: numbers as int or float; an empty cell (a key that
    row lacks) is left out."""
    path = Path(folder) / HISTORY
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise LoczooError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None

    def number(text: str):
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text

    return [{key: number(value) for key, value in row.items() if value not in ("", None)}
            for row in rows]


def write_curves(folder: str | Path, image) -> None:
    """``folder/curves.png``: ``image`` (a PIL image of the loss curves)."""
    with atomic_path(Path(folder) / CURVES) as tmp:
        image.save(tmp, format="PNG")


def logs_folder(folder: str | Path) -> Path:
    return Path(folder) / LOGS


# The resume checkpoint.

def checkpoint_folder(folder: str | Path) -> Path:
    return Path(folder) / CHECKPOINT


def write_checkpoint(folder: str | Path, model, state: dict) -> None:
    """``folder/checkpoint/``, replaced as a whole: the weights of the compiled ``model`` with
    optimizer state and ``state`` (a JSON object) as ``state.json``."""
    with atomic_folder(checkpoint_folder(folder)) as tmp:
        save_weights(model, tmp / CHECKPOINT_WEIGHTS)
        (tmp / STATE).write_text(json.dumps(state, indent=1) + "\n")


def read_state(folder: str | Path):
    """The parsed ``folder/checkpoint/state.json`` (not checked: ``loczoo.training`` does); a
    missing, unreadable or malformed file is a LoczooError that names it."""
    return _read_json(checkpoint_folder(folder) / STATE)


def remove_checkpoint(folder: str | Path) -> None:
    shutil.rmtree(checkpoint_folder(folder), ignore_errors=True)
