"""CLI plumbing shared by every tool: checked numeric flags, one error line and exit code 2 for
user errors, SIGTERM handled like Ctrl-C (so temporary files are removed)."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import signal
import sys
from collections.abc import Callable

from loczoo.errors import LoczooError
from loczoo.quiet import import_tensorflow_quietly  # noqa: F401 - the tools import it from here

EXIT_USAGE = 2


class _DefaultsFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to a flag's help where X says something: not for unset
    options, switches, empty lists, or help that already names its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False or default == []
                or default == argparse.SUPPRESS
                or action.option_strings == [] and action.nargs in ("*", "+")):
            return text
        shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) \
            if isinstance(default, (list, tuple)) else (f"{default:g}" if isinstance(
                default, float) else str(default))
        return f"{text} (default: {shown})".lstrip()


class ToolParser(argparse.ArgumentParser):
    """argparse with the defaults shown in ``--help`` and a usage error as one line:
    ``error: argument --epochs: must be >= 1, got -1`` (exit code 2)."""

    STANDARD_HELP = {"--quiet": "no progress lines",
                     "--overwrite": "replace an existing output, if loczoo wrote it"}

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *names, **kwargs):
        if "help" not in kwargs and names and names[0] in self.STANDARD_HELP:
            kwargs["help"] = self.STANDARD_HELP[names[0]]
        return super().add_argument(*names, **kwargs)

    def error(self, message: str):
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def number(kind: type = float, *, min: float | None = None, max: float | None = None,
           above: float | None = None, below: float | None = None) -> Callable[[str], float]:
    """An argparse ``type`` for a finite number of ``kind`` (int or float) within the given
    bounds (``min``/``max`` inclusive, ``above``/``below`` exclusive). NaN and infinity are
    always refused, so a flag can never make a loop run forever or a result silently empty."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        checks = ((min, value.__ge__, ">="), (max, value.__le__, "<="),
                  (above, value.__gt__, ">"), (below, value.__lt__, "<"))
        for bound, ok, sign in checks:
            if bound is not None and not ok(bound):
                raise argparse.ArgumentTypeError(f"must be {sign} {bound:g}, got {text}")
        return value

    parse.__name__ = "int" if kind is int else "number"  # argparse names the type in errors
    return parse


def check_pair(flag: str, pair) -> None:
    """A (LOW, HIGH) flag: LOW <= HIGH (each number is range-checked by its ``number`` type)."""
    if pair is not None and pair[0] > pair[1]:
        raise LoczooError(f"{flag} takes LOW HIGH with LOW <= HIGH, got {pair[0]:g} {pair[1]:g}")


def camera_item(text: str, extra_names: tuple[str, ...] = ()) -> str:
    """argparse type of ``--camera``: a named camera (or one of ``extra_names``) or KEY=VALUE
    of a known field with a finite value (``loczoo.smlm.cameras.check_camera_item``; no
    TensorFlow import)."""
    from loczoo.smlm.cameras import check_camera_item

    if text.strip().lower() in extra_names:
        return text.strip()
    try:
        return check_camera_item(text)
    except LoczooError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_camera_argument(parser: argparse.ArgumentParser, help: str,
                        extra_names: tuple[str, ...] = ()) -> None:
    """The repeatable ``--camera`` flag of every tool (``loczoo.smlm.cameras``); its items are
    checked as they are parsed, before any work. ``extra_names``: names a tool accepts besides
    the named cameras (simulate's ``custom`` of earlier versions)."""

    def parse(text: str) -> str:
        return camera_item(text, extra_names)

    parse.__name__ = "camera"  # argparse names the type in errors
    parser.add_argument("--camera", action="append", default=[], type=parse,
                        metavar="NAME|KEY=VALUE", help=help)


def add_schedule_arguments(parser: argparse.ArgumentParser, *, steps_per_epoch: int,
                           epochs: int) -> None:
    """The training-length flags of ``train`` and ``finetune``, with their checked ranges."""
    parser.add_argument("--steps-per-epoch", type=number(int, min=1, max=10**7),
                        default=steps_per_epoch, help="training steps (batches) per epoch")
    parser.add_argument("--epochs", type=number(int, min=1, max=10**6), default=epochs,
                        help="epochs to train (the run stops earlier only when interrupted)")
    parser.add_argument("--validation-steps", type=number(int, min=1, max=10**6), default=20,
                        help="validation batches after each epoch")
    parser.add_argument("--seed", type=number(int, min=0, max=2**31 - 1), default=0,
                        help="seed of the simulator, the data order and the initial weights")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: mixed precision (float32 weights and loss), faster on "
                             "CPUs with bfloat16 instructions (AVX512-BF16, AMX)")


def _sigterm_as_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_tool(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a tool; user errors become one line on stderr and exit code 2. SIGTERM stops the
    tool as Ctrl-C does, so every temporary file is removed on the way out."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    previous = signal.signal(signal.SIGTERM, _sigterm_as_keyboard_interrupt)
    try:
        return run(args) or 0
    except LoczooError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        if isinstance(err, BrokenPipeError):  # `loczoo evaluate ... | head`: not an error
            sys.stderr.close()
            return 0
        # The file system refused (disk full, name too long, permission): name the file.
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def standalone(name: str, add_arguments, run, argv=None) -> int:
    """Entry point for ``python tools/NAME.py``: the same parser as ``loczoo NAME``."""
    parser = ToolParser(prog=f"loczoo {name}")
    add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a usage error already printed as one line
        return int(done.code or 0)
    args.command_line = shlex.join(["python", f"tools/{name}.py", *argv])
    return run_tool(run, args)
