"""Progress on the terminal for long work: one status line, rewritten in place on a terminal
and printed as plain lines at a slow pace where stderr goes to a file or pipe (logs), so that
a log holds no ``\\r`` clutter. ``ProgressPrinter`` reports counted work (frames, images, MB);
the training loop (``loczoo.training``) reports steps and epochs through the same line."""

from __future__ import annotations

import shutil
import sys
import threading
import time

TTY_INTERVAL = 0.5  # s between rewrites of the status line on a terminal
LOG_INTERVAL = 30.0  # s between status lines in a log


class StatusLine:
    """The status line on ``stream`` (default: ``sys.stderr`` at the time of writing).

    ``update(text)``: on a terminal, rewrite the line in place (``\\r``), at most every
    ``tty_interval`` s; elsewhere, print ``text`` as a line at most every ``log_interval`` s
    after the last line of any kind. ``print(text)``: a permanent line (the status is cleared
    first). ``end(text)``: the final status, kept. ``clear()``: erase the status. Nothing is
    written when ``quiet``. Safe to call from several threads."""

    def __init__(self, *, quiet: bool = False, stream=None, tty_interval: float = TTY_INTERVAL,
                 log_interval: float = LOG_INTERVAL, clock=time.monotonic):
        self.quiet, self._stream, self.clock = quiet, stream, clock
        self.tty_interval, self.log_interval = tty_interval, log_interval
        self.last = clock()
        self.width = 0  # characters of the status now shown in place (0: none)
        self.lock = threading.Lock()

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stderr

    def is_tty(self) -> bool:
        try:
            return bool(self.stream.isatty())
        except (AttributeError, ValueError, OSError):
            return False

    def update(self, text: str, force: bool = False) -> bool:
        """Show ``text`` if the interval has passed (or ``force``); True if it was shown."""
        if self.quiet:
            return False
        with self.lock:
            now, tty = self.clock(), self.is_tty()
            if not force and now - self.last < (self.tty_interval if tty else self.log_interval):
                return False
            self.last = now
            if tty:
                text = text[:max(20, shutil.get_terminal_size().columns - 1)]
                self._write("\r" + text.ljust(self.width))
                self.width = len(text)
            else:
                self._write(text + "\n")
            return True

    def print(self, text: str) -> None:
        """``text`` as a line of its own, below which the status goes on."""
        if self.quiet:
            return
        with self.lock:
            self._clear()
            self._write(text + "\n")
            self.last = self.clock()

    def end(self, text: str) -> None:
        """The final status: kept on the terminal, printed elsewhere."""
        if self.quiet:
            return
        with self.lock:
            if self.is_tty():
                self._write("\r" + text.ljust(self.width) + "\n")
            else:
                self._write(text + "\n")
            self.width, self.last = 0, self.clock()

    def clear(self) -> None:
        with self.lock:
            self._clear()

    def _clear(self) -> None:
        if self.width:
            self._write("\r" + " " * self.width + "\r")
            self.width = 0

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: progress is not worth an error
            pass


class ProgressPrinter:
    """Prints 'label: done/total (rate/s, ETA)' on the status line (see ``StatusLine``)."""

    def __init__(self, label: str, unit: str = "frames", quiet: bool = False, stream=None):
        self.label, self.unit, self.quiet = label, unit, quiet
        self.line = StatusLine(quiet=quiet, stream=stream)
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        rate = done / max(time.monotonic() - self.start, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0.0
        text = f"{self.label}: {done}/{total} {self.unit} ({rate:.1f}/s, {eta:.0f} s left)"
        if done >= total:
            self.line.end(text)
        else:
            self.line.update(text)


def duration(seconds: float) -> str:
    """'45 s', '3 min 05 s', '46 h 40 min'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def per_step(seconds: float) -> str:
    """A time per step with two significant digits: '4.2', '0.81', '12'."""
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.2g}"
