"""Super-resolution images from localization tables: histograms and Gaussian renders.

Same coordinate convention as ``loczoo.smlm.localizations``: render pixel i covers
[i, i + 1) * pixel_size_nm; x is the column, y the row.
"""

from __future__ import annotations

import math
import os
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
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")  # what save_image writes
SIGMA_GROUPS = 16


def physical_memory_bytes() -> int | None:
    """Installed memory (bytes), or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


# Most memory a render may need: 4 GB (an image of about 100 million pixels), or 80 % of this
# machine's memory if that is less. Larger renders are almost always a wrong pixel size, field
# of view or sigma, and would otherwise end with the process killed by the kernel.
MEMORY_BUDGET_BYTES = int(min(4e9, 0.8 * (physical_memory_bytes() or 8e9)))
# Peak bytes per render pixel while rendering and saving, rounded up from tracemalloc
# measurements (1500 x 1500 px): histogram 12, Gaussian 24 (direct) to 40 (FFT, plus its
# blocks), colour by z 13 more (a float64 density kept while the z-weighted render runs, the
# uint8 RGB image), saving a PNG 13.
_BYTES_PER_PIXEL = {"histogram": 24, "gaussian": 48}
_BYTES_PER_PIXEL_BY_Z = 24
# Per localization: the bilinear splat's indices and weights, the sigma groups, the copy of
# the table with finite z (measured: 25 to 175).
_BYTES_PER_LOCALIZATION = 320
# The FFT blur of large sigmas works on blocks of lines of at most this many bytes.
_FFT_BLOCK_BYTES = 64 * 2**20
# Kernels up to this radius (pixels) use scipy's direct filter; larger ones an FFT.
_DIRECT_RADIUS_PX = 32
_TRUNCATE = 4.0  # the Gaussian kernel ends at 4 sigma, as in scipy.ndimage.gaussian_filter
# An explicit sigma more than this many times the larger side of the field spreads every
# localization evenly over the whole image: refused as a mistake (a unit, an exponent).
_MAX_SIGMA_PER_FIELD = 10.0


def format_bytes(n: float) -> str:
    """'37.2 GB', '512.0 MB' (powers of 1000)."""
    if n >= 1e18:
        return f"{n / 1e15:.3g} PB"
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def _image_shape(shape_nm, pixel_size_nm: float) -> tuple[int, int]:
    """(rows, columns) of a render; may be astronomically large (see ``render_memory_bytes``)."""
    pixel_size_nm = check_pixel_size(pixel_size_nm, "render pixel size")
    try:
        height_nm, width_nm = (float(v) for v in shape_nm)
    except (TypeError, ValueError):
        raise LoczooError(f"image size {shape_nm!r} is invalid; expected (height, width) in "
                          "nm") from None
    if not (math.isfinite(height_nm) and math.isfinite(width_nm)) or min(height_nm,
                                                                          width_nm) <= 0:
        raise LoczooError(f"image size {shape_nm!r} nm is invalid; expected positive numbers")
    pixels = (height_nm / pixel_size_nm, width_nm / pixel_size_nm)
    if not all(math.isfinite(v) for v in pixels):
        raise LoczooError(f"a render of {height_nm:g} x {width_nm:g} nm at {pixel_size_nm:g} nm "
                          "per pixel has too many pixels to count; choose a larger render "
                          "pixel size")
    # The tolerance keeps 640 nm / 10 nm at 64 pixels despite rounding in the division.
    return tuple(max(1, math.ceil(v - 1e-9)) for v in pixels)


def render_memory_bytes(shape_px: tuple[int, int], n_localizations: int,
                        method: str = "gaussian", color_by_z: bool = False) -> int:
    """Estimated peak memory (bytes) of rendering ``n_localizations`` into an image of
    ``shape_px`` (rows, columns) and saving it: the image buffers, the per-localization arrays
    and the blur's working blocks (the Gaussian kernel is clipped to the image, so it never
    needs more than the image)."""
    rows, cols = (int(v) for v in shape_px)
    pixels = rows * cols
    per_pixel = _BYTES_PER_PIXEL.get(method, _BYTES_PER_PIXEL["gaussian"])
    if color_by_z:
        per_pixel += _BYTES_PER_PIXEL_BY_Z
    need = pixels * per_pixel + int(n_localizations) * _BYTES_PER_LOCALIZATION
    if method == "gaussian":
        need += _FFT_BLOCK_BYTES + 16 * (rows + cols)  # FFT blocks, clipped kernels
    return need


_ADVICE = "use a larger pixel size (--pixel-size) or a smaller field of view (--fov)"


def check_render_memory(shape_nm, pixel_size_nm: float, n_localizations: int,
                        method: str = "gaussian", color_by_z: bool = False,
                        advice: str = _ADVICE) -> tuple[int, int]:
    """The image shape (rows, columns) of a render, or a ``LoczooError`` in one line (ending
    in ``advice``) when the render would need more than ``MEMORY_BUDGET_BYTES``. Runs before
    anything is allocated."""
    shape = _image_shape(shape_nm, pixel_size_nm)
    need = render_memory_bytes(shape, n_localizations, method, color_by_z)
    if need > MEMORY_BUDGET_BYTES:
        what = "colour-by-z " if color_by_z else ""
        raise LoczooError(
            f"{what}render would need {format_bytes(need)} (image {shape[0]} x {shape[1]} px "
            f"of {float(pixel_size_nm):g} nm for {float(shape_nm[0]):g} x "
            f"{float(shape_nm[1]):g} nm, {int(n_localizations)} localizations), more than the "
            f"{format_bytes(MEMORY_BUDGET_BYTES)} budget; {advice}")
    return shape


def check_render_size(shape_nm, pixel_size_nm: float, n_localizations: int = 0,
                      method: str = "gaussian",
                      advice: str = "use a larger render pixel size (--render-pixel)"
                      ) -> tuple[int, int]:
    """``check_render_memory`` for a render planned before its localizations exist (``loczoo
    localize --render``): refuses an image that alone would exceed the budget, before any
    work. Returns (rows, columns)."""
    return check_render_memory(shape_nm, pixel_size_nm, n_localizations, method,
                               advice=advice)


def _check_sigma(sigma_nm: float, shape_nm) -> float:
    sigma = check_pixel_size(sigma_nm, "render sigma")
    field = max(float(v) for v in shape_nm)
    if sigma > _MAX_SIGMA_PER_FIELD * field:
        raise LoczooError(
            f"render sigma {sigma:g} nm is more than {_MAX_SIGMA_PER_FIELD:g} x the field of "
            f"view ({float(shape_nm[0]):g} x {float(shape_nm[1]):g} nm): every localization "
            "would be spread evenly over the whole image; use a smaller sigma (--sigma, nm)")
    return sigma


def render_histogram(locs: Localizations, shape_nm: tuple[float, float],
                     pixel_size_nm: float = 10.0, weights: np.ndarray | None = None) -> np.ndarray:
    """Number of localizations per render pixel (float32 [H, W]), or the sum of their
    ``weights``; those outside are dropped."""
    shape = check_render_memory(shape_nm, pixel_size_nm, len(locs), "histogram")
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


def _kernel_sum(sigma_px: float, radius: int) -> float:
    """Sum of exp(-k^2 / (2 sigma^2)) for k = -radius..radius: scipy's normalisation of its
    truncated kernel. Exact up to 100 000 pixels, beyond that by Euler-Maclaurin (the integral
    plus the end corrections; exact to double precision for such wide kernels)."""
    if radius <= 100_000:
        k = np.arange(-radius, radius + 1, dtype=np.float64)
        return float(np.exp(-0.5 * (k / sigma_px) ** 2).sum())
    edge = math.exp(-0.5 * (radius / sigma_px) ** 2)
    return (sigma_px * math.sqrt(2.0 * math.pi) * math.erf(radius / (sigma_px * math.sqrt(2.0)))
            + edge - (radius / sigma_px) / sigma_px * edge / 6.0)


def _blur_axis_fft(image: np.ndarray, sigma_px: float, radius: int, axis: int) -> np.ndarray:
    """One axis of the truncated Gaussian filter, with the kernel clipped to the image (beyond
    it there is only zero padding) and the convolution done by FFT in blocks of lines."""
    from scipy.signal import fftconvolve

    n = image.shape[axis]
    reach = min(radius, n - 1)
    offsets = np.arange(-reach, reach + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma_px) ** 2) / _kernel_sum(sigma_px, radius)
    lines = np.moveaxis(image, axis, -1)
    out = np.empty(lines.shape)
    block = max(1, _FFT_BLOCK_BYTES // (48 * (n + 2 * reach + 1)))
    for start in range(0, lines.shape[0], block):
        chunk = lines[start:start + block]
        blurred = fftconvolve(chunk, weights[None, :], mode="same", axes=-1)
        # FFT round-off leaves about 1e-16 x the line's total where the exact result is 0 (and
        # slightly negative values): clear what is below 1e-13 of the line's total weight.
        floor = 1e-13 * weights.max() * np.abs(chunk).sum(axis=-1, keepdims=True)
        blurred[blurred <= floor] = 0.0
        out[start:start + block] = blurred
    return np.moveaxis(out, -1, axis)


def _gaussian_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(image, sigma_px, mode="constant")``: that function itself
    for kernels up to 32 pixels in radius; larger kernels are clipped to the image and applied
    by FFT, so that a wide sigma costs neither a kernel longer than the image nor a direct
    convolution with it (equal to scipy's result to about 1e-13 of the peak)."""
    from scipy import ndimage  # here, not at the top: it takes longer to import than the rest

    radius = int(_TRUNCATE * sigma_px + 0.5)
    if radius <= _DIRECT_RADIUS_PX:
        return ndimage.gaussian_filter(image, sigma_px, mode="constant")
    for axis in (0, 1):
        image = _blur_axis_fft(image, sigma_px, radius, axis)
    return image


