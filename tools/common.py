"""CLI plumbing shared by every tool: error handling, output-path checks, atomic writes."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from loczoo.errors import LoczooError

EXIT_USAGE = 2


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up chatter; must run before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def run_tool(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a tool; user errors become one line on stderr and exit code 2."""
    quiet_tensorflow()
    try:
        return run(args) or 0
    except LoczooError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def standalone(name: str, add_arguments, run, argv=None) -> int:
    """Entry point for ``python tools/NAME.py``: the same parser as ``loczoo NAME``."""
    parser = argparse.ArgumentParser(prog=f"loczoo {name}")
    add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["python", f"tools/{name}.py", *argv])
    return run_tool(run, args)


def check_output(path: str | Path, overwrite: bool) -> Path:
    """Refuse an existing output unless ``--overwrite``; the parent folder must exist."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise LoczooError(f"output {path} exists; pass --overwrite to replace it")
    if not path.parent.exists():
        raise LoczooError(f"output folder {path.parent} does not exist")
    return path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
