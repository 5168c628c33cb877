"""Reading and writing camera stacks (TIFF) and localization tables (CSV), without TensorFlow.

Every problem a user can cause (missing, corrupt or wrongly shaped files, unknown columns, an
existing output) raises ``LoczooError`` with one line naming the file. Outputs are written to a
temporary name beside the target and renamed, so a failed write never leaves half a file.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from loczoo.errors import LoczooError
from loczoo.outputs import atomic_path, prepare_output
from loczoo.smlm.localizations import Localizations
from loczoo.tiffcheck import ifd_chain_problem, tifffile_log

TIFF_SUFFIXES = (".tif", ".tiff")

# nm per unit, for ImageJ's ``unit`` and for column units in CSV headers.
_LENGTH_UNITS = {
    "nm": 1.0, "nanometer": 1.0, "nanometers": 1.0, "nanometre": 1.0, "nanometres": 1.0,
    "um": 1e3, "µm": 1e3, "μm": 1e3, "\\u00b5m": 1e3, "micron": 1e3, "microns": 1e3,
    "micrometer": 1e3, "micrometers": 1e3, "micrometre": 1e3, "micrometres": 1e3,
    "mm": 1e6, "cm": 1e7,
}
_PIXEL_UNITS = ("px", "pixel", "pixels")
# A resolution tag in inch or cm that gives pixels larger than this is a dpi default
# (72, 96, 300 dpi ...), not a microscope calibration.
_MAX_PLAUSIBLE_PIXEL_NM = 10_000.0
_NAN_CHECK_ELEMENTS = 1 << 24


@dataclass
class Stack:
    """Camera frames [N, H, W] (memory-mapped where the file allows), pixel size if known."""

    frames: np.ndarray
    pixel_size_nm: float | None
    path: Path
    metadata_pixel_size_nm: float | None = None  # what the file says, before any override

    def __len__(self) -> int:
        return int(self.frames.shape[0])


# --------------------------------------------------------------------------- TIFF stacks


def _natural_key(name: str) -> list:
    # Even items are text and odd items digits, so keys always compare like with like.
    parts = re.split(r"(\d+)", name.lower())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)]


def check_pixel_size(pixel_size_nm: float | None, what: str = "pixel size") -> float | None:
    if pixel_size_nm is None:
        return None
    try:
        value = float(pixel_size_nm)
    except (TypeError, ValueError):
        raise LoczooError(f"{what} {pixel_size_nm!r} is not a number; expected nm > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise LoczooError(f"{what} {pixel_size_nm!r} nm is invalid; expected a number > 0")
    return value


def _rational(value) -> float | None:
    try:
        if isinstance(value, tuple):
            num, den = value[:2]
            return float(num) / float(den) if den else None
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _tiff_pixel_size(tif: tifffile.TiffFile) -> float | None:
    """Pixel size in nm from ImageJ, OME or resolution-tag metadata; None if not trustworthy."""
    page = tif.pages.first
    tag = page.tags.get("XResolution")
    per_unit = _rational(tag.value) if tag is not None else None
    size = None
    imagej = tif.imagej_metadata or {}
    unit = str(imagej.get("unit", "")).strip().lower()
    if unit:
        if unit in _LENGTH_UNITS and per_unit and per_unit > 0:
            size = _LENGTH_UNITS[unit] / per_unit
    elif tif.is_ome and tif.ome_metadata:
        size = _ome_pixel_size(tif.ome_metadata)
    if size is None and not unit and per_unit and per_unit > 0:
        resolution_unit = int(page.resolutionunit)
        if resolution_unit in (2, 3):  # INCH, CENTIMETER
            size = (2.54e7 if resolution_unit == 2 else 1e7) / per_unit
            if size > _MAX_PLAUSIBLE_PIXEL_NM:
                size = None
    if size is None or not math.isfinite(size) or size <= 0:
        return None
    return float(f"{size:.6g}")  # undo the rounding of the stored rational


def _ome_pixel_size(xml: str) -> float | None:
    match = re.search(r'PhysicalSizeX="([^"]+)"', xml)
    if not match:
        return None
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', xml)
    factor = _LENGTH_UNITS.get(unit.group(1).lower() if unit else "µm")
    value = _rational(match.group(1))
    return value * factor if value and factor else None


def _frames_view(path: Path, shape: tuple, axes: str, dtype: np.dtype, samples: int,
                 photometric: int) -> tuple[int, int, int]:
    """Check a series' layout and return the [N, H, W] it stands for."""
    sizes = dict(zip(axes, shape))
    if photometric == 2 or (sizes.get("S", 1) in (3, 4) and samples > 1):
        raise LoczooError(f"{path} is an RGB image; expected single-channel frames")
    if samples > 1 or sizes.get("S", 1) > 1:
        raise LoczooError(f"{path} has {max(samples, sizes.get('S', 1))} samples per pixel; "
                          "expected single-channel frames")
    # A 3D ImageJ file labels its first axis C, Z or T depending on the writer, so any single
    # non-trivial axis before Y, X counts as frames.
    kept = [n for n in shape[:-2] if n != 1]
    if len(shape) < 2 or len(kept) > 1:
        raise LoczooError(f"{path} has shape {tuple(shape)} (axes {axes}); expected a "
                          "[frames, height, width] stack")
    if dtype.kind not in "uif":
        raise LoczooError(f"{path} has pixel type {dtype}; expected integer or real numbers")
    n = kept[0] if kept else (0 if 0 in shape[:-2] else 1)
    height, width = shape[-2:]
    if n == 0 or height == 0 or width == 0:
        raise LoczooError(f"{path} holds no image data (shape {tuple(shape)})")
    return int(n), int(height), int(width)


