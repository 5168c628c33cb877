"""Astigmatic PSF calibration from a bead z-stack, and the ``psf.json`` file that stores it.

A bead z-stack (one or several sub-resolution fluorescent beads, imaged at planes ``z_step_nm``
apart, focus anywhere in the stack) becomes the parametric model of Huang et al. (Science
319:810, 2008) that ``loczoo.smlm.simulate.AstigmatismConfig`` simulates:

    sigma_x(z) = sigma0_x sqrt(1 + u^2 + a_x u^3 + b_x u^4),  u = (z - focus_x) / depth,
    sigma_y(z) = sigma0_y sqrt(1 + v^2 + a_y v^3 + b_y v^4),  v = (z - focus_y) / depth.

Steps (NumPy/SciPy only, no TensorFlow):

1. Beads (``find_beads``): local maxima of the maximum projection over z (smoothed by a 1 px
   Gaussian) that stand 10 robust noise levels (MAD) above its median and are the highest point
   within the fit box. A bead needs its whole fit box inside the frame and no other spot within
   two box half-widths (isolated). Beads with a pixel at saturation (the camera's
   ``saturation_adu`` when given, an integer stack's largest value) are refused, or left out
   with ``skip_saturated``. Faint beads are kept (each plane counts by its precision); at most
   the 50 brightest are used.
2. Per bead and plane (``fit_spots``): a maximum-likelihood fit of a pixel-integrated
   elliptical Gaussian (x, y, sigma_x, sigma_y, photons, background) to the box in photons,
   (ADU - baseline) x photons_per_adu, under Poisson noise: Levenberg-Marquardt on the Poisson
   log-likelihood (Fisher scoring), vectorised over all boxes. Pixels below the baseline count
   as 0 photons in the likelihood. Without a known camera the baseline is the stack's 0.1th
   percentile and 1 photon per ADU is assumed: the widths hardly depend on either (the
   background is a free parameter and the estimating equation is invariant to a common gain).
   A plane is used when its fit converged to a plausible spot (width between 0.3 px and 60 % of
   the box half-width, centre within 2 px of the bead, relative width error below 25 %).
3. Plane z = (index) x ``z_step_nm``: z grows with the plane index. The z model
   (``fit_z_model``) is fitted to all beads' widths at once by weighted least squares
   (weights: the Cramér-Rao bound of each width, floored at 0.5 % of it, rescaled to the
   observed scatter), robust (soft-L1 loss, then planes beyond 5 robust standard deviations
   left out), with one shared depth and a z offset per bead (beads sit at different heights).
   z = 0 is placed midway between the two foci, so focus_x = -focus_y: the PSF is roundest near
   z = 0. The higher-order terms a, b are fitted when every axis has at least 12 usable planes.
   Foci closer than 0.2 x depth are refused: such a PSF barely encodes z.
4. ``residuals_nm``: rms of measured minus model width per axis over the planes used.
   ``z_range_nm``: the z covered by the beads' usable planes, narrowed to the interval around
   z = 0 where the squared widths stay positive and the ellipticity sigma_x - sigma_y is
   strictly monotone (each width pair then belongs to one z).

psf.json (``write_psf`` / ``read_psf``), one JSON object, every number finite::

    {
      "format_version": 1,                 optional; readers refuse a newer one
      "model": "astigmatic_gaussian",
      "sigma0_x_nm": 140.1,                in-focus widths (standard deviations), > 0
      "sigma0_y_nm": 135.2,
      "focus_x_nm": -205.3,                z of the narrowest sigma_x / sigma_y (nm)
      "focus_y_nm": 205.3,
      "depth_nm": 290.4,                   > 0
      "a_x": 0.05, "b_x": 0.03,            higher-order terms (0 when not fitted)
      "a_y": -0.01, "b_y": 0.02,
      "pixel_size_nm": 100.0,              camera pixel of the bead stack
      "z_range_nm": [-600.0, 600.0],       where the model is valid (low < high)
      "residuals_nm": {"x": 1.1, "y": 1.0},
      "beads": 3, "planes": 61,            beads used, planes in the stack (>= 5)
      "z_step_nm": 20.0,
      "source": "beads.tif",
      "loczoo_version": "0.1.0"
    }

No other key is allowed (a typo in a hand-edited file is an error, not a silently ignored
value). Widths are those of a Gaussian integrated over each pixel, as the simulator renders.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage, optimize

from loczoo.errors import LoczooError
from loczoo.smlm.estimate import gaussian_pixel_profile

MODEL = "astigmatic_gaussian"
FORMAT_VERSION = 1
MIN_PLANES = 5               # planes in a stack, and usable planes per bead and axis
DETECT_NOISE_LEVELS = 10.0   # a bead's peak above the projection's median, in MAD noise units
BOX_NM = 1000.0              # fit box half-width (nm): 10 px at 100 nm pixels
HIGHER_ORDER_PLANES = 12     # usable planes per axis before a, b are fitted
OUTLIER_SIGMAS = 5.0
MIN_FOCUS_SEPARATION = 0.2   # x and y foci at least this x depth apart (an astigmatic PSF)
MAX_BEADS = 50               # the brightest isolated beads used (one z offset each in the fit)
WIDTH_FLOOR = 0.005          # relative floor of a width's error in the z fit
_CHUNK_PIXELS = 4_000_000    # boxes x pixels fitted at once (memory of the Jacobian)


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class PsfModel:
    """The calibrated astigmatic PSF: the fields of psf.json (module docstring)."""

    sigma0_x_nm: float
    sigma0_y_nm: float
    focus_x_nm: float
    focus_y_nm: float
    depth_nm: float
    a_x: float
    b_x: float
    a_y: float
    b_y: float
    pixel_size_nm: float
    z_range_nm: tuple[float, float]
    residuals_nm: dict = field(default_factory=lambda: {"x": 0.0, "y": 0.0})
    beads: int = 1
    planes: int = MIN_PLANES
    z_step_nm: float = 1.0
    source: str = ""
    loczoo_version: str = ""
    model: str = MODEL

    def widening_squared(self, z_nm, axis: str) -> np.ndarray:
        """(sigma(z) / sigma0)^2 along ``axis``."""
        focus, a, b = ((self.focus_x_nm, self.a_x, self.b_x) if axis == "x"
                       else (self.focus_y_nm, self.a_y, self.b_y))
        u = (np.asarray(z_nm, dtype=np.float64) - focus) / self.depth_nm
        return 1.0 + u * u + a * u**3 + b * u**4

    def sigmas(self, z_nm) -> tuple[np.ndarray, np.ndarray]:
        """(sigma_x, sigma_y) in nm at ``z_nm`` (NaN where the squared width is not positive)."""
        wx, wy = (self.widening_squared(z_nm, axis) for axis in "xy")
        with np.errstate(invalid="ignore"):
            return (self.sigma0_x_nm * np.sqrt(np.where(wx > 0, wx, np.nan)),
                    self.sigma0_y_nm * np.sqrt(np.where(wy > 0, wy, np.nan)))

    def to_dict(self) -> dict:
        """The psf.json object (numbers rounded to what the calibration resolves)."""
        def r(v, digits=2):
            return round(float(v), digits)

        return {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "sigma0_x_nm": r(self.sigma0_x_nm), "sigma0_y_nm": r(self.sigma0_y_nm),
            "focus_x_nm": r(self.focus_x_nm), "focus_y_nm": r(self.focus_y_nm),
            "depth_nm": r(self.depth_nm),
            "a_x": r(self.a_x, 5), "b_x": r(self.b_x, 5),
            "a_y": r(self.a_y, 5), "b_y": r(self.b_y, 5),
            "pixel_size_nm": float(self.pixel_size_nm),
            "z_range_nm": [r(self.z_range_nm[0], 1), r(self.z_range_nm[1], 1)],
            "residuals_nm": {"x": r(self.residuals_nm["x"], 3),
                             "y": r(self.residuals_nm["y"], 3)},
            "beads": int(self.beads), "planes": int(self.planes),
            "z_step_nm": float(self.z_step_nm),
            "source": str(self.source),
            "loczoo_version": str(self.loczoo_version),
        }


# field -> (kind, low, high, low inclusive); kinds: "number", "int", "str", "range", "residuals"
_FIELDS = {
    "model": ("str", None, None, True),
    "sigma0_x_nm": ("number", 0.0, 1e4, False),
    "sigma0_y_nm": ("number", 0.0, 1e4, False),
    "focus_x_nm": ("number", -1e5, 1e5, True),
    "focus_y_nm": ("number", -1e5, 1e5, True),
    "depth_nm": ("number", 0.0, 1e5, False),
    "a_x": ("number", -100.0, 100.0, True),
    "b_x": ("number", -100.0, 100.0, True),
    "a_y": ("number", -100.0, 100.0, True),
    "b_y": ("number", -100.0, 100.0, True),
    "pixel_size_nm": ("number", 0.0, 1e5, False),
    "z_range_nm": ("range", -1e5, 1e5, True),
    "residuals_nm": ("residuals", 0.0, 1e4, True),
    "beads": ("int", 1, 10**9, True),
    "planes": ("int", MIN_PLANES, 10**9, True),
    "z_step_nm": ("number", 0.0, 1e5, False),
    "source": ("str", None, None, True),
    "loczoo_version": ("str", None, None, True),
}


def _number(where: str, name: str, value, low, high, low_inclusive: bool,
            integer: bool = False):
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise LoczooError(f"{where}: field {name} must be {kind}, got {value!r}")
    if not math.isfinite(value):
        raise LoczooError(f"{where}: field {name} must be a finite number, got {value}")
    above = value >= low if low_inclusive else value > low
    if not (above and value <= high):
        bound = f"{'>=' if low_inclusive else '>'} {low:g}"
        raise LoczooError(f"{where}: field {name} must be {bound} and <= {high:g}, got {value}")
    return value


def psf_from_dict(data, where: str = "psf") -> PsfModel:
    """A ``PsfModel`` from a psf.json object, every field checked: one LoczooError naming
    ``where`` (the file) and the field for a missing, unknown, mistyped, non-finite or
    out-of-range value, and for a model whose squared width is not positive inside its
    ``z_range_nm``."""
    if not isinstance(data, dict):
        raise LoczooError(f"{where}: expected a JSON object ({{...}}) with the PSF fields, got "
                          f"{type(data).__name__}")
    version = data.get("format_version", FORMAT_VERSION)
    _number(where, "format_version", version, 1, 10**6, True, integer=True)
    if version > FORMAT_VERSION:
        raise LoczooError(f"{where}: field format_version is {version}, newer than this loczoo "
                          f"reads ({FORMAT_VERSION}); update loczoo")
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        raise LoczooError(f"{where}: field {missing[0]} is missing (a psf.json needs "
                          f"{', '.join(_FIELDS)})")
    unknown = sorted(set(data) - set(_FIELDS) - {"format_version"}, key=str)
    if unknown:
        raise LoczooError(f"{where}: field {unknown[0]} is unknown; known fields: "
                          f"format_version, {', '.join(_FIELDS)}")
    values = {}
    for name, (kind, low, high, inclusive) in _FIELDS.items():
        value = data[name]
        if kind == "str":
            if not isinstance(value, str):
                raise LoczooError(f"{where}: field {name} must be a string, got {value!r}")
        elif kind in ("number", "int"):
            value = _number(where, name, value, low, high, inclusive, integer=kind == "int")
            value = int(value) if kind == "int" else float(value)
        elif kind == "range":
            if not isinstance(value, list) or len(value) != 2:
                raise LoczooError(f"{where}: field {name} must be a list [low, high], got "
                                  f"{value!r}")
            value = tuple(float(_number(where, f"{name}[{i}]", v, low, high, inclusive))
                          for i, v in enumerate(value))
            if not value[0] < value[1]:
                raise LoczooError(f"{where}: field {name} must have low < high, got "
                                  f"{list(value)}")
        else:  # residuals
            if not isinstance(value, dict) or set(value) != {"x", "y"}:
                raise LoczooError(f"{where}: field {name} must be {{\"x\": nm, \"y\": nm}}, got "
                                  f"{value!r}")
            value = {axis: float(_number(where, f"{name}.{axis}", value[axis], low, high,
                                         inclusive)) for axis in "xy"}
        values[name] = value
    if values["model"] != MODEL:
        raise LoczooError(f"{where}: field model must be {MODEL!r}, got {values['model']!r}")
    psf = PsfModel(**values)
    z = np.linspace(*psf.z_range_nm, 2001)
    for axis in "xy":
        factor = psf.widening_squared(z, axis)
        if not (factor > 0).all():
            bad = int(np.flatnonzero(~(factor > 0))[0])
            raise LoczooError(
                f"{where}: fields a_{axis}, b_{axis}: sigma_{axis}(z)^2 would be "
                f"{factor[bad]:.3g} x sigma0^2 at z = {z[bad]:.0f} nm, inside z_range_nm "
                f"{list(psf.z_range_nm)}; the file is damaged or edited")
    return psf


def read_psf(path: str | Path) -> PsfModel:
    """The PSF model of a psf.json file, every field checked (``psf_from_dict``); one
    LoczooError naming the file (and the field) for anything wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoczooError(f"PSF file {path} does not exist") from None
    except IsADirectoryError:
        raise LoczooError(f"PSF file {path} is a folder; expected a psf.json file") from None
    except UnicodeDecodeError:
        raise LoczooError(f"{path} is not a text (JSON) file; expected a psf.json") from None
    except OSError as err:
        raise LoczooError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LoczooError(f"{path} is not valid JSON ({err})") from None
    return psf_from_dict(data, str(path))


