"""Super-resolution images from localization tables: histograms and Gaussian renders.

Same coordinate convention as ``loczoo.smlm.localizations``: render pixel i covers
[i, i + 1) * pixel_size_nm; x is the column, y the row.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from loczoo.errors import LoczooError
from loczoo.outputs import atomic_path, prepare_output
from loczoo.smlm.io import _write_imagej_tiff, check_pixel_size
from loczoo.smlm.localizations import Localizations

DEFAULT_SIGMA_NM = 20.0
METHODS = ("gaussian", "histogram")
SIGMA_GROUPS = 16
# 1 GiB of float32; larger renders are almost always a wrong pixel size or shape.
_MAX_PIXELS = 1 << 28


def _image_shape(shape_nm, pixel_size_nm: float) -> tuple[int, int]:
    pixel_size_nm = check_pixel_size(pixel_size_nm, "render pixel size")
    try:
        height_nm, width_nm = (float(v) for v in shape_nm)
    except (TypeError, ValueError):
        raise LoczooError(f"image size {shape_nm!r} is invalid; expected (height, width) in "
                          "nm") from None
    if not (math.isfinite(height_nm) and math.isfinite(width_nm)) or min(height_nm,
                                                                          width_nm) <= 0:
        raise LoczooError(f"image size {shape_nm!r} nm is invalid; expected positive numbers")
    # The tolerance keeps 640 nm / 10 nm at 64 pixels despite rounding in the division.
    shape = tuple(max(1, math.ceil(v / pixel_size_nm - 1e-9)) for v in (height_nm, width_nm))
    if shape[0] * shape[1] > _MAX_PIXELS:
        raise LoczooError(f"a render of {shape_nm[0]:g} x {shape_nm[1]:g} nm at "
                          f"{pixel_size_nm:g} nm per pixel would have {shape[0]} x {shape[1]} "
                          "pixels; choose a larger render pixel size")
    return shape


def render_histogram(locs: Localizations, shape_nm: tuple[float, float],
                     pixel_size_nm: float = 10.0, weights: np.ndarray | None = None) -> np.ndarray:
    """Number of localizations per render pixel (float32 [H, W]), or the sum of their
    ``weights``; those outside are dropped."""
    shape = _image_shape(shape_nm, pixel_size_nm)
    with np.errstate(invalid="ignore"):
        col = np.floor(locs.x / pixel_size_nm)
        row = np.floor(locs.y / pixel_size_nm)
    inside = (col >= 0) & (col < shape[1]) & (row >= 0) & (row < shape[0])
    flat = row[inside].astype(np.int64) * shape[1] + col[inside].astype(np.int64)
    w = None if weights is None else np.asarray(weights, np.float64)[inside]
    counts = np.bincount(flat, weights=w, minlength=shape[0] * shape[1])
    return counts.reshape(shape).astype(np.float32)


def _splat(x: np.ndarray, y: np.ndarray, shape: tuple[int, int],
           pixel_size_nm: float, weights: np.ndarray) -> np.ndarray:
    """Spread each localization's weight bilinearly over the four nearest pixel centres.

    Unlike binning, this keeps each localization's centroid exactly, so the blurred image is
    centred on the true position rather than on a pixel centre.
    """
    u = x / pixel_size_nm - 0.5
    v = y / pixel_size_nm - 0.5
    c0 = np.floor(u)
    r0 = np.floor(v)
    fu = u - c0
    fv = v - r0
    c0 = c0.astype(np.int64)
    r0 = r0.astype(np.int64)
    index, weight = [], []
    for dr, wr in ((0, 1.0 - fv), (1, fv)):
        for dc, wc in ((0, 1.0 - fu), (1, fu)):
            r = r0 + dr
            c = c0 + dc
            ok = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
            index.append(r[ok] * shape[1] + c[ok])
            weight.append((wr * wc * weights)[ok])
    image = np.bincount(np.concatenate(index), weights=np.concatenate(weight),
                        minlength=shape[0] * shape[1])
    return image.reshape(shape)


def _per_localization_sigma(locs: Localizations) -> np.ndarray:
    """Mean of the finite sigma_x, sigma_y per localization; the default where neither is."""
    both = np.stack([locs.sigma_x, locs.sigma_y])
    valid = np.isfinite(both) & (both > 0)
    count = valid.sum(axis=0)
    total = np.where(valid, both, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = total / count
    return np.where(count > 0, sigma, DEFAULT_SIGMA_NM)


def _sigma_groups(sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group index per localization and one representative sigma per group."""
    unique, inverse = np.unique(sigma, return_inverse=True)
    if unique.size <= SIGMA_GROUPS:
        return inverse, unique
    edges = np.geomspace(unique[0], unique[-1], SIGMA_GROUPS + 1)
    group = np.clip(np.searchsorted(edges, sigma, side="right") - 1, 0, SIGMA_GROUPS - 1)
    sums = np.bincount(group, weights=sigma, minlength=SIGMA_GROUPS)
    counts = np.bincount(group, minlength=SIGMA_GROUPS)
    with np.errstate(invalid="ignore", divide="ignore"):
        return group, sums / counts