def render_gaussian(locs: Localizations, shape_nm: tuple[float, float],
                    pixel_size_nm: float = 10.0, sigma_nm: float | None = None,
                    weights: np.ndarray | None = None) -> np.ndarray:
    """Each localization as a normalised 2D Gaussian (float32 [H, W]), times its weight.

    Args:
        locs: the localizations (x, y in nm).
        shape_nm: (height, width) of the field in nm.
        pixel_size_nm: render pixel size.
        sigma_nm: one width for all; by default each localization's uncertainty (mean of
            sigma_x and sigma_y) where known, else 20 nm. Wide kernels are clipped to the
            image and applied by FFT; an explicit sigma over 10 x the field is refused.
        weights: one per localization (default 1).

    Raises ``LoczooError`` before allocating when the render would need more than
    ``MEMORY_BUDGET_BYTES`` (see ``check_render_memory``).
    """
    shape = check_render_memory(shape_nm, pixel_size_nm, len(locs), "gaussian")
    keep = np.isfinite(locs.x) & np.isfinite(locs.y)
    x, y = locs.x[keep], locs.y[keep]
    w = np.ones(len(locs)) if weights is None else np.asarray(weights, np.float64)
    w = w[keep]
    if sigma_nm is not None:
        sigma = _check_sigma(sigma_nm, shape_nm)
        groups, values = np.zeros(x.size, np.int64), np.array([sigma])
    else:
        groups, values = _sigma_groups(_per_localization_sigma(locs)[keep])
    image = np.zeros(shape, np.float64)
    for index, value in enumerate(values):
        members = groups == index
        if not members.any():
            continue
        splat = _splat(x[members], y[members], shape, pixel_size_nm, w[members])
        image += _gaussian_blur(splat, value / pixel_size_nm)
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