def write_psf(path: str | Path, psf: PsfModel) -> Path:
    """Write ``psf`` as psf.json at ``path`` through a temporary file (the caller checked the
    output with ``loczoo.outputs.prepare_output``). The object is checked as ``read_psf``
    would, so loczoo never writes a file it refuses to read."""
    from loczoo.outputs import atomic_path

    data = psf.to_dict()
    psf_from_dict(data, str(path))
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return Path(path)


def check_psf_pixel_size(psf: PsfModel, pixel_size_nm: float | None,
                         what: str = "the data") -> float:
    """The pixel size to use with ``psf``: its own, when ``pixel_size_nm`` (the data's; None:
    unknown) agrees within 0.1 %; LoczooError otherwise (a PSF measured on other pixels has
    other widths in pixels: bin or calibrate again)."""
    if pixel_size_nm is None:
        return float(psf.pixel_size_nm)
    if not abs(float(pixel_size_nm) - psf.pixel_size_nm) <= 1e-3 * psf.pixel_size_nm:
        source = f" ({psf.source})" if psf.source else ""
        raise LoczooError(f"the PSF calibration{source} was measured with "
                          f"{psf.pixel_size_nm:g} nm pixels, {what} has {float(pixel_size_nm):g} "
                          f"nm pixels; calibrate with beads imaged on the same camera and "
                          f"binning, or give the right --pixel-size")
    return float(psf.pixel_size_nm)


