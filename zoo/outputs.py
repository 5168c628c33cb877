"""Writing outputs safely: refuse to overwrite by accident, write to a temporary name beside
the target and rename, so that a failure never leaves half a file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loczoo.errors import LoczooError


def prepare_output(path: str | Path, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; the parent folder must exist."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise LoczooError(f"output {path} exists; pass --overwrite to replace it")
    if path.is_dir():
        raise LoczooError(f"output {path} is a folder; expected a file name")
    if not path.parent.is_dir():
        raise LoczooError(f"output folder {path.parent} does not exist")
    return path


def prepare_folder_output(path: str | Path, overwrite: bool) -> Path:
    """``prepare_output`` for an output that is a folder."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise LoczooError(f"output {path} exists; pass --overwrite to replace it")
    if path.exists() and not path.is_dir():
        raise LoczooError(f"output {path} is a file; expected a folder name")
    if not path.parent.is_dir():
        raise LoczooError(f"output folder {path.parent} does not exist")
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.
    The temporary name ends with the whole target name, for writers that check it (Keras
    wants ``.weights.h5``)."""
    path = Path(path)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise LoczooError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (an existing
    folder there is removed only after the new one is complete)."""
    import shutil

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    old = path.with_name(f".{path.name}.old{os.getpid()}")
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except OSError as err:
        raise LoczooError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)
