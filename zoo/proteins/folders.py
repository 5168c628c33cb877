"""Readers for protein-localization image sets as their archives unpack: one folder per class
(2D HeLa, CHO; LOCATE with paired protein / DNA images) or image lists with labels (DeepYeast).

Images keep their own size here; ``loczoo.proteins.images.fit_to_square`` brings them to
a network's input. Unreadable images are reported by name and skipped (``ImageSet.skipped``);
a layout that does not match gives one ``LoczooError``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loczoo.errors import LoczooError
from loczoo.tiffcheck import ifd_chain_problem, tifffile_log

IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


@dataclass
class ImageSet:
    """Images [H, W, C] float32 (sizes may differ), integer labels, class names, a name per
    image (its path relative to the data set's root) and the files that could not be read."""

    images: list[np.ndarray]
    labels: np.ndarray
    class_names: tuple[str, ...]
    names: tuple[str, ...]
    skipped: list[str] = field(default_factory=list)


def read_image(path: Path) -> np.ndarray:
    """One 2D image [H, W, C] float32 from a TIFF or PNG (RGB(A) PNGs keep their channels,
    a single plane gets C = 1). Raises LoczooError naming the file if it cannot be read."""
    try:
        if path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as im:
                data = np.asarray(im)
        else:
            import tifffile

            problem = ifd_chain_problem(path)
            if problem:
                raise LoczooError(f"image {path} is truncated or corrupt: {problem}")
            with tifffile_log() as log:
                data = tifffile.imread(path)
            if log.fatal:
                raise LoczooError(f"image {path} is truncated or corrupt ({log.fatal[0]})")
    except LoczooError:
        raise
    except Exception as err:  # noqa: BLE001 - the readers raise many types for bad files
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise LoczooError(f"cannot read image {path}: {reason}") from None
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] < 5 and data.shape[-1] >= 5:
        data = np.moveaxis(data, 0, -1)  # a channels-first TIFF
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3 or min(data.shape[:2]) < 2 or not np.issubdtype(data.dtype, np.number):
        raise LoczooError(f"image {path} is not a 2D image (shape {data.shape}, {data.dtype})")
    data = data.astype(np.float32)
    if not np.all(np.isfinite(data)):
        raise LoczooError(f"image {path} contains NaN or infinite values")
    return data


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not
                  p.name.startswith("."))


def _class_folders(root: Path, class_names: tuple[str, ...] | None) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise LoczooError(f"data set folder {root} does not exist")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise LoczooError(f"{root} has no class folders (expected one folder of images per "
                          f"class)")
    if class_names is None:
        return folders
    by_name = {p.name.lower(): p for p in folders}
    missing = [c for c in class_names if c.lower() not in by_name]
    if missing:
        raise LoczooError(f"{root} lacks the class folders {', '.join(missing)} (found: "
                          f"{', '.join(p.name for p in folders)})")
    return [by_name[c.lower()] for c in class_names]


def read_class_folders(root, class_names: tuple[str, ...] | None = None,
                       channel_suffixes: tuple[str, ...] | None = None,
                       quiet: bool = False) -> ImageSet:
    """Images under ``root/CLASS/`` (any depth). ``class_names`` None takes the folders in
    sorted order; otherwise exactly these classes in this order. ``channel_suffixes`` pairs
    single-channel files into one multi-channel image: ("_myc", "_dapi") reads ``X_myc.tif`` as
    channel 0 and ``X_dapi.tif`` as channel 1 of image X (LOCATE); an image missing a channel
    is skipped."""
    root = Path(root)
    folders = _class_folders(root, class_names)
    images, labels, names, skipped = [], [], [], []
    for label, folder in enumerate(folders):
        files = _images_in(folder)
        if not files:
            raise LoczooError(f"class folder {folder} holds no images "
                              f"({', '.join(IMAGE_SUFFIXES)})")
        groups = ([[f] for f in files] if channel_suffixes is None
                  else _pair_channels(files, channel_suffixes, root, skipped))
        for group in groups:
            name = str(group[0].relative_to(root))
            image = _read_or_skip(group, name, skipped, quiet)
            if image is not None:
                images.append(image)
                labels.append(label)
                names.append(name)
    _check_channels(images, names)
    if not images:
        raise LoczooError(f"no readable images under {root}")
    return ImageSet(images, np.asarray(labels, np.int32), tuple(p.name for p in folders),
                    tuple(names), skipped)


def _read_or_skip(files: list[Path], name: str, skipped: list[str],
                  quiet: bool) -> np.ndarray | None:
    """One image [H, W, C] from its channel files, or None after naming it as skipped."""
    try:
        channels = [read_image(f) for f in files]
        if len({c.shape[:2] for c in channels}) != 1:
            raise LoczooError(f"the channels of {name} differ in size")
    except LoczooError as err:
        skipped.append(name)
        if not quiet:
            print(f"warning: skipped {err}", file=sys.stderr)
        return None
    return np.concatenate(channels, axis=-1)


def _pair_channels(files, suffixes, root, skipped) -> list[list[Path]]:
    pattern = re.compile("(.*)(" + "|".join(re.escape(s) for s in suffixes) + r")$", re.I)
    groups: dict[str, dict[str, Path]] = {}
    for f in files:
        match = pattern.match(f.stem)
        if match is None:
            skipped.append(str(f.relative_to(root)))
            continue
        stem = str(f.with_name(match.group(1)))
        groups.setdefault(stem, {})[match.group(2).lower()] = f
    paired = []
    for _, found in sorted(groups.items()):
        if len(found) == len(suffixes):
            paired.append([found[s.lower()] for s in suffixes])
        else:
            skipped.extend(str(f.relative_to(root)) for f in found.values())
    return paired


def _check_channels(images, names) -> None:
    example = {}
    for image, name in zip(images, names):
        example.setdefault(image.shape[-1], name)
    if len(example) > 1:
        listed = ", ".join(f"{name} has {count}" for count, name in example.items())
        raise LoczooError(f"images differ in channel count: {listed}")


def read_image_list(root, list_file, class_names: tuple[str, ...],
                    quiet: bool = False) -> ImageSet:
    """Images named in ``list_file`` (lines ``relative/path.png LABEL``, LABEL an index into
    ``class_names`` or a class name; blank lines and ``#`` comments ignored): DeepYeast's split
    lists."""
    root, list_file = Path(root), Path(list_file)
    if not list_file.is_file():
        raise LoczooError(f"split list {list_file} does not exist")
    images, labels, names, skipped = [], [], [], []
    lookup = {c.lower(): i for i, c in enumerate(class_names)}
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise LoczooError(f"{list_file} line {number}: expected 'PATH LABEL', got {line!r}")
        path, label = parts
        index = int(label) if label.isdigit() else lookup.get(label.lower(), -1)
        if not 0 <= index < len(class_names):
            raise LoczooError(f"{list_file} line {number}: unknown label {label!r}")
        image = _read_or_skip([root / path], path, skipped, quiet)
        if image is not None:
            images.append(image)
            labels.append(index)
            names.append(path)
    _check_channels(images, names)
    if not images:
        raise LoczooError(f"no readable images listed in {list_file}")
    return ImageSet(images, np.asarray(labels, np.int32), tuple(class_names), tuple(names),
                    skipped)