def astigmatism_from_psf(psf: PsfModel):
    """(``AstigmatismConfig``, ``psf_sigma_nm``) that make ``loczoo.smlm.simulate`` render
    exactly the calibrated widths: the per-axis in-focus widths, foci, depth and higher-order
    terms, and a one-value range (s, s) with s the geometric mean of the two widths (the
    emitters' ``sigma``; widen it to vary the widths by a relative amount). Use it with
    ``z_range_nm`` inside ``psf.z_range_nm`` and ``pixel_size_nm`` = ``psf.pixel_size_nm``."""
    from loczoo.smlm.simulate import AstigmatismConfig

    astig = AstigmatismConfig(
        focus_x_nm=psf.focus_x_nm, focus_y_nm=psf.focus_y_nm, depth_nm=psf.depth_nm,
        a_x=psf.a_x, b_x=psf.b_x, a_y=psf.a_y, b_y=psf.b_y,
        sigma0_x_nm=psf.sigma0_x_nm, sigma0_y_nm=psf.sigma0_y_nm)
    s = math.sqrt(psf.sigma0_x_nm * psf.sigma0_y_nm)
    return astig, (s, s)


def has_astigmatic_psf(config) -> bool:
    """The configuration simulates an astigmatic (3D) PSF: its spots are elliptical and its x
    and y are not interchangeable."""
    return getattr(getattr(config, "imaging", None), "astigmatism", None) is not None


def config_with_psf(config, psf: PsfModel | None, where: str = "--psf",
                    hint: str = "use --config 3d or a 3D preset"):
    """``config`` (a localization entry's configuration) simulating the calibrated ``psf``:
    ``imaging.astigmatism`` and ``imaging.psf_sigma_nm`` (``astigmatism_from_psf``),
    ``imaging.pixel_size_nm``, ``imaging.z_range_nm`` (the PSF's valid range; narrow it
    afterwards to the data's, ``check_config_z_range``) and no PSF family
    (``imaging.astigmatism_spread`` 0); unchanged when ``psf`` is None.
    Refused in one line (naming ``where``, e.g. ``--psf psf.json``) for a configuration that
    predicts no z, and when the configuration keeps data constants (a parent's ``z_max``)
    that cannot represent the PSF's z range."""
    from dataclasses import fields, replace

    if psf is None:
        return config
    imaging = getattr(config, "imaging", None)
    name = type(config).__name__
    if imaging is None or "astigmatism" not in {f.name for f in fields(imaging)}:
        raise LoczooError(f"{where}: a {name} has no simulated astigmatic PSF "
                          f"(imaging.astigmatism); drop --psf")
    if not hasattr(config, "predict_z"):
        raise LoczooError(f"{where}: a {name} localizes in 2D (predicts no z); a 3D PSF "
                          f"needs a 3D model such as decode --config 3d")
    if not config.predict_z:
        raise LoczooError(f"{where}: this {name} is 2D (predict_z false); {hint}")
    z_low, z_high = psf.z_range_nm
    z_max = getattr(config, "z_max", 0.0)
    if getattr(config, "has_scaling", False) and z_max > 0 and max(-z_low, z_high) > z_max:
        raise LoczooError(f"{where}: its z range {z_low:g}..{z_high:g} nm exceeds the "
                          f"model's z_max {z_max:g} nm (a data constant kept from its parent); "
                          f"train a new model (loczoo train decode --config 3d --psf ...)")
    astigmatism, sigma = astigmatism_from_psf(psf)
    # The calibrated PSF is the microscope's own: no family around it (a broad parent such as
    # decode/sim-3d-astig-broad was trained with imaging.astigmatism_spread > 0).
    return replace(config, imaging=replace(
        imaging, astigmatism=astigmatism, psf_sigma_nm=sigma, z_range_nm=(z_low, z_high),
        pixel_size_nm=float(psf.pixel_size_nm), astigmatism_spread=0.0))


def check_config_z_range(config, psf: PsfModel | None, where: str = "--psf") -> None:
    """The z range a configuration simulates lies within the range ``psf`` was calibrated
    over (beyond it the widths are extrapolated); one line naming both otherwise."""
    if psf is None:
        return
    low, high = config.imaging.z_range_nm
    p_low, p_high = psf.z_range_nm
    if low < p_low - 1e-6 or high > p_high + 1e-6:
        raise LoczooError(f"imaging.z_range_nm {low:g}..{high:g} nm reaches beyond the z range "
                          f"{p_low:g}..{p_high:g} nm that {where} was calibrated over; narrow "
                          f"it (--set imaging.z_range_nm=[lo,hi]) or calibrate over a wider "
                          f"bead stack")


# --------------------------------------------------------------------------- beads


@dataclass
class Bead:
    """A bead: the centre pixel of its fit box (row, col), its peak above the projection's
    median (ADU) and the per-plane fits ([planes] arrays in nm and photons; ``good`` marks the
    planes whose fit is usable)."""

    row: int
    col: int
    peak_adu: float
    x_nm: np.ndarray | None = None       # [planes] positions in the frame
    y_nm: np.ndarray | None = None
    sigma_x_nm: np.ndarray | None = None
    sigma_y_nm: np.ndarray | None = None
    error_x_nm: np.ndarray | None = None  # Cramér-Rao bounds of the widths
    error_y_nm: np.ndarray | None = None
    photons: np.ndarray | None = None
    background: np.ndarray | None = None
    good: np.ndarray | None = None        # [planes] bool: the fit is used
    z0_nm: float = math.nan               # stack z (from plane 1) where the bead is at z = 0
    inlier_x: np.ndarray | None = None    # [planes] bool: used in the z fit (not an outlier)
    inlier_y: np.ndarray | None = None


def _robust_noise(values: np.ndarray) -> tuple[float, float]:
    median = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - median)))
    return median, mad


def find_beads(frames, box_radius: int, notes: list[str]) -> list[Bead]:
    """Isolated beads in a z-stack [N, H, W] (module docstring, step 1), brightest first.
    Raises LoczooError when there is none, saying why."""
    projection = np.asarray(frames.max(axis=0), dtype=np.float64)
    smooth = ndimage.gaussian_filter(projection, 1.0, mode="nearest")
    level, noise = _robust_noise(smooth)
    noise = max(noise, 1e-9 * max(abs(level), 1.0))
    size = 2 * box_radius + 1
    is_max = smooth == ndimage.maximum_filter(smooth, size=size, mode="nearest")
    strong = is_max & (smooth > level + DETECT_NOISE_LEVELS * noise)
    labels, count = ndimage.label(strong)
    if count == 0:
        raise LoczooError(
            f"no beads found: no spot in the maximum projection over z stands "
            f"{DETECT_NOISE_LEVELS:g} noise levels above its background (median "
            f"{level:.4g}, noise {noise:.3g}); is this a bead z-stack?")
    centres = np.array(ndimage.center_of_mass(strong, labels, range(1, count + 1)))
    centres = np.rint(centres).astype(int)
    heights = smooth[centres[:, 0], centres[:, 1]] - level
    order = np.argsort(-heights)
    centres, heights = centres[order], heights[order]
    height, width = projection.shape
    beads, border, crowded = [], 0, 0
    for i, ((row, col), peak) in enumerate(zip(centres, heights)):
        if not (box_radius <= row < height - box_radius and box_radius <= col < width - box_radius):
            border += 1
            continue
        distance = np.hypot(*(centres - (row, col)).T)
        distance[i] = np.inf
        if distance.min() < 2 * box_radius:
            crowded += 1
            continue
        beads.append(Bead(row=int(row), col=int(col), peak_adu=float(peak)))
    spots = f"{count} spot{'s' if count != 1 else ''}"
    if border or crowded:
        notes.append(f"{spots} in the maximum projection: {len(beads)} usable bead(s), "
                     f"{border} too close to the border (the {size} px fit box must fit), "
                     f"{crowded} with another spot closer than {2 * box_radius} px")
    if not beads:
        raise LoczooError(
            f"no usable bead: of {spots} found, {border} are too close to the border (the "
            f"{size} px fit box needs {box_radius} px of margin) and {crowded} have another "
            f"spot closer than {2 * box_radius} px; use a field with isolated beads away from "
            f"the edges (or a smaller --box)")
    return beads