def _read_tiff(path: Path) -> tuple[np.ndarray, float | None]:
    """Frames [N, H, W] of one TIFF file and the pixel size from its metadata."""
    problem = ifd_chain_problem(path)
    if problem:
        raise LoczooError(f"{path} is truncated or corrupt: {problem}")
    with tifffile_log() as log:
        try:
            with tifffile.TiffFile(path) as tif:
                if not tif.series:
                    raise LoczooError(f"{path} holds no images")
                if len(tif.series) > 1:
                    shapes = ", ".join(str(tuple(s.shape)) for s in tif.series[:4])
                    raise LoczooError(f"{path} holds {len(tif.series)} image series ({shapes}); "
                                      "expected one [frames, height, width] stack")
                series = tif.series[0]
                page = tif.pages.first
                nhw = _frames_view(path, tuple(series.shape), series.axes, series.dtype,
                                   int(page.samplesperpixel), int(page.photometric))
                if log.fatal:
                    raise LoczooError(f"{path} is truncated or corrupt ({log.fatal[0]})")
                images = (tif.imagej_metadata or {}).get("images")
                if images is not None and int(images) != nhw[0]:
                    raise LoczooError(f"{path} is truncated or corrupt: ImageJ metadata "
                                      f"announces {images} frames, the file holds {nhw[0]}")
                pixel_size = _tiff_pixel_size(tif)
                mappable = series.dataoffset is not None
                data = None if mappable else series.asarray()
            if mappable:
                data = tifffile.memmap(path, series=0, mode="r")
            frames = data.reshape(nhw)
            # Touching the last frame catches a file cut short after its last page header.
            np.asarray(frames[-1]).sum()
        except LoczooError:
            raise
        except MemoryError:
            raise LoczooError(f"{path} is too large to load into memory") from None
        except Exception as err:  # tifffile raises many kinds for broken files
            reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            raise LoczooError(f"{path} is not a readable TIFF file ({reason})") from None
        if log.fatal:
            raise LoczooError(f"{path} is truncated or corrupt ({log.fatal[0]})")
    return frames, pixel_size


