"""Writing outputs safely. Every check runs before the first byte is written or deleted:

- an existing output is replaced only with ``overwrite``, and only if it is what loczoo itself
  writes there: a file with the output's suffix, or a folder loczoo wrote (its marker file
  ``.loczoo-output``, or a run folder's ``metadata.json``) or an empty one;
- an output is never an input, never contains one (an ancestor folder) and never resolves to
  one through a link; two outputs of one command are never the same file;
- files are written to a temporary name beside the target and renamed, so that a failure or
  an interruption (Ctrl-C, or SIGTERM, which the CLI turns into Ctrl-C) never leaves half a
  file; missing parent folders are created at that moment, not before.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from loczoo.errors import LoczooError

OUTPUT_MARKER = ".loczoo-output"  # in every folder loczoo writes: --overwrite may replace it
NAME_MAX = 255  # bytes in one file name on common file systems


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()
    except OSError as err:  # e.g. a name longer than the file system allows
        raise LoczooError(f"output {path}: {err.strerror or err}") from None


def _check_name(path: Path) -> None:
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise LoczooError(f"output {path.name[:40]}...: the file name has "
                          f"{len(os.fsencode(path.name))} bytes, more than the {NAME_MAX} the "
                          f"file system allows")


def _check_parent(path: Path) -> None:
    """The nearest existing ancestor must be a folder (missing ones are created on writing)."""
    parent = path.absolute().parent
    while not _exists(parent):
        parent = parent.parent
    if not parent.is_dir():
        raise LoczooError(f"output {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise LoczooError(f"output {path}: folder {parent} is not writable")


def check_not_input(output: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an output that is, contains or resolves to one of ``inputs`` (files or folders;
    None entries are skipped)."""
    out = Path(output).resolve()
    for given in inputs:
        if given is None or str(given) == "":
            continue
        source = Path(given)
        resolved = source.resolve()
        same = out == resolved
        if not same and _exists(Path(output)) and source.exists():
            same = os.path.samefile(output, source)  # hard links and bind mounts
        if same:
            raise LoczooError(f"output {output} is the input {given}; choose another output")
        if resolved.is_relative_to(out):
            raise LoczooError(f"output {output} contains the input {given}; choose another "
                              f"output")


def check_distinct(*outputs: str | Path | None) -> None:
    """Two outputs of one command may not be the same file."""
    seen = {}
    for output in outputs:
        if output is None:
            continue
        key = Path(output).resolve()
        if key in seen:
            raise LoczooError(f"outputs {seen[key]} and {output} are the same file")
        seen[key] = output


def prepare_output(path: str | Path, overwrite: bool, *, inputs: Iterable = (),
                   suffixes: Iterable[str] | None = None) -> Path:
    """Check an output file before any work: its suffix (one of ``suffixes``, lower case with
    the dot), not an input, and an existing file only with ``overwrite`` and only if it is a
    plain file of the same kind."""
    path = Path(path)
    _check_name(path)
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if path.suffix.lower() not in suffixes:
            raise LoczooError(f"output {path} must end in {' or '.join(suffixes)}")
    check_not_input(path, inputs)
    if _exists(path):
        if path.is_dir():
            raise LoczooError(f"output {path} is a folder; expected a file name")
        if not overwrite:
            raise LoczooError(f"output {path} exists; pass --overwrite to replace it")
        if not path.is_file():
            raise LoczooError(f"output {path} is not a regular file; loczoo does not replace it")
    _check_parent(path)
    return path


def is_loczoo_folder(path: str | Path) -> bool:
    """A folder loczoo wrote: its marker file or a run folder's metadata.json with the entry
    (run folders and presets are recognised by their record)."""
    # Here, not at the top: loczoo.runfolder writes through this module.
    from loczoo.runfolder import METADATA

    path = Path(path)
    if (path / OUTPUT_MARKER).is_file():
        return True
    try:
        return "entry" in json.loads((path / METADATA).read_text())
    except (OSError, ValueError, TypeError):
        return False


def prepare_folder_output(path: str | Path, overwrite: bool, *, inputs: Iterable = ()) -> Path:
    """``prepare_output`` for an output that is a folder: an existing one is replaced only with
    ``overwrite`` and only if loczoo wrote it (``is_loczoo_folder``) or it is empty."""
    path = Path(path)
    _check_name(path)
    check_not_input(path, inputs)
    if _exists(path):
        if not path.is_dir():
            raise LoczooError(f"output {path} is a file; expected a folder name")
        if not overwrite:
            raise LoczooError(f"output {path} exists; pass --overwrite to replace it")
        if any(path.iterdir()) and not is_loczoo_folder(path):
            raise LoczooError(f"output {path} holds files loczoo did not write; --overwrite "
                              f"replaces only loczoo's own folders (run folders, exports); "
                              f"choose another output")
    _check_parent(path)
    return path


def write_marker(folder: str | Path, kind: str) -> None:
    """Mark ``folder`` as loczoo's output of ``kind`` (what ``--overwrite`` may replace)."""
    (Path(folder) / OUTPUT_MARKER).write_text(json.dumps({"written_by": "loczoo",
                                                          "kind": kind}) + "\n")


def _temporary_name(path: Path, tag: str) -> Path:
    """A hidden name beside ``path`` that ends with the whole target name (Keras checks a
    ``.weights.h5`` suffix), shortened at the front to fit the file-name limit."""
    prefix = f".{tag}{os.getpid()}."
    room = NAME_MAX - len(os.fsencode(prefix))
    name = os.fsencode(path.name)
    return path.with_name(prefix + os.fsdecode(name[-room:]) if len(name) > room else
                          prefix + path.name)


def _make_parents(path: Path) -> Path | None:
    """Create the missing parent folders of ``path``; return the topmost one created."""
    missing, parent = None, path.absolute().parent
    while not parent.exists():
        missing, parent = parent, parent.parent
    if missing is not None:
        path.absolute().parent.mkdir(parents=True, exist_ok=True)
    return missing


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds
    (missing parent folders are created, and removed again if it fails)."""
    path = Path(path)
    created = _make_parents(path)
    tmp = _temporary_name(path, "tmp")
    done = False
    try:
        yield tmp
        os.replace(tmp, path)
        done = True
    except OSError as err:
        raise LoczooError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
        if not done and created is not None:
            shutil.rmtree(created, ignore_errors=True)


@contextmanager
def atomic_folder(path: str | Path, kind: str = "folder") -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it is marked as loczoo's output of
    ``kind`` and replaces ``path`` (an existing folder there is removed only after the new one
    is complete)."""
    path = Path(path)
    created = _make_parents(path)
    tmp = _temporary_name(path, "tmp")
    old = _temporary_name(path, "old")
    tmp.mkdir()
    done = False
    try:
        yield tmp
        write_marker(tmp, kind)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        done = True
    except OSError as err:
        raise LoczooError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)
        if not done and created is not None:
            shutil.rmtree(created, ignore_errors=True)