def saturation_level(dtype: np.dtype, saturation_adu: float | None) -> tuple[float | None, str]:
    """The ADU value at which a pixel counts as saturated, and where it comes from: the
    camera's ``saturation_adu`` when given, else (and at most) an integer type's largest
    value; None for a real-valued stack without a given saturation."""
    levels = []
    if saturation_adu is not None:
        levels.append((float(saturation_adu), "the camera's saturation"))
    if np.dtype(dtype).kind in "ui":
        levels.append((float(np.iinfo(dtype).max), f"the largest {np.dtype(dtype).name} value"))
    if not levels:
        return None, ""
    return min(levels)


def _boxes(frames, beads: list[Bead], r: int) -> np.ndarray:
    """[B, N, S, S] raw boxes (ADU) around each bead."""
    return np.stack([np.asarray(frames[:, b.row - r:b.row + r + 1, b.col - r:b.col + r + 1])
                     for b in beads])


# --------------------------------------------------------------------------- per-plane fits


def _model(theta: np.ndarray, size: int, jacobian: bool = True):
    """Expected photons [F, S*S] (rows y, columns x) and the Jacobian [F, 6, S*S] for
    theta = (x, y, sigma_x, sigma_y, photons, background) in pixels (pixel k covers [k, k+1))."""
    x, y, sx, sy, n, bg = theta.T
    ex, dex_dc, dex_ds = gaussian_pixel_profile(x, sx, size)
    ey, dey_dc, dey_ds = gaussian_pixel_profile(y, sy, size)
    shape = (len(theta), size * size)

    def outer(py, px):
        return (py[:, :, None] * px[:, None, :]).reshape(shape)

    unit = outer(ey, ex)
    mu = n[:, None] * unit + bg[:, None]
    if not jacobian:
        return mu, None
    jac = np.stack([n[:, None] * outer(ey, dex_dc), n[:, None] * outer(dey_dc, ex),
                    n[:, None] * outer(ey, dex_ds), n[:, None] * outer(dey_ds, ex),
                    unit, np.ones(shape)], axis=1)
    return mu, jac


def _clamp(theta: np.ndarray, size: int) -> np.ndarray:
    theta = theta.copy()
    theta[:, 0:2] = np.clip(theta[:, 0:2], 0.0, float(size))
    theta[:, 2:4] = np.clip(theta[:, 2:4], 0.2, 3.0 * size)
    theta[:, 4] = np.maximum(theta[:, 4], 1e-3)
    theta[:, 5] = np.maximum(theta[:, 5], 1e-3)
    return theta


