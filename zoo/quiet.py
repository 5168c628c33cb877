"""TensorFlow and LiteRT without their C++ chatter on the terminal.

TensorFlow's start-up notices (absl, oneDNN, CPU features), the TFLite converter's log and
LiteRT's "Created TensorFlow Lite XNNPACK delegate" line are written by C++ straight to file
descriptor 2: neither ``TF_CPP_MIN_LOG_LEVEL`` (ignored by some of them in TF 2.21) nor Python's
``sys.stderr`` reach them. ``stderr_silenced`` points descriptor 2 at /dev/null for a block;
errors still raise as exceptions, whose messages carry what went wrong.

``import loczoo`` installs ``QuietTensorFlowImport``: when loczoo code (any module of the
package, e.g. ``loczoo.load_pretrained``) first imports TensorFlow, the import is silenced the
same way. An ``import tensorflow`` of the user's own, outside loczoo, is left alone."""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys
import warnings
from contextlib import contextmanager

# Python loggers through which TensorFlow and Keras report deprecations ("WARNING:tensorflow:
# From ... is deprecated", "WARNING:absl:You are saving your model as an HDF5 file ...").
CHATTY_LOGGERS = ("tensorflow", "absl")


@contextmanager
def stderr_silenced(python_warnings: bool = True):
    """Nothing reaches file descriptor 2 during the block (C++ logging, and Python writes to
    ``sys.stderr`` when that is the terminal); with ``python_warnings``, Python warnings
    (deprecations) raised in the block are dropped too, and so are TensorFlow's and absl's
    log records below ERROR (they reach a notebook's stderr, which is no descriptor).
    Exceptions pass through."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a detached process): nothing to silence
        saved = None
    devnull = os.open(os.devnull, os.O_WRONLY) if saved is not None else None
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS] if python_warnings else []
    levels = [logger.level for logger in loggers]
    try:
        if saved is not None:
            os.dup2(devnull, 2)
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.ERROR))
        with warnings.catch_warnings():
            if python_warnings:
                warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        try:
            sys.stderr.flush()  # what Python buffered during the block goes to /dev/null too
        except (AttributeError, OSError, ValueError):
            pass
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up notices kept off the terminal (the tools call
    this first; nothing happens when it is already imported). A failing import still raises
    normally."""
    if "tensorflow" in sys.modules:
        return
    with stderr_silenced(python_warnings=False):
        import tensorflow  # noqa: F401


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """A ``sys.meta_path`` finder that runs the first import of ``tensorflow`` with descriptor
    2 silenced, if loczoo code asked for it (directly, or through Keras). It finds nothing
    itself: the other finders locate TensorFlow as usual. After the first import of
    TensorFlow, by whatever code, it does nothing."""

    def __init__(self):
        self.done = False

    def find_spec(self, name, path=None, target=None):
        if self.done:
            return None
        if name != "tensorflow":
            self.done = "tensorflow" in sys.modules
            return None
        self.done = True
        if not _called_from_loczoo():
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _QuietLoader(spec.loader)
        # Safe to remove now: the import system stops looking once a finder answers.
        self.uninstall()
        return spec

    @classmethod
    def install(cls) -> None:
        if "tensorflow" not in sys.modules and not any(
                isinstance(f, cls) for f in sys.meta_path):
            sys.meta_path.insert(0, cls())

    @classmethod
    def uninstall(cls) -> None:
        for finder in [f for f in sys.meta_path if isinstance(f, cls)]:
            sys.meta_path.remove(finder)


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with descriptor 2 silenced; the module keeps the original
    loader (``__loader__``, ``__spec__.loader``)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        with stderr_silenced(python_warnings=False):
            self.loader.exec_module(module)


def _called_from_loczoo() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == "loczoo" or (name.startswith("loczoo.") and name != __name__):
            return True
        frame = frame.f_back
    return False
