"""CLI plumbing shared by every tool: one error line and exit code 2 for user errors."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable

from loczoo.errors import LoczooError

EXIT_USAGE = 2


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up chatter (absl and oneDNN notices, which ignore
    TF_CPP_MIN_LOG_LEVEL in TF 2.21) kept off the terminal. Tools that need TensorFlow call
    this first; a failing import still raises normally."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run_tool(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a tool; user errors become one line on stderr and exit code 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        return run(args) or 0
    except LoczooError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `loczoo evaluate ... | head`: the reader left, not an error
        sys.stderr.close()
        return 0


def standalone(name: str, add_arguments, run, argv=None) -> int:
    """Entry point for ``python tools/NAME.py``: the same parser as ``loczoo NAME``."""
    parser = argparse.ArgumentParser(prog=f"loczoo {name}")
    add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["python", f"tools/{name}.py", *argv])
    return run_tool(run, args)
