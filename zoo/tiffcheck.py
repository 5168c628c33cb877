"""Checks that catch broken TIFF files which tifffile would read silently (it logs, rather than
raises, when the chain of pages breaks off, and returns the pages it found), shared by the
stack reader (``loczoo.smlm.io``) and the cell-image reader (``loczoo.proteins.folders``)."""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# tifffile's log messages that mean the file is cut off or corrupt.
_FATAL_TIFF_LOG = ("page offset", "next page", "corrupt", "truncat", "missing data", "bytecounts")


class _LogCollector(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.fatal: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR and any(k in message.lower() for k in _FATAL_TIFF_LOG):
            self.fatal.append(message)


@contextmanager
def tifffile_log() -> Iterator[_LogCollector]:
    """Collect tifffile's log records instead of letting them reach stderr."""
    logger = logging.getLogger("tifffile")
    collector = _LogCollector()
    propagate = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    try:
        yield collector
    finally:
        logger.removeHandler(collector)
        logger.propagate = propagate


def ifd_chain_problem(path: Path) -> str | None:
    """Follow the chain of image directories; say why if it is cut off or loops.

    tifffile can spin for a very long time on a directory cut in the middle (it takes a bogus
    next offset from the partial read), so the chain is checked before tifffile sees it.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(16)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None or len(head) < 8:
            return None  # not a TIFF: tifffile says so
        version = struct.unpack(order + "H", head[2:4])[0]
        if version == 42:
            if size >= 1 << 32:
                return None  # ImageJ's > 4 GiB files break the chain by design
            count_fmt, offset_fmt, entry = "H", "I", 12
            offset = struct.unpack(order + "I", head[4:8])[0]
        elif version == 43 and len(head) >= 16:
            count_fmt, offset_fmt, entry = "Q", "Q", 20
            offset = struct.unpack(order + "Q", head[8:16])[0]
        else:
            return None
        count_size = struct.calcsize(count_fmt)
        offset_size = struct.calcsize(offset_fmt)
        seen: set[int] = set()
        while offset:
            page = len(seen) + 1
            if offset in seen:
                return f"the directory of page {page} points back to an earlier one"
            if offset + count_size > size:
                return f"page {page} starts at byte {offset}, beyond the end ({size} bytes)"
            seen.add(offset)
            fh.seek(offset)
            count = struct.unpack(order + count_fmt, fh.read(count_size))[0]
            end = offset + count_size + count * entry
            if end + offset_size > size:
                return f"the directory of page {page} is cut off at the end of the file"
            fh.seek(end)
            offset = struct.unpack(order + offset_fmt, fh.read(offset_size))[0]
    return None
