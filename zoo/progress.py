"""Progress on the terminal for long work (frames done, rate, time left)."""

from __future__ import annotations

import sys
import time


class ProgressPrinter:
    """Prints 'label: done/total (rate/s, ETA)' on one terminal line, at most every 0.5 s."""

    def __init__(self, label: str, unit: str = "frames", quiet: bool = False):
        self.label, self.unit, self.quiet = label, unit, quiet
        self.stream = sys.stderr
        self.start = time.time()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.time()
        if self.quiet or (now - self.last < 0.5 and done < total):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0.0
        self.stream.write(f"\r{self.label}: {done}/{total} {self.unit} "
                          f"({rate:.1f}/s, {eta:.0f} s left)   ")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