def render_gaussian(locs: Localizations, shape_nm: tuple[float, float],
                    pixel_size_nm: float = 10.0, sigma_nm: float | None = None,
                    weights: np.ndarray | None = None) -> np.ndarray:
    """Each localization as a normalised 2D Gaussian (float32 [H, W]), times its weight.

    Args:
        locs: the localizations (x, y in nm).
        shape_nm: (height, width) of the field in nm.
        pixel_size_nm: render pixel size.
        sigma_nm: one width for all; by default each localization's uncertainty (mean of
            sigma_x and sigma_y) where known, else 20 nm.
        weights: one per localization (default 1).
    """
    from scipy import ndimage  # here, not at the top: it takes longer to import than the rest

    shape = _image_shape(shape_nm, pixel_size_nm)
    keep = np.isfinite(locs.x) & np.isfinite(locs.y)
    x, y = locs.x[keep], locs.y[keep]
    w = np.ones(len(locs)) if weights is None else np.asarray(weights, np.float64)
    w = w[keep]
    if sigma_nm is not None:
        sigma = check_pixel_size(sigma_nm, "render sigma")
        groups, values = np.zeros(x.size, np.int64), np.array([sigma])
    else:
        groups, values = _sigma_groups(_per_localization_sigma(locs)[keep])
    image = np.zeros(shape, np.float64)
    for index, value in enumerate(values):
        members = groups == index
        if not members.any():
            continue
        splat = _splat(x[members], y[members], shape, pixel_size_nm, w[members])
        image += ndimage.gaussian_filter(splat, value / pixel_size_nm, mode="constant")
    return image.astype(np.float32)


def render(locs: Localizations, shape_nm: tuple[float, float], method: str = "gaussian",
           pixel_size_nm: float = 10.0, sigma_nm: float | None = None,
           weights: np.ndarray | None = None) -> np.ndarray:
    """Render with ``method`` 'gaussian' or 'histogram' (sigma_nm only applies to gaussian)."""
    if method == "gaussian":
        return render_gaussian(locs, shape_nm, pixel_size_nm, sigma_nm, weights)
    if method == "histogram":
        return render_histogram(locs, shape_nm, pixel_size_nm, weights)
    raise LoczooError(f"unknown render method {method!r}; expected one of {', '.join(METHODS)}")


def render_colored_by_z(locs: Localizations, shape_nm: tuple[float, float],
                        method: str = "gaussian", pixel_size_nm: float = 10.0,
                        sigma_nm: float | None = None,
                        z_range_nm: tuple[float, float] | None = None) -> np.ndarray:
    """RGB uint8 [H, W, 3]: brightness from the density render, colour from the mean z of the
    localizations in each pixel over ``z_range_nm`` (default: the 1st to 99th percentile of
    z), blue (low) through green to red (high)."""
    keep = np.isfinite(locs.z)
    if not keep.any():
        raise LoczooError("the localizations have no z values to colour by")
    locs = locs.select(keep)
    if z_range_nm is None:
        z_range_nm = tuple(np.percentile(locs.z, [1, 99]))
    low, high = (float(v) for v in z_range_nm)
    if not high > low:
        high = low + 1.0
    density = render(locs, shape_nm, method, pixel_size_nm, sigma_nm).astype(np.float64)
    weighted = render(locs, shape_nm, method, pixel_size_nm, sigma_nm, weights=locs.z)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_z = np.where(density > 0, weighted / density, low)
    hue = np.clip((mean_z - low) / (high - low), 0.0, 1.0)
    return np.round(rainbow_colormap(hue) * _stretch(density)[..., None]).astype(np.uint8)


def rainbow_colormap(values: np.ndarray) -> np.ndarray:
    """RGB floats 0-255 [..., 3] for values in [0, 1] ("jet"): blue, cyan, green, yellow,
    red."""
    t = np.clip(np.asarray(values, np.float64), 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * t - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)
    return rgb * 255.0


def hot_colormap(values: np.ndarray) -> np.ndarray:
    """RGB uint8 [..., 3] for values in [0, 1]: black, red, yellow, white."""
    t = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    rgb = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)],
                   axis=-1)
    return np.round(rgb * 255).astype(np.uint8)


def _stretch(image: np.ndarray) -> np.ndarray:
    """Values scaled to [0, 1] with the 99.5th percentile of the non-zero pixels at 1."""
    finite = np.where(np.isfinite(image), image, 0.0)
    positive = finite[finite > 0]
    if positive.size == 0:
        return np.zeros(image.shape)
    top = float(np.percentile(positive, 99.5))
    return np.clip(finite / top, 0.0, 1.0)


def save_image(path: str | Path, image: np.ndarray, pixel_size_nm: float | None,
               overwrite: bool = False) -> Path:
    """Save a render: '.tif'/'.tiff' as float32 ImageJ TIFF with the pixel size, '.png' as
    8-bit 'hot' colour image stretched to the 99.5th percentile of the non-zero pixels. An RGB
    image (uint8 [H, W, 3], e.g. ``render_colored_by_z``) is saved as it is."""
    path = Path(path)
    image = np.asarray(image)
    rgb = image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.uint8
    if (image.ndim != 2 and not rgb) or 0 in image.shape:
        raise LoczooError(f"image for {path} has shape {image.shape}; expected [height, width] "
                          "or an RGB image")
    suffix = path.suffix.lower()
    if suffix not in (".tif", ".tiff", ".png"):
        raise LoczooError(f"output {path} has unknown suffix {path.suffix!r}; expected .tif, "
                          ".tiff or .png")
    pixel_size_nm = check_pixel_size(pixel_size_nm, "render pixel size")
    path = prepare_output(path, overwrite)
    with atomic_path(path) as tmp:
        if suffix == ".png":
            picture = Image.fromarray(image if rgb else hot_colormap(_stretch(image)))
            extra = {}
            if pixel_size_nm is not None:
                dpi = 2.54e7 / pixel_size_nm
                extra["dpi"] = (dpi, dpi)
            picture.save(tmp, format="PNG", **extra)
        elif rgb:
            tifffile.imwrite(tmp, image, photometric="rgb")
        else:
            _write_imagej_tiff(tmp, image.astype(np.float32)[None], pixel_size_nm)
    return path
