"""Pretrained presets: a folder shaped like a run folder (config.json, model.weights.h5,
metadata.json) shipped inside the package as ``<entry>/weights/<preset>/``, with the sha256 of
every file checked before use."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from loczoo.errors import LoczooError


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A pretrained model of one entry.

    files: file name -> sha256 of each file in the preset folder.
    training: the exact command (and budget) that produced the weights.
    """

    name: str
    entry: str
    description: str
    files: Mapping[str, str]
    license: str = "MIT"
    citation: str = ""
    training: str = ""

    @property
    def folder(self) -> Path:
        return Path(str(resources.files(f"loczoo.{self.entry}"))) / "weights" / self.name

    def verified_folder(self) -> Path:
        """The shipped folder, after checking that every file is present with its sha256."""
        folder = self.folder
        for name, expected in self.files.items():
            path = folder / name
            if not path.is_file():
                raise LoczooError(f"preset {self.entry}/{self.name}: missing file {path}")
            actual = sha256_of(path)
            if actual != expected:
                raise LoczooError(f"preset {self.entry}/{self.name}: {path} has sha256 "
                                  f"{actual}, expected {expected}; refusing to use it")
        return folder