def _nll(counts: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Poisson negative log-likelihood per box, up to a constant (counts clipped at 0)."""
    return (mu - counts * np.log(mu)).sum(axis=1)


def _initial(boxes: np.ndarray) -> np.ndarray:
    """Start values from the box: background from its outer ring, photons from the sum above
    it, widths from the second moments of the pixels 3 noise levels above it."""
    f, size, _ = boxes.shape
    ring = np.concatenate([boxes[:, 0], boxes[:, -1], boxes[:, 1:-1, 0], boxes[:, 1:-1, -1]],
                          axis=1)
    bg = np.maximum(np.median(ring, axis=1), 1e-3)
    excess = boxes - bg[:, None, None]
    photons = np.maximum(excess.sum(axis=(1, 2)), 10.0)
    weight = np.where(excess > 3.0 * np.sqrt(np.maximum(bg, 1.0))[:, None, None], excess, 0.0)
    total = weight.sum(axis=(1, 2))
    centre = np.arange(size) + 0.5
    safe = np.where(total > 0, total, 1.0)
    mx = (weight.sum(axis=1) * centre).sum(axis=1) / safe
    my = (weight.sum(axis=2) * centre).sum(axis=1) / safe
    vx = (weight.sum(axis=1) * (centre - mx[:, None]) ** 2).sum(axis=1) / safe
    vy = (weight.sum(axis=2) * (centre - my[:, None]) ** 2).sum(axis=1) / safe
    half = size / 2.0
    sx = np.where(total > 0, np.sqrt(np.maximum(vx - 1 / 12, 0.25)), 1.5)
    sy = np.where(total > 0, np.sqrt(np.maximum(vy - 1 / 12, 0.25)), 1.5)
    theta = np.stack([np.full(f, half), np.full(f, half), np.clip(sx, 0.6, half / 1.5),
                      np.clip(sy, 0.6, half / 1.5), photons, bg], axis=1)
    return theta


def fit_spots(boxes: np.ndarray, iterations: int = 200):
    """Maximum-likelihood fits of a pixel-integrated elliptical Gaussian to boxes [F, S, S] of
    photons (Poisson): Levenberg-Marquardt with the Fisher information as the curvature,
    vectorised over boxes. Returns theta [F, 6] (x, y, sigma_x, sigma_y in pixels of the box,
    photons, background per pixel), the Cramér-Rao bounds [F, 6] and a converged flag [F]."""
    boxes = np.asarray(boxes, dtype=np.float64)
    f, size, _ = boxes.shape
    counts = np.maximum(boxes.reshape(f, -1), 0.0)
    theta = _clamp(_initial(boxes), size)
    lam = np.full(f, 1e-3)
    mu, jac = _model(theta, size)
    nll = _nll(counts, mu)
    done = np.zeros(f, bool)
    eye = np.eye(6)
    for _ in range(iterations):
        active = np.flatnonzero(~done)
        if not len(active):
            break
        m, j = mu[active], jac[active]
        w = 1.0 / m
        info = np.einsum("fpk,fk,fqk->fpq", j, w, j)
        grad = np.einsum("fpk,fk->fp", j, (counts[active] - m) * w)
        damped = info + lam[active, None, None] * info * eye  # Marquardt: scale the diagonal
        damped += 1e-12 * eye
        try:
            step = np.linalg.solve(damped, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack([np.linalg.lstsq(a, g, rcond=None)[0]
                             for a, g in zip(damped, grad)])
        trial = _clamp(theta[active] + step, size)
        mu_t, jac_t = _model(trial, size)
        nll_t = _nll(counts[active], mu_t)
        better = np.isfinite(nll_t) & (nll_t <= nll[active])
        change = np.abs(nll[active] - nll_t)
        converged = better & (change <= 1e-9 * np.maximum(np.abs(nll[active]), 1.0))
        idx = active[better]
        theta[idx], mu[idx], jac[idx], nll[idx] = (trial[better], mu_t[better], jac_t[better],
                                                   nll_t[better])
        lam[idx] = np.maximum(lam[idx] / 10.0, 1e-9)
        lam[active[~better]] *= 10.0
        done[active[converged]] = True
        done[active[lam[active] > 1e9]] = True  # no step improves: at the minimum
    info = np.einsum("fpk,fk,fqk->fpq", jac, 1.0 / mu, jac)
    with np.errstate(invalid="ignore"):
        try:
            crlb = np.sqrt(np.diagonal(np.linalg.inv(info), axis1=1, axis2=2))
        except np.linalg.LinAlgError:
            crlb = np.full_like(theta, np.nan)
    return theta, crlb, done


def fit_planes(boxes_photons: np.ndarray, pixel_size_nm: float) -> dict:
    """``fit_spots`` over beads x planes [B, N, S, S] (in chunks), in nm: a dict of [B, N]
    arrays x_nm, y_nm (in the box), sigma_x_nm, sigma_y_nm, error_x_nm, error_y_nm, photons,
    background and good (the plane is usable: module docstring, step 2)."""
    b, n, size, _ = boxes_photons.shape
    flat = boxes_photons.reshape(b * n, size, size)
    per_chunk = max(1, _CHUNK_PIXELS // (size * size))
    parts = [fit_spots(flat[i:i + per_chunk]) for i in range(0, len(flat), per_chunk)]
    theta = np.concatenate([p[0] for p in parts])
    crlb = np.concatenate([p[1] for p in parts])
    converged = np.concatenate([p[2] for p in parts])
    radius = (size - 1) / 2.0
    centre = size / 2.0
    sx, sy = theta[:, 2], theta[:, 3]
    rel_x, rel_y = crlb[:, 2] / sx, crlb[:, 3] / sy
    good = (converged & np.isfinite(theta).all(axis=1) & np.isfinite(crlb[:, 2:4]).all(axis=1)
            & (np.minimum(sx, sy) > 0.3) & (np.maximum(sx, sy) < 0.6 * radius)
            & (np.hypot(theta[:, 0] - centre, theta[:, 1] - centre) < 2.0)
            & (rel_x < 0.25) & (rel_y < 0.25) & (theta[:, 4] > 1.0))
    px = float(pixel_size_nm)

    def grid(v):
        return v.reshape(b, n)

    return {"x_nm": grid(theta[:, 0] * px), "y_nm": grid(theta[:, 1] * px),
            "sigma_x_nm": grid(sx * px), "sigma_y_nm": grid(sy * px),
            "error_x_nm": grid(crlb[:, 2] * px), "error_y_nm": grid(crlb[:, 3] * px),
            "photons": grid(theta[:, 4]), "background": grid(theta[:, 5]),
            "good": grid(good)}


# --------------------------------------------------------------------------- z model


@dataclass
class ZFit:
    """The z model fitted to all beads: the PSF parameters, each bead's z offset (stack z of
    its z = 0), the points used per axis and their weighted residuals."""

    sigma0_x_nm: float
    sigma0_y_nm: float
    half_separation_nm: float      # focus_y = +h, focus_x = -h
    depth_nm: float
    a_x: float
    b_x: float
    a_y: float
    b_y: float
    offsets_nm: np.ndarray         # [B]
    inlier_x: np.ndarray           # [B, N]
    inlier_y: np.ndarray
    higher_order: bool
    scale: float                   # observed scatter / Cramér-Rao bound


def _widths(params: np.ndarray, z: np.ndarray, bead: np.ndarray, n_beads: int,
            higher: bool, axis: str) -> np.ndarray:
    s0x, s0y, h, d = params[:4]
    if higher:
        ax, bx, ay, by = params[4:8]
        offsets = params[8:8 + n_beads]
    else:
        ax = bx = ay = by = 0.0
        offsets = params[4:4 + n_beads]
    zp = z - offsets[bead]
    if axis == "x":
        s0, u, a, b = s0x, (zp + h) / d, ax, bx
    else:
        s0, u, a, b = s0y, (zp - h) / d, ay, by
    u2 = u * u
    factor = 1.0 + u2 + a * u2 * u + b * u2 * u2
    return s0 * np.sqrt(np.maximum(factor, 1e-6))


def _quadratic_focus(z: np.ndarray, w: np.ndarray):
    """(focus, sigma0, depth or None) of one bead's widths along one axis from a parabola
    w^2 = p2 z^2 + p1 z + p0 through the planes up to twice the narrowest width: the start of
    the z fit."""
    smooth = ndimage.median_filter(w, size=3, mode="nearest") if len(w) >= 3 else w
    i = int(np.argmin(smooth))
    core = w <= 2.0 * smooth[i]
    if core.sum() >= 3:
        p2, p1, p0 = np.polyfit(z[core], w[core] ** 2, 2)
        if p2 > 0:
            focus = -p1 / (2 * p2)
            s0sq = p0 - p1 * p1 / (4 * p2)
            span = z.max() - z.min()
            if s0sq > 0 and z.min() - span <= focus <= z.max() + span:
                return focus, math.sqrt(s0sq), math.sqrt(s0sq / p2)
    return float(z[i]), float(smooth[i]), None


def fit_z_model(z_stack: np.ndarray, beads: list[Bead], notes: list[str]) -> ZFit:
    """The z model (module docstring, step 3) fitted to the beads' usable planes."""
    n_beads = len(beads)
    z = np.asarray(z_stack, dtype=np.float64)
    span = float(z.max() - z.min())
    foci, s0s, depths = {"x": [], "y": []}, {"x": [], "y": []}, []
    for bead in beads:
        for axis in "xy":
            w = getattr(bead, f"sigma_{axis}_nm")[bead.good]
            focus, s0, depth = _quadratic_focus(z[bead.good], w)
            foci[axis].append(focus)
            s0s[axis].append(s0)
            if depth is not None:
                depths.append(depth)
    fx, fy = np.array(foci["x"]), np.array(foci["y"])
    h0 = float(np.median((fy - fx) / 2.0))
    offsets0 = (fx + fy) / 2.0
    d0 = float(np.median(depths)) if depths else max(span / 4.0, 1.0)
    start = [float(np.median(s0s["x"])), float(np.median(s0s["y"])), h0, d0]

    # Points: (z, bead, width, error) per axis; the errors floored and later rescaled.
    points = {}
    for axis in "xy":
        bead_idx, plane_idx = np.nonzero(np.stack([b.good for b in beads]))
        w = np.stack([getattr(b, f"sigma_{axis}_nm") for b in beads])[bead_idx, plane_idx]
        e = np.stack([getattr(b, f"error_{axis}_nm") for b in beads])[bead_idx, plane_idx]
        e = np.sqrt(e**2 + (WIDTH_FLOOR * w) ** 2)
        points[axis] = (z[plane_idx], bead_idx, w, e, plane_idx)
    per_axis = min(len(points["x"][0]), len(points["y"][0]))
    higher = per_axis >= HIGHER_ORDER_PLANES
    if not higher:
        notes.append(f"only {per_axis} usable planes per axis: the higher-order terms a, b are "
                     f"not fitted (0); {HIGHER_ORDER_PLANES} planes are needed")
    keep = {axis: np.ones(len(points[axis][0]), bool) for axis in "xy"}
    scale = 1.0

    def residuals(params, use_higher):
        parts = []
        for axis in "xy":
            zz, bi, w, e, _ = points[axis]
            k = keep[axis]
            model = _widths(params, zz[k], bi[k], n_beads, use_higher, axis)
            parts.append((w[k] - model) / (e[k] * scale))
        return np.concatenate(parts)

    def solve(params, use_higher):
        n_extra = 4 if use_higher else 0
        lower = [1e-3, 1e-3, -np.inf, 1e-3] + [-50.0] * n_extra + [-np.inf] * n_beads
        upper = [np.inf, np.inf, np.inf, np.inf] + [50.0] * n_extra + [np.inf] * n_beads
        params = np.clip(params, np.array(lower) + 1e-9, np.array(upper) - 1e-9)
        result = optimize.least_squares(residuals, params, args=(use_higher,),
                                        bounds=(lower, upper), loss="soft_l1", f_scale=2.0,
                                        x_scale="jac", max_nfev=2000)
        return result.x

    params = solve(np.array(start + list(offsets0)), False)
    if higher:
        params = solve(np.concatenate([params[:4], [0.0] * 4, params[4:]]), True)
    for _ in range(2):  # rescale to the observed scatter, leave out outliers, refit
        r_all = {}
        for axis in "xy":
            zz, bi, w, e, _ = points[axis]
            r_all[axis] = (w - _widths(params, zz, bi, n_beads, higher, axis)) / e
        pooled = np.concatenate([r_all[a][keep[a]] for a in "xy"])
        scale = max(1.0, 1.4826 * float(np.median(np.abs(pooled))))
        changed = False
        for axis in "xy":
            new = np.abs(r_all[axis]) <= OUTLIER_SIGMAS * scale
            changed |= bool((new != keep[axis]).any())
            keep[axis] = new
        if min(keep["x"].sum(), keep["y"].sum()) < (len(params) + 1) // 2 + 1:
            raise LoczooError("the z model does not fit the beads' widths: most planes are "
                              "outliers; check that this is an astigmatic bead z-stack")
        params = solve(params, higher)
        if not changed:
            break
    if not np.isfinite(params).all():
        raise LoczooError("the z model fit did not converge; check the bead stack")
    extra = params[4:8] if higher else np.zeros(4)
    offsets = params[8:] if higher else params[4:]
    inlier = {}
    for axis in "xy":
        grid = np.zeros((n_beads, len(z)), bool)
        _, bi, _, _, pi = points[axis]
        grid[bi[keep[axis]], pi[keep[axis]]] = True
        inlier[axis] = grid
    return ZFit(sigma0_x_nm=float(params[0]), sigma0_y_nm=float(params[1]),
                half_separation_nm=float(params[2]), depth_nm=float(params[3]),
                a_x=float(extra[0]), b_x=float(extra[1]), a_y=float(extra[2]),
                b_y=float(extra[3]), offsets_nm=np.asarray(offsets, dtype=np.float64),
                inlier_x=inlier["x"], inlier_y=inlier["y"], higher_order=higher, scale=scale)