def z_colour_range(locs: Localizations,
                   z_range_nm: tuple[float, float] | None = None) -> tuple[float, float]:
    """The z range (low, high) in nm that ``render_colored_by_z`` maps from blue to red:
    ``z_range_nm``, or by default the 1st to 99th percentile of the finite z; ``high`` is
    ``low + 1`` where the range is empty (all z equal)."""
    z = np.asarray(locs.z, np.float64)
    z = z[np.isfinite(z)]
    if z.size == 0:
        raise LoczooError("the localizations have no z values to colour by")
    if z_range_nm is None:
        z_range_nm = tuple(np.percentile(z, [1, 99]))
    low, high = (float(v) for v in z_range_nm)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise LoczooError(f"z range {z_range_nm!r} is invalid; expected two finite numbers (nm)")
    if not high > low:
        high = low + 1.0
    return low, high


def _row_blocks(rows: int, cols: int, bytes_per_pixel: int):
    """Row slices of about 16 MB of work each, for pixel-wise colouring without full-size
    temporaries."""
    step = max(1, (16 * 2**20) // max(1, cols * bytes_per_pixel))
    return (slice(start, start + step) for start in range(0, rows, step))


def render_colored_by_z(locs: Localizations, shape_nm: tuple[float, float],
                        method: str = "gaussian", pixel_size_nm: float = 10.0,
                        sigma_nm: float | None = None,
                        z_range_nm: tuple[float, float] | None = None) -> np.ndarray:
    """RGB uint8 [H, W, 3]: brightness from the density render, colour from the mean z of the
    localizations in each pixel over ``z_range_nm`` (default: the 1st to 99th percentile of
    z, see ``z_colour_range``), blue (low) through green to red (high). ``with_colour_bar``
    adds the scale."""
    low, high = z_colour_range(locs, z_range_nm)
    locs = locs.select(np.isfinite(locs.z))
    check_render_memory(shape_nm, pixel_size_nm, len(locs), method, color_by_z=True)
    density = render(locs, shape_nm, method, pixel_size_nm, sigma_nm).astype(np.float64)
    weighted = render(locs, shape_nm, method, pixel_size_nm, sigma_nm, weights=locs.z)
    brightness = _stretch(density)
    rgb = np.empty(density.shape + (3,), np.uint8)
    for rows in _row_blocks(*density.shape, 128):
        d = density[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_z = np.where(d > 0, weighted[rows] / d, low)
        hue = np.clip((mean_z - low) / (high - low), 0.0, 1.0)
        rgb[rows] = np.round(rainbow_colormap(hue) * brightness[rows][..., None])
    return rgb


# Height in pixels of the colour bar strip that ``with_colour_bar`` puts below an image, and
# the least width it needs for its labels (narrower images are padded with black on the right).
COLOUR_BAR_HEIGHT = 32
COLOUR_BAR_MIN_WIDTH = 160
_BAR_TOP, _BAR_ROWS, _BAR_MARGIN = 4, 12, 4


def _format_nm(value: float, span: float) -> str:
    return f"{value:.0f}" if span >= 20 else f"{value:.2f}"


def with_colour_bar(rgb: np.ndarray, low_nm: float, high_nm: float,
                    label: str = "z") -> np.ndarray:
    """``rgb`` (uint8 [H, W, 3]) with a colour bar strip of ``COLOUR_BAR_HEIGHT`` rows below
    it: the rainbow scale from ``low_nm`` (left) to ``high_nm`` (right) and both ends written
    under it in nm, with ``label`` in the middle.

    The image is not resampled: it stays at rows 0 to H - 1 and columns 0 to W - 1 of the
    result, pixel for pixel. An image narrower than ``COLOUR_BAR_MIN_WIDTH`` gets black
    columns on its right so that the labels fit."""
    from PIL import ImageDraw, ImageFont

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise LoczooError(f"colour bar needs an RGB uint8 image [H, W, 3], got {rgb.shape} "
                          f"{rgb.dtype}")
    height, width = rgb.shape[:2]
    canvas_width = max(width, COLOUR_BAR_MIN_WIDTH)
    out = np.zeros((height + COLOUR_BAR_HEIGHT, canvas_width, 3), np.uint8)
    out[:height, :width] = rgb
    bar_width = canvas_width - 2 * _BAR_MARGIN
    ramp = np.round(rainbow_colormap(np.linspace(0.0, 1.0, bar_width))).astype(np.uint8)
    top = height + _BAR_TOP
    out[top:top + _BAR_ROWS, _BAR_MARGIN:_BAR_MARGIN + bar_width] = ramp[None]
    strip = Image.fromarray(out[height + _BAR_TOP + _BAR_ROWS:])
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default()
    span = float(high_nm) - float(low_nm)
    texts = (f"{_format_nm(low_nm, span)} nm", label, f"{_format_nm(high_nm, span)} nm")
    for text, align in zip(texts, ("left", "centre", "right")):
        box = draw.textbbox((0, 0), text, font=font)
        text_width = box[2] - box[0]
        if align == "left":
            x = _BAR_MARGIN
        elif align == "right":
            x = canvas_width - _BAR_MARGIN - text_width
        else:
            x = (canvas_width - text_width) // 2
        draw.text((x - box[0], 1 - box[1]), text, fill=(255, 255, 255), font=font)
    out[height + _BAR_TOP + _BAR_ROWS:] = np.asarray(strip)
    return out


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


def _hot_image(image: np.ndarray) -> np.ndarray:
    """``hot_colormap(_stretch(image))``, coloured in blocks of rows to bound the memory."""
    stretched = _stretch(image)
    out = np.empty(stretched.shape + (3,), np.uint8)
    for rows in _row_blocks(*stretched.shape, 96):
        out[rows] = hot_colormap(stretched[rows])
    return out


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
    if suffix not in IMAGE_SUFFIXES:
        raise LoczooError(f"output {path} has unknown suffix {path.suffix!r}; expected .tif, "
                          ".tiff or .png")
    pixel_size_nm = check_pixel_size(pixel_size_nm, "render pixel size")
    path = prepare_output(path, overwrite)
    with atomic_path(path) as tmp:
        if suffix == ".png":
            picture = Image.fromarray(image if rgb else _hot_image(image))
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