def _read_tiff_folder(folder: Path) -> tuple[np.ndarray, float | None]:
    files = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                    and p.suffix.lower() in TIFF_SUFFIXES),
                   key=lambda p: (_natural_key(p.name), p.name))
    if not files:
        raise LoczooError(f"folder {folder} contains no .tif/.tiff files")
    first, pixel_size = _read_tiff(files[0])
    if first.shape[0] != 1:
        raise LoczooError(f"{files[0]} holds {first.shape[0]} frames; a folder stack must "
                          "contain single-frame TIFFs")
    frames = np.empty((len(files),) + first.shape[1:], dtype=first.dtype)
    frames[0] = first[0]
    for i, file in enumerate(files[1:], start=1):
        data, _ = _read_tiff(file)
        if data.shape[1:] != first.shape[1:] or data.dtype != first.dtype or data.shape[0] != 1:
            raise LoczooError(
                f"{file} has {data.shape[0]} frame(s) of {data.shape[1]}x{data.shape[2]} "
                f"{data.dtype}; expected one frame of {first.shape[1]}x{first.shape[2]} "
                f"{first.dtype} like {files[0].name}")
        frames[i] = data[0]
    return frames, pixel_size


def _check_finite(frames: np.ndarray, path) -> None:
    if frames.dtype.kind != "f":
        return
    per_chunk = max(1, _NAN_CHECK_ELEMENTS // max(1, frames[0].size))
    for start in range(0, frames.shape[0], per_chunk):
        chunk = np.asarray(frames[start:start + per_chunk])
        if not np.isfinite(chunk).all():
            bad = start + int(np.flatnonzero(~np.isfinite(chunk).reshape(len(chunk), -1)
                                             .all(axis=1))[0])
            raise LoczooError(f"{path} contains NaN or infinite values (first in frame "
                              f"{bad + 1}); expected finite pixel values")


def read_stack(path: str | Path, pixel_size_nm: float | None = None) -> Stack:
    """Read a multi-page TIFF, a single 2D TIFF or a folder of single-frame TIFFs.

    Args:
        path: the TIFF file or the folder.
        pixel_size_nm: overrides the pixel size found in the metadata.

    Returns:
        A ``Stack`` with frames [N, H, W]; its pixel size is None when nothing trustworthy is
        known.
    """
    path = Path(path)
    override = check_pixel_size(pixel_size_nm)
    if not path.exists():
        raise LoczooError(f"input {path} does not exist")
    try:
        if path.is_dir():
            frames, found = _read_tiff_folder(path)
        else:
            frames, found = _read_tiff(path)
    except OSError as err:
        raise LoczooError(f"cannot read {path}: {err.strerror or err}") from None
    _check_finite(frames, path)
    return Stack(frames=frames, pixel_size_nm=override if override is not None else found,
                 path=path, metadata_pixel_size_nm=found)


def as_frames(frames, what: str = "frames") -> np.ndarray:
    """``frames`` as an [N, H, W] array of numbers (a single [H, W] frame gets N = 1), or one
    LoczooError naming what is wrong; memory-mapped arrays are not copied."""
    data = np.asarray(frames)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or 0 in data.shape:
        raise LoczooError(f"{what} have shape {data.shape}; expected a non-empty "
                          "[frames, height, width] or [height, width] array")
    if data.dtype.kind not in "uif":
        raise LoczooError(f"{what} have type {data.dtype}; expected integer or real numbers")
    return data


def _tiff_dtype(data: np.ndarray) -> np.dtype:
    """uint16 when every value is a whole number in its range, else float32."""
    if data.dtype.kind in "ui":
        if data.min() >= 0 and data.max() <= 65535:
            return np.dtype(np.uint16)
        return np.dtype(np.float32)
    if data.min() >= 0 and data.max() <= 65535 and np.array_equal(data, np.round(data)):
        return np.dtype(np.uint16)
    return np.dtype(np.float32)


def _write_imagej_tiff(path: Path, data: np.ndarray, pixel_size_nm: float | None) -> None:
    """An ImageJ hyperstack [T, Y, X] that Fiji opens with the right scale."""
    kwargs = {}
    metadata = {"axes": "TYX"}
    if pixel_size_nm is not None:
        per_um = 1000.0 / pixel_size_nm
        kwargs["resolution"] = (per_um, per_um)
        metadata["unit"] = "um"
    tifffile.imwrite(path, data, imagej=True, metadata=metadata, **kwargs)


def write_stack(path: str | Path, frames, pixel_size_nm: float | None = None,
                overwrite: bool = False) -> Path:
    """Write frames [N, H, W] (or one [H, W] frame) as an ImageJ TIFF.

    Pixels are stored as uint16 when they are whole numbers in range, else float32; the pixel
    size is stored as resolution with unit um, so ``read_stack`` and Fiji read it back.
    """
    pixel_size_nm = check_pixel_size(pixel_size_nm)
    data = as_frames(frames)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise LoczooError(f"frames for {path} contain NaN or infinite values")
    path = prepare_output(path, overwrite)
    data = data.astype(_tiff_dtype(data), copy=False)
    with atomic_path(path) as tmp:
        _write_imagej_tiff(tmp, data, pixel_size_nm)
    return path


# --------------------------------------------------------------------------- CSV tables

# Header name (lower case, unit removed) -> table column; several may feed one column, the
# earlier in this list wins.
_ALIASES = (
    ("frame", ("frame",)),
    ("x", ("x", "xnano")),
    ("y", ("y", "ynano")),
    ("z", ("z", "znano")),
    ("photons", ("photons", "intensity")),
    ("prob", ("prob", "detection_prob", "confidence")),
    ("sigma_x", ("uncertainty_x", "sigma_x", "uncertainty", "uncertainty_xy")),
    ("sigma_y", ("uncertainty_y", "sigma_y", "uncertainty", "uncertainty_xy")),
    ("sigma_z", ("uncertainty_z", "sigma_z")),
)
_LENGTH_COLUMNS = ("x", "y", "z", "sigma_x", "sigma_y", "sigma_z")
_UNIT_RE = re.compile(r"^(.*?)\s*[\[(]\s*([^\])]*?)\s*[\])]\s*$")


def _split_header(name: str) -> tuple[str, str]:
    """Normalised column name and unit: '"x [nm]"' -> ('x', 'nm')."""
    name = name.strip().strip("\"'").strip()
    match = _UNIT_RE.match(name)
    if match:
        return match.group(1).strip().lower(), match.group(2).strip().lower()
    return name.lower(), ""


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise LoczooError(f"{path} is a folder; expected a CSV file") from None
    except OSError as err:
        raise LoczooError(f"cannot read {path}: {err.strerror or err}") from None
    if b"\x00" in raw[:4096]:
        raise LoczooError(f"{path} is not a text CSV file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_column(path: Path, header: str, values: list[str], lines: list[int],
                  required: bool) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        pass
    out = np.empty(len(values))
    for i, text in enumerate(values):
        text = text.strip().strip("\"'")
        if not text and not required:
            out[i] = np.nan
            continue
        try:
            out[i] = float(text)
        except ValueError:
            shown = f"holds {text!r}" if text else "is empty"
            raise LoczooError(f"{path} line {lines[i]}: column {header!r} {shown}; "
                              "expected a number") from None
    return out


def read_localizations(path: str | Path) -> Localizations:
    """Read a localization CSV: ThunderSTORM, generic frame,x,y, NAIRR, SMLM-2016 ground
    truth, ZeroCostDL4Mic or loczoo's own. Positions in nm, frames 1-based (kept 1-based)."""
    path = Path(path)
    if not path.exists():
        raise LoczooError(f"input {path} does not exist")
    text = _read_text(path)
    lines = text.splitlines()
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip()
                                  .startswith("#")):
        start += 1
    if start == len(lines):
        raise LoczooError(f"{path} is empty; expected a CSV with a header line (frame,x,y,...)")
    first = lines[start]
    delimiter = max((",", "\t", ";"), key=first.count)
    if first.count(delimiter) == 0 and len(first.split()) > 1:
        delimiter = " "
    reader = csv.reader(lines[start:], delimiter=delimiter, skipinitialspace=True)
    raw_header = next(reader)
    header = [_split_header(h) for h in raw_header]
    if all(_is_number(h) for h in raw_header if h.strip()):
        raise LoczooError(f"{path} has no header line; expected column names such as "
                          "frame,x,y on the first line")

    columns: dict[str, int] = {}
    for column, aliases in _ALIASES:
        for alias in aliases:
            index = next((i for i, (name, _) in enumerate(header) if name == alias), None)
            if index is not None:
                columns[column] = index
                break
    found = ", ".join(h.strip().strip("\"'") for h in raw_header)
    for column in ("frame", "x", "y"):
        if column not in columns:
            raise LoczooError(f"{path} has no column {column!r} (columns found: {found})")

    scale = {}
    for column, index in columns.items():
        name, unit = header[index]
        scale[column] = 1.0
        if column in _LENGTH_COLUMNS and unit:
            if unit in _PIXEL_UNITS:
                raise LoczooError(f"{path}: column {raw_header[index].strip()!r} is in pixels; "
                                  "expected nm")
            if unit not in _LENGTH_UNITS:
                raise LoczooError(f"{path}: column {raw_header[index].strip()!r} has unknown "
                                  f"unit {unit!r}; expected nm")
            scale[column] = _LENGTH_UNITS[unit]

    width = len(raw_header)
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    for row in reader:
        if len(row) != width:
            if not row or all(not v.strip() for v in row):
                continue
            if len(row) < width or any(v.strip() for v in row[width:]):
                raise LoczooError(f"{path} line {start + reader.line_num}: {len(row)} values, "
                                  f"the header names {width} columns")
        rows.append(row)
        line_numbers.append(start + reader.line_num)

    values = {}
    for column, index in columns.items():
        data = _parse_column(path, raw_header[index].strip().strip("\"'"),
                             [row[index] for row in rows], line_numbers,
                             column in ("frame", "x", "y"))
        values[column] = data * scale[column] if scale[column] != 1.0 else data
    for column in ("frame", "x", "y"):
        bad = ~np.isfinite(values[column])
        if bad.any():
            raise LoczooError(f"{path} line {line_numbers[int(np.argmax(bad))]}: column "
                              f"{column!r} is NaN or infinite; expected a number")
    frame = values["frame"]
    bad = (frame < 1) | (frame != np.round(frame))
    if bad.any():
        i = int(np.argmax(bad))
        raise LoczooError(f"{path} line {line_numbers[i]}: frame {frame[i]:g} is invalid; "
                          "expected whole numbers from 1 (frames are 1-based)")
    return Localizations(**values)


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip("\"'"))
    except ValueError:
        return False
    return True