def valid_z_range(psf: PsfModel, measured: tuple[float, float], step_nm: float = 1.0):
    """The z range (module docstring, step 4): inside ``measured``, the interval around z = 0
    (the measured z nearest 0 when 0 was not measured) where both squared widths are positive
    and sigma_x - sigma_y is strictly monotone. None when that interval is a single point."""
    lo, hi = measured
    z = np.arange(lo, hi + step_nm / 2, step_nm)
    if len(z) < 3:
        return None
    sx, sy = psf.sigmas(z)
    ok = np.isfinite(sx) & np.isfinite(sy)
    slope = np.gradient(sx - sy, z)
    i0 = int(np.argmin(np.abs(z)))
    sign = np.sign(slope[i0])
    if sign == 0 or not ok[i0]:
        return None
    good = ok & (np.sign(slope) == sign)
    left = i0
    while left > 0 and good[left - 1]:
        left -= 1
    right = i0
    while right < len(z) - 1 and good[right + 1]:
        right += 1
    if right <= left:
        return None
    return float(z[left]), float(z[right])


# --------------------------------------------------------------------------- calibration


@dataclass
class Calibration:
    """What ``calibrate_psf`` found: the model, the beads with their fits, the stack's plane z
    (nm from plane 1), and notes for the user."""

    psf: PsfModel
    beads: list[Bead]
    z_stack_nm: np.ndarray
    notes: list[str]
    camera_note: str
    saturated: list[Bead]
    dropped: list[Bead]
    outliers: tuple[int, int]      # planes left out of the z fit (x, y)


def default_box_radius(pixel_size_nm: float) -> int:
    """Fit box half-width in pixels: about 1 um (10 px at 100 nm), 4 to 20 px."""
    return int(min(20, max(4, math.ceil(BOX_NM / float(pixel_size_nm) - 1e-9))))


def _baseline(frames) -> float:
    n = frames.shape[0]
    most = max(1, min(n, 50, int(1e7 // (frames.shape[1] * frames.shape[2]))))
    pick = np.unique(np.linspace(0, n - 1, most).astype(int))
    sample = np.asarray(frames[pick], dtype=np.float64)
    return float(np.percentile(sample, 0.1))


def calibrate_psf(frames, z_step_nm: float, pixel_size_nm: float, *,
                  baseline_adu: float | None = None, photons_per_adu: float | None = None,
                  saturation_adu: float | None = None, box_radius: int | None = None,
                  skip_saturated: bool = False, source: str = "") -> Calibration:
    """Calibrate the astigmatic PSF of a bead z-stack ``frames`` [N, H, W] (ADU), planes
    ``z_step_nm`` apart (z grows with the plane index) and pixels ``pixel_size_nm`` wide.

    Args:
        frames: the stack (a memory-mapped array is read once for the projection and once
            for the boxes).
        z_step_nm: distance between planes (nm, > 0).
        pixel_size_nm: camera pixel (nm).
        baseline_adu, photons_per_adu: the camera (None: the baseline from the stack's 0.1th
            percentile, 1 photon per ADU; the widths hardly depend on them).
        saturation_adu: the camera's saturation (None: an integer stack's largest value only).
        box_radius: fit box half-width in pixels (None: ``default_box_radius``).
        skip_saturated: leave saturated beads out instead of refusing the stack.
        source: file name stored in the model.

    Returns:
        A ``Calibration``. Every problem with the input (no bead, saturated beads, too few
        planes, no usable fits) is one LoczooError saying what and why.
    """
    from loczoo import __version__

    frames = np.asarray(frames) if not hasattr(frames, "shape") else frames
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or 0 in frames.shape:
        raise LoczooError(f"a bead z-stack must be [planes, height, width], got shape "
                          f"{tuple(frames.shape)}")
    if np.dtype(frames.dtype).kind not in "uif":
        raise LoczooError(f"the bead stack has pixel type {frames.dtype}; expected numbers")
    n_planes = int(frames.shape[0])
    what = f"{source} " if source else "the stack "
    if n_planes < MIN_PLANES:
        raise LoczooError(
            f"{what}has {n_planes} plane{'s' if n_planes != 1 else ''}; a PSF calibration "
            f"needs a bead z-stack of at least {MIN_PLANES} planes (the focus and the z model "
            f"cannot be fitted from fewer)")
    for name, value in (("z_step_nm", z_step_nm), ("pixel_size_nm", pixel_size_nm)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise LoczooError(f"{name} must be a number > 0, got {value!r}")
    if photons_per_adu is not None and not (math.isfinite(photons_per_adu)
                                            and photons_per_adu > 0):
        raise LoczooError(f"photons_per_adu must be > 0, got {photons_per_adu}")
    radius = default_box_radius(pixel_size_nm) if box_radius is None else int(box_radius)
    if radius < 2:
        raise LoczooError(f"the fit box half-width must be >= 2 px, got {radius}")
    height, width = frames.shape[1:]
    if min(height, width) < 2 * radius + 1:
        raise LoczooError(f"{what}frames are {height} x {width} px, smaller than the "
                          f"{2 * radius + 1} px fit box; give a smaller box")
    notes: list[str] = []

    beads = find_beads(frames, radius, notes)
    level, level_source = saturation_level(frames.dtype, saturation_adu)
    saturated = []
    if level is not None:
        hit = np.concatenate([(_boxes(frames, [b], radius) >= level).any(axis=(2, 3))
                              for b in beads])  # [B, N], one bead at a time (memory)
        saturated = [b for b, h in zip(beads, hit) if h.any()]
        if saturated:
            where = ", ".join(f"(x {b.col}, y {b.row}) px in {int(h.sum())} plane(s)"
                              for b, h in zip(beads, hit) if h.any())
            if not skip_saturated or len(saturated) == len(beads):
                advice = ("all beads are saturated: " if skip_saturated else "") + (
                    "lower the exposure or laser power" + ("" if skip_saturated else
                                                           ", or pass --skip-saturated to "
                                                           "calibrate on the other beads"))
                raise LoczooError(
                    f"{len(saturated)} of {len(beads)} bead(s) reach saturation ({level:g} ADU, "
                    f"{level_source}): {where}; saturated pixels flatten the spot and bias "
                    f"its width; {advice}")
            notes.append(f"{len(saturated)} saturated bead(s) left out: {where}")
            beads = [b for b, h in zip(beads, hit) if not h.any()]
    if len(beads) > MAX_BEADS:
        notes.append(f"{len(beads)} usable beads: the {MAX_BEADS} brightest are used")
        beads = beads[:MAX_BEADS]
    boxes = _boxes(frames, beads, radius)

    if baseline_adu is None or photons_per_adu is None:
        missing = []
        if baseline_adu is None:
            baseline_adu = _baseline(frames)
            missing.append(f"baseline {baseline_adu:.4g} ADU (the stack's 0.1th percentile)")
        if photons_per_adu is None:
            photons_per_adu = 1.0
            missing.append("1 photon per ADU")
        camera_note = (f"camera not given: assumed {' and '.join(missing)}; the widths hardly "
                       f"depend on it (give --camera baseline_adu=... photons_per_adu=... for "
                       f"photon numbers)")
    else:
        camera_note = (f"camera: baseline {baseline_adu:g} ADU, {photons_per_adu:.4g} photon "
                       f"per ADU")
    photons = (boxes.astype(np.float64) - float(baseline_adu)) * float(photons_per_adu)
    fits = fit_planes(photons, pixel_size_nm)
    px = float(pixel_size_nm)
    usable, dropped = [], []
    for i, bead in enumerate(beads):
        bead.x_nm = fits["x_nm"][i] + (bead.col - radius) * px
        bead.y_nm = fits["y_nm"][i] + (bead.row - radius) * px
        for key in ("sigma_x_nm", "sigma_y_nm", "error_x_nm", "error_y_nm", "photons",
                    "background", "good"):
            setattr(bead, key, fits[key][i])
        (usable if bead.good.sum() >= MIN_PLANES else dropped).append(bead)
    if dropped:
        notes.append(f"{len(dropped)} bead(s) with fewer than {MIN_PLANES} usable planes left "
                     f"out: " + ", ".join(f"(x {b.col}, y {b.row}) px" for b in dropped))
    if not usable:
        raise LoczooError(
            f"no bead gave {MIN_PLANES} planes with a usable spot fit (of {len(beads)} "
            f"bead(s)): the spots are too faint, too wide for the {2 * radius + 1} px box, or "
            f"not Gaussian-like; check the stack (or --box)")
    z_stack = np.arange(n_planes, dtype=np.float64) * float(z_step_nm)
    zfit = fit_z_model(z_stack, usable, notes)
    h = zfit.half_separation_nm
    if 2 * abs(h) < MIN_FOCUS_SEPARATION * zfit.depth_nm:
        raise LoczooError(
            f"the PSF is hardly astigmatic: the x and y foci are {2 * abs(h):.0f} nm apart, "
            f"less than {MIN_FOCUS_SEPARATION:g} x the depth ({zfit.depth_nm:.0f} nm), so the "
            f"widths cannot tell z above the focus from z below it; is the cylindrical lens in?")
    resid, covered = {}, []
    for i, bead in enumerate(usable):
        bead.z0_nm = float(zfit.offsets_nm[i])
        bead.inlier_x, bead.inlier_y = zfit.inlier_x[i], zfit.inlier_y[i]
        covered.append(z_stack[bead.inlier_x | bead.inlier_y] - bead.z0_nm)
    provisional = PsfModel(
        sigma0_x_nm=zfit.sigma0_x_nm, sigma0_y_nm=zfit.sigma0_y_nm, focus_x_nm=-h,
        focus_y_nm=h, depth_nm=zfit.depth_nm, a_x=zfit.a_x, b_x=zfit.b_x, a_y=zfit.a_y,
        b_y=zfit.b_y, pixel_size_nm=px, z_range_nm=(-1.0, 1.0))
    for axis in "xy":
        diffs = []
        for bead in usable:
            mask = getattr(bead, f"inlier_{axis}")
            model = provisional.sigmas(z_stack[mask] - bead.z0_nm)["xy".index(axis)]
            diffs.append(getattr(bead, f"sigma_{axis}_nm")[mask] - model)
        diffs = np.concatenate(diffs)
        resid[axis] = float(np.sqrt(np.mean(diffs**2)))
    covered = np.concatenate(covered)
    z_range = valid_z_range(provisional, (float(covered.min()), float(covered.max())))
    if z_range is None:
        raise LoczooError(
            "the fitted widths do not tell z apart anywhere in the measured range (no interval "
            "around the point between the foci where sigma_x - sigma_y changes monotonically); "
            "is the PSF astigmatic, and does the stack cover both foci?")
    if z_range[1] - z_range[0] < 2 * float(z_step_nm):
        raise LoczooError(f"the valid z range {z_range[0]:.0f} to {z_range[1]:.0f} nm is "
                          f"narrower than two z steps; the stack does not cover the foci")
    psf = PsfModel(
        sigma0_x_nm=zfit.sigma0_x_nm, sigma0_y_nm=zfit.sigma0_y_nm, focus_x_nm=-h,
        focus_y_nm=h, depth_nm=zfit.depth_nm, a_x=zfit.a_x, b_x=zfit.b_x, a_y=zfit.a_y,
        b_y=zfit.b_y, pixel_size_nm=px, z_range_nm=z_range, residuals_nm=resid,
        beads=len(usable), planes=n_planes, z_step_nm=float(z_step_nm), source=source,
        loczoo_version=__version__)
    outliers = tuple(int(sum((b.good & ~getattr(b, f"inlier_{a}")).sum() for b in usable))
                     for a in "xy")
    return Calibration(psf=psf, beads=usable, z_stack_nm=z_stack, notes=notes,
                       camera_note=camera_note, saturated=saturated, dropped=dropped,
                       outliers=outliers)


def bead_rms(bead: Bead, psf: PsfModel, z_stack_nm: np.ndarray) -> tuple[float, float]:
    """rms of measured minus model width (nm) of one bead's planes used in the z fit."""
    out = []
    for k, axis in enumerate("xy"):
        mask = getattr(bead, f"inlier_{axis}")
        if not mask.any():
            out.append(math.nan)
            continue
        model = psf.sigmas(z_stack_nm[mask] - bead.z0_nm)[k]
        out.append(float(np.sqrt(np.mean((getattr(bead, f"sigma_{axis}_nm")[mask] - model)
                                         ** 2))))
    return out[0], out[1]


# --------------------------------------------------------------------------- plot

AXIS_COLOURS = {"x": (31, 119, 180), "y": (255, 127, 14)}
_MARKERS = ("circle", "square", "triangle", "diamond", "cross")


def _marker(draw, x, y, kind, colour, size=3.0, hollow=False):
    fill = None if hollow else colour
    if kind == "circle":
        draw.ellipse([x - size, y - size, x + size, y + size], fill=fill, outline=colour)
    elif kind == "square":
        draw.rectangle([x - size, y - size, x + size, y + size], fill=fill, outline=colour)
    elif kind == "triangle":
        draw.polygon([(x, y - size - 1), (x - size - 1, y + size), (x + size + 1, y + size)],
                     fill=fill, outline=colour)
    elif kind == "diamond":
        s = size + 1
        draw.polygon([(x, y - s), (x + s, y), (x, y + s), (x - s, y)], fill=fill,
                     outline=colour)
    else:
        draw.line([(x - size, y - size), (x + size, y + size)], fill=colour, width=2)
        draw.line([(x - size, y + size), (x + size, y - size)], fill=colour, width=2)


def plot_calibration(cal: Calibration, size=(900, 680)):
    """The calibration as a PIL image: measured sigma_x, sigma_y per bead (marker shape) and
    plane against z, the fitted curves and the valid z range (shaded) above; the residuals
    (measured - model) below. Planes left out of the z fit are hollow markers."""
    from PIL import Image, ImageDraw

    from loczoo.curves import _font, _nice_ticks

    psf = cal.psf
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = _font(12)
    left, right = 75, width - 20
    top1, bottom1 = 40, int(height * 0.62)
    top2, bottom2 = bottom1 + 30, height - 45
    points = []  # (z, width, residual, axis, bead index, used)
    for i, bead in enumerate(cal.beads):
        zp = cal.z_stack_nm - bead.z0_nm
        model = psf.sigmas(zp)
        for k, axis in enumerate("xy"):
            w = getattr(bead, f"sigma_{axis}_nm")
            used = getattr(bead, f"inlier_{axis}")
            for j in np.flatnonzero(bead.good):
                points.append((zp[j], w[j], w[j] - model[k][j], axis, i, bool(used[j])))
    zs = np.array([p[0] for p in points])
    z_lo, z_hi = float(zs.min()), float(zs.max())
    pad = 0.03 * (z_hi - z_lo or 1.0)
    z_lo, z_hi = z_lo - pad, z_hi + pad
    grid = np.linspace(z_lo, z_hi, 400)
    curve_x, curve_y = psf.sigmas(grid)
    used_w = [p[1] for p in points if p[5]] or [p[1] for p in points]
    w_hi = max(max(used_w), float(np.nanmax(np.r_[curve_x, curve_y]) if len(grid) else 0))
    w_hi = min(w_hi, 2.0 * max(used_w)) * 1.05
    w_lo = 0.0
    res_used = np.array([abs(p[2]) for p in points if p[5]] or [1.0])
    r_max = max(3.0 * max(psf.residuals_nm.values()), float(np.percentile(res_used, 99)), 1.0)

    def px(z):
        return left + (z - z_lo) / (z_hi - z_lo) * (right - left)

    def py1(w):
        return bottom1 - (min(max(w, w_lo), w_hi) - w_lo) / (w_hi - w_lo) * (bottom1 - top1)

    def py2(r):
        r = min(max(r, -r_max), r_max)
        return bottom2 - (r + r_max) / (2 * r_max) * (bottom2 - top2)

    grey, shade = (225, 225, 225), (238, 244, 238)
    zr = psf.z_range_nm
    for top, bottom in ((top1, bottom1), (top2, bottom2)):
        draw.rectangle([px(max(zr[0], z_lo)), top, px(min(zr[1], z_hi)), bottom], fill=shade)
    for tick in _nice_ticks(z_lo, z_hi):
        x = px(tick)
        for top, bottom in ((top1, bottom1), (top2, bottom2)):
            draw.line([(x, top), (x, bottom)], fill=grey)
        label = f"{tick:g}"
        draw.text((x - draw.textlength(label, font=font) / 2, bottom2 + 5), label,
                  fill="black", font=font)
    for tick in _nice_ticks(w_lo, w_hi):
        y = py1(tick)
        draw.line([(left, y), (right, y)], fill=grey)
        label = f"{tick:g}"
        draw.text((left - 6 - draw.textlength(label, font=font), y - 7), label, fill="black",
                  font=font)
    for tick in _nice_ticks(-r_max, r_max, count=4):
        y = py2(tick)
        draw.line([(left, y), (right, y)], fill=(160, 160, 160) if tick == 0 else grey)
        label = f"{tick:g}"
        draw.text((left - 6 - draw.textlength(label, font=font), y - 7), label, fill="black",
                  font=font)
    for axis, curve in (("x", curve_x), ("y", curve_y)):
        line = [(px(z), py1(w)) for z, w in zip(grid, curve) if np.isfinite(w) and w <= w_hi]
        if len(line) > 1:
            draw.line(line, fill=AXIS_COLOURS[axis], width=2)
    for z, w, r, axis, i, used in points:
        kind = _MARKERS[i % len(_MARKERS)]
        _marker(draw, px(z), py1(w), kind, AXIS_COLOURS[axis], hollow=not used)
        _marker(draw, px(z), py2(r), kind, AXIS_COLOURS[axis], size=2.5, hollow=not used)
    draw.rectangle([left, top1, right, bottom1], outline="black")
    draw.rectangle([left, top2, right, bottom2], outline="black")
    title = (f"PSF calibration{': ' + psf.source if psf.source else ''} - {psf.beads} bead(s), "
             f"sigma0 {psf.sigma0_x_nm:.1f} / {psf.sigma0_y_nm:.1f} nm, foci "
             f"{psf.focus_x_nm:.0f} / {psf.focus_y_nm:.0f} nm, depth {psf.depth_nm:.0f} nm")
    draw.text(((left + right - draw.textlength(title, font=font)) / 2, 10), title,
              fill="black", font=font)
    draw.text((left - 70, top1 - 18), "width (nm)", fill="black", font=font)
    draw.text((left - 70, top2 - 18), "measured - model (nm)", fill="black", font=font)
    draw.text(((left + right) / 2 - 60, bottom2 + 22), "z (nm; 0 between the foci)",
              fill="black", font=font)
    labels = [("sigma_x", "x"), ("sigma_y", "y")]
    legend = [f"{name}: rms {psf.residuals_nm[axis]:.1f} nm" for name, axis in labels]
    legend_w = 40 + max(draw.textlength(t, font=font) for t in legend + ["valid z range"])
    x0, y0 = right - 10 - legend_w, top1 + 10
    draw.rectangle([x0, y0, right - 10, y0 + 8 + 18 * 3], fill="white", outline=(160, 160, 160))
    for k, ((_, axis), text) in enumerate(zip(labels, legend)):
        y = y0 + 5 + 18 * k
        draw.line([(x0 + 6, y + 7), (x0 + 28, y + 7)], fill=AXIS_COLOURS[axis], width=2)
        _marker(draw, x0 + 17, y + 7, "circle", AXIS_COLOURS[axis])
        draw.text((x0 + 34, y), text, fill="black", font=font)
    y = y0 + 5 + 36
    draw.rectangle([x0 + 6, y + 2, x0 + 28, y + 12], fill=shade, outline=(160, 160, 160))
    draw.text((x0 + 34, y), "valid z range", fill="black", font=font)
    # Below the legend: which marker is which bead (the CLI's numbering), hollow = left out.
    x, y = left + 10, top1 + 8
    draw.text((x, y), "bead", fill="black", font=font)
    x += draw.textlength("bead ", font=font) + 4
    for i in range(len(cal.beads)):
        _marker(draw, x + 4, y + 7, _MARKERS[i % len(_MARKERS)], (90, 90, 90))
        draw.text((x + 11, y), str(i + 1), fill="black", font=font)
        x += 20 + draw.textlength(str(i + 1), font=font)
    if any(not p[5] for p in points):
        _marker(draw, x + 8, y + 7, "circle", (90, 90, 90), hollow=True)
        draw.text((x + 15, y), "left out", fill="black", font=font)
    return image


def save_plot(path: str | Path, cal: Calibration) -> Path:
    """``plot_calibration`` as a PNG at ``path`` (through a temporary file)."""
    from loczoo.outputs import atomic_path

    image = plot_calibration(cal)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)