# (table column, CSV header, number format); the optional ones are written only when known.
_CSV_COLUMNS = (
    ("z", "z [nm]", "%.3f"),
    ("photons", "intensity [photon]", "%.6g"),
    ("prob", "prob", "%.6g"),
    ("sigma_x", "uncertainty_x [nm]", "%.3f"),
    ("sigma_y", "uncertainty_y [nm]", "%.3f"),
    ("sigma_z", "uncertainty_z [nm]", "%.3f"),
)


LOCALIZATION_SUFFIXES = (".csv",)
STACK_SUFFIXES = (".tif", ".tiff")


def write_localizations(path: str | Path, locs: Localizations, overwrite: bool = False) -> Path:
    """Write a ThunderSTORM-compatible CSV (id, frame, x [nm], y [nm], then the optional
    columns that hold any value), rows ordered by frame."""
    if len(locs) and (locs.frame.min() < 1 or not np.isfinite(locs.x).all()
                      or not np.isfinite(locs.y).all()):
        raise ValueError("localizations need frames >= 1 and finite x, y to be written")
    path = prepare_output(path, overwrite)
    order = np.argsort(locs.frame, kind="stable")
    names = ["id", "frame", "x [nm]", "y [nm]"]
    formats = ["%d", "%d", "%.3f", "%.3f"]
    data = [np.arange(1, len(locs) + 1), locs.frame[order], locs.x[order], locs.y[order]]
    for column, name, fmt in _CSV_COLUMNS:
        if locs.has(column):
            names.append(name)
            formats.append(fmt)
            data.append(getattr(locs, column)[order])
    row = ",".join(formats)
    with atomic_path(path) as tmp, open(tmp, "w", newline="\n", encoding="utf-8") as fh:
        fh.write(",".join(f'"{n}"' for n in names) + "\n")
        for start in range(0, len(locs), 65536):
            block = zip(*(d[start:start + 65536].tolist() for d in data))
            fh.write("".join(row % values + "\n" for values in block))
    return path
