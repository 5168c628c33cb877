"""SMLM frame simulator in pure TensorFlow: emitters -> integrated Gaussian PSF -> camera.

Everything is batched over frames and vectorised over emitters (no Python loop over either), so
the same code runs on CPU or GPU and inside ``tf.data.Dataset.map``. Random numbers are
stateless: the same ``seed`` (a pair of ints) always gives the same frames.

The PSF is a 2D Gaussian integrated over each pixel (differences of erf at the pixel edges). It
is separable, so a batch of frames is one batched matrix product of per-emitter row profiles
(weighted by photons) with per-emitter column profiles.

Coordinates follow ``loczoo.smlm.localizations``: x is the column, y the row, in nm; pixel i
covers [i, i + 1) * pixel_size.

3D (``z_range_nm``, an astigmatic PSF) and blinking sequences (``simulate_sequence``) draw their
extra random numbers from seed streams that 2D single frames never consume, and the new options
default to 2D: 2D frames stay bit-identical for a given seed (shipped models were calibrated on
them; ``tests/test_simulate.py`` pins them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import tensorflow as tf

from loczoo.config import check_range
from loczoo.errors import LoczooError
from loczoo.smlm.localizations import Localizations
from loczoo.smlm.render import format_bytes, physical_memory_bytes

PHOTON_DISTRIBUTIONS = ("uniform", "normal", "lognormal", "exponential")

# Most memory a simulation may need: 80 % of this machine's memory (8 GB where it cannot be
# read). Requests above it would end with the process killed by the kernel (or TensorFlow's
# allocator failing) after minutes of work; they are refused before any.
MEMORY_BUDGET_BYTES = int(0.8 * (physical_memory_bytes() or 10e9))
# Working memory of one batch, from peak RSS measured on CPU (tests/test_memory_limits.py): the
# erf profiles [B, M, H] and [B, M, W] and their temporaries about 4 x their float32 size, the
# per-pixel tensors (signal, background, camera noise, ...) about 48 bytes per pixel, the
# per-emitter tensors about 64 bytes, a density mask about 2 x its float32 size per frame.
_PROFILE_COPIES = 4
_BYTES_PER_FRAME_PIXEL = 48
_BYTES_PER_EMITTER = 64
# A stack in memory: float32 frames, plus writing it (range check, uint16 copy) 8 per pixel;
# a ground-truth row (and the copy that joins the batches' tables) 160 bytes.
_BYTES_PER_WRITTEN_PIXEL = 8
_BYTES_PER_TRUTH_ROW = 160


@dataclass(frozen=True, kw_only=True)
class CameraConfig:
    """Camera model. Photons -> QE -> Poisson electrons (mean qe x photons + spurious charge)
    -> optional EM gain (Gamma) -> Gaussian read noise -> ADU (electrons / e_per_adu + baseline)
    -> rounding and saturation.

    ``em_gain=None`` is an sCMOS/CCD camera (no excess noise); a number is an EMCCD whose
    multiplication register gives an excess noise factor of about 2. ``spurious_charge_e`` is an
    EMCCD's clock-induced charge: electrons per pixel and frame that are amplified like
    photo-electrons.
    """

    qe: float = 1.0
    em_gain: float | None = None
    read_noise_e: float = 1.5
    e_per_adu: float = 0.5
    baseline_adu: float = 100.0
    saturation_adu: float = 65535.0
    quantize: bool = True
    spurious_charge_e: float = 0.0

    def __post_init__(self):
        if not 0 < self.qe <= 1:
            raise LoczooError(f"camera qe must be in (0, 1], got {self.qe}")
        if self.em_gain is not None and self.em_gain < 1:
            raise LoczooError(f"camera em_gain must be >= 1 or null, got {self.em_gain}")
        if self.read_noise_e < 0 or self.e_per_adu <= 0:
            raise LoczooError(
                f"camera read_noise_e must be >= 0 and e_per_adu > 0, "
                f"got {self.read_noise_e} and {self.e_per_adu}")
        if not self.spurious_charge_e >= 0:
            raise LoczooError(
                f"camera spurious_charge_e must be >= 0, got {self.spurious_charge_e}")

    @property
    def photons_per_adu(self) -> float:
        """The mean conversion back to photons: (ADU - baseline) x photons_per_adu."""
        return self.e_per_adu / (self.em_gain or 1.0) / self.qe

    @property
    def excess_noise_factor(self) -> float:
        return 1.0 if self.em_gain is None else 2.0

    @classmethod
    def scmos(cls, **kw) -> "CameraConfig":
        return cls(**{"qe": 0.8, "read_noise_e": 1.6, "e_per_adu": 0.46, **kw})

    @classmethod
    def emccd(cls, em_gain: float = 100.0, **kw) -> "CameraConfig":
        return cls(**{"qe": 0.9, "em_gain": em_gain, "read_noise_e": 60.0,
                      "e_per_adu": 12.0, **kw})

    @classmethod
    def smlm2016(cls, **kw) -> "CameraConfig":
        """The EMCCD of the SMLM 2016 challenge as DECODE models it: EM gain 300, 45 e-/ADU,
        baseline 100 ADU, read noise 74.4 e-, spurious charge 0.002 e-/px.

        QE is 1.0 because DECODE counts "detected photons"; the challenge's QE is 0.9, so its
        ground-truth photon numbers are 1/0.9 times ours for the same frames."""
        return cls(**{"qe": 1.0, "em_gain": 300.0, "e_per_adu": 45.0, "baseline_adu": 100.0,
                      "read_noise_e": 74.4, "spurious_charge_e": 0.002, **kw})


@dataclass(frozen=True, kw_only=True)
class AstigmatismConfig:
    """Astigmatic Gaussian PSF, the defocus model of Huang et al. (Science 319:810, 2008):

        sigma_x(z) = sigma0 sqrt(1 + u^2 + a_x u^3 + b_x u^4),  u = (z - focus_x_nm) / depth_nm,

    and the same for y with ``focus_y_nm``, ``a_y``, ``b_y``; sigma0 is each emitter's in-focus
    width (``ImagingConfig.psf_sigma_nm``). The defaults are DECODE's Gaussian PSF,
    sigma_x,y = sigma0 sqrt(1 + ((z +/- 250) / 280)^2): the x focus 250 nm below z = 0, the y
    focus 250 nm above, depth (Rayleigh range) 280 nm, no higher-order terms. At z = 0 the PSF
    is round and sigma0 x 1.34 wide.

    Per-axis in-focus widths (a measured PSF, ``loczoo calibrate-psf``): ``sigma0_x_nm`` and
    ``sigma0_y_nm`` (both or neither) replace sigma0 along each axis. The emitter's own width s
    (drawn from ``psf_sigma_nm``) then only scales both: sigma0_x = ``sigma0_x_nm`` x s / s_ref,
    with s_ref the middle of the ``psf_sigma_nm`` range, so a range (s, s) gives exactly the
    calibrated widths and a wider one varies them by the same relative amount (robustness of a
    model to a PSF that changes across the sample). Without a reference (``sigmas``,
    ``astigmatic_sigmas`` called without ``reference_sigma_nm``) the per-axis widths are used
    as they are. None (the default) keeps the isotropic in-focus width, bit for bit as before.
    """

    focus_x_nm: float = -250.0
    focus_y_nm: float = 250.0
    depth_nm: float = 280.0
    a_x: float = 0.0
    b_x: float = 0.0
    a_y: float = 0.0
    b_y: float = 0.0
    sigma0_x_nm: float | None = None
    sigma0_y_nm: float | None = None

    def __post_init__(self):
        if not self.depth_nm > 0:
            raise LoczooError(f"astigmatism depth_nm must be > 0, got {self.depth_nm}")
        if (self.sigma0_x_nm is None) != (self.sigma0_y_nm is None):
            raise LoczooError("astigmatism sigma0_x_nm and sigma0_y_nm go together (both or "
                              f"neither), got {self.sigma0_x_nm} and {self.sigma0_y_nm}")
        for name in ("sigma0_x_nm", "sigma0_y_nm"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise LoczooError(f"astigmatism {name} must be a number > 0 or null, "
                                  f"got {value}")

    @classmethod
    def from_psf_file(cls, path) -> "AstigmatismConfig":
        """The astigmatic PSF of a ``loczoo calibrate-psf`` file (psf.json), checked by
        ``loczoo.smlm.psf.read_psf``; simulate with ``psf_sigma_nm`` from
        ``loczoo.smlm.psf.astigmatism_from_psf`` (the calibrated widths exactly)."""
        from loczoo.smlm.psf import astigmatism_from_psf, read_psf

        return astigmatism_from_psf(read_psf(path))[0]

    def in_focus_widths(self, sigma0_nm, reference_sigma_nm=None):
        """(sigma0_x, sigma0_y) for emitters of in-focus width ``sigma0_nm``: both
        ``sigma0_nm`` without per-axis widths, else the per-axis widths scaled by
        ``sigma0_nm / reference_sigma_nm`` (unscaled without a reference)."""
        if self.sigma0_x_nm is None:
            return sigma0_nm, sigma0_nm
        # sigma0 * 0 + 1: ones of sigma0's shape and kind (number, array or tensor).
        scale = sigma0_nm * 0 + 1 if reference_sigma_nm is None else (
            sigma0_nm / reference_sigma_nm)
        return self.sigma0_x_nm * scale, self.sigma0_y_nm * scale

    def widening_squared(self, z_nm, axis: str, focus_scale=1.0, depth_scale=1.0):
        """(sigma(z) / sigma0)^2 along ``axis`` ("x" or "y"), with the focus and depth times
        ``focus_scale`` and ``depth_scale`` (a member of a PSF family,
        ``ImagingConfig.astigmatism_spread``). Plain arithmetic, so it works on numbers, NumPy
        arrays and tensors alike."""
        focus, a, b = ((self.focus_x_nm, self.a_x, self.b_x) if axis == "x"
                       else (self.focus_y_nm, self.a_y, self.b_y))
        u = (z_nm - focus * focus_scale) / (self.depth_nm * depth_scale)
        u2 = u * u
        return 1.0 + u2 + a * u2 * u + b * u2 * u2

    def sigmas(self, z_nm, sigma0_nm, reference_sigma_nm=None):
        """(sigma_x, sigma_y) in nm as float64 NumPy arrays, for code that must run without
        TensorFlow (``loczoo.smlm.metrics``); :func:`astigmatic_sigmas` is the tensor version.
        ``reference_sigma_nm``: see the class docstring (per-axis widths only)."""
        z = np.asarray(z_nm, dtype=np.float64)
        s0 = np.asarray(sigma0_nm, dtype=np.float64)
        s0x, s0y = self.in_focus_widths(s0, reference_sigma_nm)
        return s0x * np.sqrt(self.widening_squared(z, "x")), s0y * np.sqrt(
            self.widening_squared(z, "y"))

    def check_range(self, z_range_nm, spread: float = 0.0) -> None:
        """Refuse a model whose squared width is not positive somewhere in ``z_range_nm``
        (checked on a fine grid): a negative cubic or quartic term can drive it below zero, and
        the renderer would then produce NaN frames instead of an error. ``spread``: every
        member of the family (``ImagingConfig.astigmatism_spread``) is checked."""
        z = np.linspace(float(z_range_nm[0]), float(z_range_nm[1]), 2001)
        scales = np.linspace(1.0 - spread, 1.0 + spread, 9 if spread else 1)
        focus, depth = np.meshgrid(scales, scales)
        for axis in "xy":
            factor = self.widening_squared(z[None, :], axis, focus.reshape(-1, 1),
                                           depth.reshape(-1, 1)).min(axis=0)
            bad = ~(factor > 0)
            if bad.any():
                raise LoczooError(
                    f"astigmatism gives a negative PSF width: sigma_{axis}(z)^2 / sigma0^2 = "
                    f"1 + u^2 + a_{axis} u^3 + b_{axis} u^4 is {factor[bad][0]:.3g} at z = "
                    f"{z[bad][0]:.0f} nm, inside z_range_nm {tuple(z_range_nm)}; change "
                    f"a_{axis}, b_{axis} or the z range")


def astigmatic_sigmas(z_nm, sigma0_nm, astigmatism: AstigmatismConfig | None,
                      reference_sigma_nm: float | None = None, family=None):
    """PSF widths (sigma_x, sigma_y) in nm: float32 tensors of the broadcast shape of ``z_nm``
    and ``sigma0_nm`` (any shape). Without astigmatism both are sigma0: the PSF does not
    change with z. ``reference_sigma_nm`` matters only for per-axis in-focus widths
    (``AstigmatismConfig.sigma0_x_nm``): they are scaled by sigma0 / reference. ``family``:
    (focus_x scale, focus_y scale, depth scale), tensors that broadcast with ``z_nm``, for
    members of a PSF family (``ImagingConfig.astigmatism_spread``)."""
    z = tf.convert_to_tensor(z_nm, tf.float32)
    s0 = tf.convert_to_tensor(sigma0_nm, tf.float32)
    if astigmatism is None:
        s0 = s0 + tf.zeros_like(z)
        return s0, s0
    fx, fy, depth = (1.0, 1.0, 1.0) if family is None else family
    s0x, s0y = astigmatism.in_focus_widths(s0, reference_sigma_nm)
    return (s0x * tf.sqrt(astigmatism.widening_squared(z, "x", fx, depth)),
            s0y * tf.sqrt(astigmatism.widening_squared(z, "y", fy, depth)))


@dataclass(frozen=True, kw_only=True)
class ImagingConfig:
    """What is imaged and how. Ranges are (low, high) and drawn uniformly per frame (density,
    background) or per emitter (PSF width); photons follow ``photon_distribution`` with
    ``photon_params``: uniform (low, high), normal (mean, std), lognormal (median, sigma of
    log), exponential (mean,). Emitters are also placed in a margin of ``margin_px`` around the
    frame so that PSFs cut by the border appear; only those inside the frame are ground truth.

    3D: z is drawn uniformly per emitter from ``z_range_nm`` ((0, 0) is 2D) and ``astigmatism``
    (None: an isotropic PSF) sets the PSF widths along x and y from z. A z range without
    astigmatism gives z labels that the PSF does not depend on. ``astigmatism_spread`` > 0
    simulates a family of astigmatic PSFs (a broad model to fine-tune per microscope): each
    frame's x focus, y focus and depth are the astigmatism's times independent factors drawn
    uniformly from 1 +/- spread (with ``psf_sigma_nm`` varying the in-focus widths).

    Blinking: ``on_time_frames`` is the mean (exponential) time an emitter stays on, in frames.
    Only :func:`simulate_sequence` uses it; ``simulate`` always draws independent frames.
    """

    pixel_size_nm: float = 100.0
    density_per_um2: tuple[float, float] = (1.0, 10.0)
    photon_distribution: str = "uniform"
    photon_params: tuple[float, ...] = (1000.0, 5000.0)
    psf_sigma_nm: tuple[float, float] = (95.0, 125.0)
    background_photons: tuple[float, float] = (10.0, 100.0)
    background_field_fraction: float = 0.0
    margin_px: float = 3.0
    z_range_nm: tuple[float, float] = (0.0, 0.0)
    astigmatism: AstigmatismConfig | None = None
    astigmatism_spread: float = 0.0
    on_time_frames: float = 0.0
    camera: CameraConfig = field(default_factory=CameraConfig)

    def __post_init__(self):
        if self.pixel_size_nm <= 0:
            raise LoczooError(f"pixel_size_nm must be > 0, got {self.pixel_size_nm}")
        check_range("density_per_um2", self.density_per_um2, 0.0)
        check_range("psf_sigma_nm", self.psf_sigma_nm, 1e-3)
        check_range("background_photons", self.background_photons, 0.0)
        if self.photon_distribution not in PHOTON_DISTRIBUTIONS:
            raise LoczooError(f"photon_distribution must be one of {PHOTON_DISTRIBUTIONS}, "
                              f"got {self.photon_distribution!r}")
        needed = 1 if self.photon_distribution == "exponential" else 2
        if len(self.photon_params) != needed or min(self.photon_params) < 0:
            raise LoczooError(f"photon_params for {self.photon_distribution} needs {needed} "
                              f"non-negative number(s), got {self.photon_params!r}")
        if not 0 <= self.background_field_fraction <= 1:
            raise LoczooError("background_field_fraction must be in [0, 1], "
                              f"got {self.background_field_fraction}")
        if self.margin_px < 0:
            raise LoczooError(f"margin_px must be >= 0, got {self.margin_px}")
        check_range("z_range_nm", self.z_range_nm)
        if not 0 <= self.astigmatism_spread < 1:
            raise LoczooError(f"astigmatism_spread must be in [0, 1), got "
                              f"{self.astigmatism_spread}")
        if self.astigmatism_spread and self.astigmatism is None:
            raise LoczooError("astigmatism_spread needs an astigmatism to vary")
        if self.astigmatism is not None:
            if not isinstance(self.astigmatism, AstigmatismConfig):
                raise LoczooError("astigmatism must be an AstigmatismConfig or null, got "
                                  f"{self.astigmatism!r}")
            self.astigmatism.check_range(self.z_range_nm, self.astigmatism_spread)
        if not self.on_time_frames >= 0:
            raise LoczooError(f"on_time_frames must be >= 0, got {self.on_time_frames}")

    @property
    def is_3d(self) -> bool:
        """Emitters have a z (a z range or an astigmatic PSF): outputs then carry z, sigma_x
        and sigma_y."""
        return tuple(self.z_range_nm) != (0.0, 0.0) or self.astigmatism is not None

    def area_um2(self, height: int, width: int) -> float:
        """Area of a frame plus its margin, where emitters are placed."""
        return ((height + 2 * self.margin_px) * (width + 2 * self.margin_px)
                * (self.pixel_size_nm / 1000.0) ** 2)

    def expected_emitters(self, height: int, width: int) -> float:
        """Mean emitter count in the frame plus its margin at the highest density."""
        return self.density_per_um2[1] * self.area_um2(height, width)

    def max_emitters(self, height: int, width: int) -> int:
        """A padding size that a Poisson count exceeds with negligible probability."""
        return _padding(self.expected_emitters(height, width))

    def sequence_factor(self, n_frames: int) -> float:
        """Emitters drawn for a sequence of ``n_frames``, in units of emitters on per frame:
        (T + 6 tau) / (tau + 1) with tau = ``on_time_frames``.

        Starts are spread uniformly over T + 6 tau frames (3 tau before and after the sequence,
        so that emitters already on in the first frame exist) and an emitter that is on for D
        frames shows in D + 1 frame intervals on average, so each frame has on average
        ``density_per_um2`` emitters per um^2 that are on in it."""
        tau = self.on_time_frames
        return (n_frames + 6.0 * tau) / (tau + 1.0)

    def max_sequence_emitters(self, height: int, width: int, n_frames: int) -> int:
        """The padding size of :func:`simulate_sequence` (all emitters of one sequence)."""
        return _padding(self.expected_emitters(height, width) * self.sequence_factor(n_frames))


def _padding(mean: float) -> int:
    """A padding size that a Poisson count of this mean exceeds with negligible probability."""
    return max(8, int(math.ceil(mean + 6 * math.sqrt(mean) + 8)))


def _static_int(value) -> int | None:
    """``value`` as a Python int, or None for a symbolic tensor (inside ``tf.function``)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _mask_cells(mask) -> int:
    """Cells of a density mask (0 for none or an unknown shape)."""
    if mask is None:
        return 0
    try:
        shape = mask.shape if hasattr(mask, "shape") else np.shape(mask)
        return int(np.prod([int(d) for d in shape]))
    except (TypeError, ValueError):
        return 0


def simulation_memory_bytes(imaging: ImagingConfig, batch: int, height: int, width: int,
                            max_emitters: int | None = None, sequence_frames: int = 0,
                            density_mask_cells: int = 0) -> int:
    """Estimated working memory (bytes) of one ``simulate`` call (``sequence_frames`` 0) or one
    ``simulate_sequence`` call of ``sequence_frames`` frames: the per-emitter PSF profiles,
    which grow with emitters x (height + width) per frame, the per-pixel tensors, and the
    categorical draw over a density mask of ``density_mask_cells`` cells."""
    height, width, batch = int(height), int(width), int(batch)
    frames = batch * max(1, int(sequence_frames))
    if max_emitters is None:
        max_emitters = (imaging.max_sequence_emitters(height, width, sequence_frames)
                        if sequence_frames else imaging.max_emitters(height, width))
    m = int(max_emitters)
    profiles = _PROFILE_COPIES * 4 * frames * m * (height + width + 2)
    pixels = _BYTES_PER_FRAME_PIXEL * frames * height * width
    emitters = _BYTES_PER_EMITTER * frames * m
    mask = 4 * int(density_mask_cells) * (2 + 2 * batch)
    return profiles + pixels + emitters + mask


def _refuse(need: int, what: str, detail: str, advice: str) -> None:
    if need > MEMORY_BUDGET_BYTES:
        raise LoczooError(f"{what} would need {format_bytes(need)} ({detail}), more than the "
                          f"{format_bytes(MEMORY_BUDGET_BYTES)} budget (80% of this machine's "
                          f"memory); {advice}")


def check_simulation_memory(imaging: ImagingConfig, batch, height, width,
                            max_emitters: int | None = None, sequence_frames: int = 0,
                            density_mask_cells: int = 0) -> None:
    """Refuse (``LoczooError``, one line) a ``simulate`` / ``simulate_sequence`` call whose
    working memory would exceed ``MEMORY_BUDGET_BYTES``; a no-op for symbolic sizes."""
    sizes = [_static_int(v) for v in (batch, height, width)]
    if None in sizes or (max_emitters is not None and _static_int(max_emitters) is None):
        return
    batch, height, width = sizes
    if min(sizes) < 1:
        raise LoczooError(f"simulation sizes must be >= 1, got batch {batch} of {height} x "
                          f"{width} px")
    need = simulation_memory_bytes(imaging, batch, height, width, max_emitters,
                                   sequence_frames, density_mask_cells)
    frames = batch * max(1, int(sequence_frames))
    _refuse(need, "simulation", f"{frames} frames of {height} x {width} px at once",
            "simulate fewer frames at once or smaller frames")


def stack_memory_bytes(imaging: ImagingConfig, n_frames: int, height: int, width: int,
                       batch: int = 64, density_mask_cells: int = 0,
                       sequence_frames: int = 16, write: bool = False) -> tuple[int, int, int]:
    """(total, stack, working) estimated bytes of ``simulate_stack`` with these arguments:
    the float32 stack, its ground truth, one batch's working memory, and with ``write`` the
    extra of writing the stack as a TIFF (``io.write_stack``)."""
    n_frames, height, width = int(n_frames), int(height), int(width)
    pixels = n_frames * height * width
    stack = pixels * (4 + (_BYTES_PER_WRITTEN_PIXEL if write else 0))
    inside_um2 = height * width * (imaging.pixel_size_nm / 1000.0) ** 2
    truth = int(n_frames * imaging.density_per_um2[1] * inside_um2 * _BYTES_PER_TRUTH_ROW)
    if imaging.on_time_frames > 0:
        t = min(batch, sequence_frames, n_frames)
        working = simulation_memory_bytes(imaging, 1, height, width, sequence_frames=t)
    else:
        working = simulation_memory_bytes(imaging, min(batch, n_frames), height, width,
                                          density_mask_cells=density_mask_cells)
    return stack + truth + working, stack + truth, working


def check_stack_memory(imaging: ImagingConfig, n_frames: int, height: int, width: int,
                       batch: int = 64, density_mask_cells: int = 0,
                       sequence_frames: int = 16, write: bool = False) -> None:
    """Refuse (``LoczooError``, one line naming the sizes) a ``simulate_stack`` whose memory
    (``stack_memory_bytes``, plus ``density_mask_cells`` x 4 bytes for the mask itself) would
    exceed ``MEMORY_BUDGET_BYTES``. Pure arithmetic: runs before any work."""
    if min(int(n_frames), int(height), int(width)) < 1:
        raise LoczooError(f"frames and frame size must be >= 1, got {n_frames} frames of "
                          f"{height} x {width} px")
    need, stack, working = stack_memory_bytes(imaging, n_frames, height, width, batch,
                                              density_mask_cells, sequence_frames, write)
    need += 4 * int(density_mask_cells)
    frames_at_once = min(int(batch), int(n_frames))
    if imaging.on_time_frames > 0:
        frames_at_once = min(frames_at_once, int(sequence_frames))
    _refuse(need, "simulation",
            f"{n_frames} frames of {height} x {width} px: the stack and its ground truth "
            f"{format_bytes(stack)}, working memory {format_bytes(working)} for "
            f"{frames_at_once} frames at a time",
            "use fewer frames (--frames) or smaller frames (--size)")


def dense_2d_imaging() -> ImagingConfig:
    """The imaging conditions of the dense 2D presets: 100 nm pixels, PSF sigma around 110 nm,
    an sCMOS-like camera comparable to the Deep-STORM demo 1 data (about 2 ADU per photon,
    baseline 100). Ranges are wide on purpose: the models must transfer to imaging conditions
    they never saw."""
    return ImagingConfig(
        pixel_size_nm=100.0, density_per_um2=(0.5, 10.0), photon_distribution="uniform",
        photon_params=(800.0, 6000.0), psf_sigma_nm=(90.0, 135.0),
        background_photons=(5.0, 120.0), background_field_fraction=0.3,
        camera=CameraConfig(qe=1.0, read_noise_e=1.5, e_per_adu=0.5, baseline_adu=100.0))


def dense_2d_blinking_imaging() -> ImagingConfig:
    """``dense_2d_imaging`` with blinking: emitters stay on for 1 frame on average
    (exponential), so neighbouring frames share emitters (DECODE's 2D preset and the
    ``dense_2d_blinking`` data set)."""
    return replace(dense_2d_imaging(), on_time_frames=1.0)


def smlm2016_3d_imaging() -> ImagingConfig:
    """3D astigmatic imaging as DECODE trains for the SMLM 2016 challenge data: 100 nm pixels,
    the challenge's EMCCD (``CameraConfig.smlm2016``), z uniform in -750..750 nm, DECODE's
    astigmatic Gaussian PSF (``AstigmatismConfig()``) around an in-focus sigma of 95-110 nm,
    photons per emitter and frame normal 7000 +/- 3000 (clamped at 1) and a flat background of
    20-200 photons per pixel (DECODE's training notebook), 0.5-3 emitters/um^2 (mean 1.75;
    DECODE's 25 emitters per 40 x 40 px frame are 1.56/um^2; a 64 x 64 px frame gets 72 on
    average). ``on_time_frames`` stays 0: entries that simulate blinking set it."""
    return ImagingConfig(
        pixel_size_nm=100.0, density_per_um2=(0.5, 3.0), photon_distribution="normal",
        photon_params=(7000.0, 3000.0), psf_sigma_nm=(95.0, 110.0),
        background_photons=(20.0, 200.0), background_field_fraction=0.0,
        z_range_nm=(-750.0, 750.0), astigmatism=AstigmatismConfig(),
        camera=CameraConfig.smlm2016())


def split_seeds(seed, n: int):
    """``n`` independent stateless seeds [2] from one seed (an int, a pair or a tensor)."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=n))


def uniform(shape, seed, low, high):
    """Stateless uniform float32 values in [low, high)."""
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high)


def sample_photons(shape, seed, imaging: ImagingConfig):
    """Photon counts per emitter from the configured distribution (float32, >= 1)."""
    p = imaging.photon_params
    kind = imaging.photon_distribution
    if kind == "uniform":
        n = uniform(shape, seed, p[0], p[1])
    elif kind == "normal":
        n = p[0] + p[1] * tf.random.stateless_normal(shape, seed)
    elif kind == "lognormal":
        n = p[0] * tf.exp(p[1] * tf.random.stateless_normal(shape, seed))
    else:  # exponential
        n = -p[0] * tf.math.log(uniform(shape, seed, 1e-7, 1.0))
    return tf.maximum(n, 1.0)


def sample_emitters(seed, batch: int, height: int, width: int, imaging: ImagingConfig,
                    max_emitters: int, density_mask=None, count=None) -> dict:
    """Random emitters for ``batch`` frames, padded to ``max_emitters``.

    The count per frame is Poisson with mean density x area (frame plus margin); ``count``
    ([batch] int32) replaces it. With a ``density_mask`` (array of shape [h, w] covering the
    frame, relative density in [0, 1]), emitters are drawn only inside the frame, with density
    ``density_per_um2`` where the mask is 1 and proportionally less elsewhere.

    Returns a dict of float32 tensors x, y, z, photons, sigma (in focus), sigma_x, sigma_y of
    shape [batch, max_emitters] and the boolean ``exists`` (emitter is real, rendered) and
    ``mask`` (real and inside the frame: ground truth). In 2D z is 0 and sigma_x = sigma_y =
    sigma.
    """
    s = split_seeds(seed, 8)
    px = imaging.pixel_size_nm
    density = uniform([batch], s[0], *imaging.density_per_um2)
    if density_mask is None:
        margin = imaging.margin_px * px
        lo_x, hi_x = -margin, width * px + margin
        lo_y, hi_y = -margin, height * px + margin
        area_um2 = (hi_x - lo_x) * (hi_y - lo_y) * 1e-6
        x = uniform([batch, max_emitters], s[1], lo_x, hi_x)
        y = uniform([batch, max_emitters], s[2], lo_y, hi_y)
    else:
        dm = tf.convert_to_tensor(density_mask, tf.float32)
        mh, mw = dm.shape
        weights = tf.reshape(dm, [-1]) / tf.reduce_max(dm)
        cell_h, cell_w = height * px / mh, width * px / mw
        area_um2 = float(tf.reduce_sum(weights)) * cell_h * cell_w * 1e-6
        logits = tf.tile(tf.math.log(weights + 1e-12)[None], [batch, 1])
        cell = tf.random.stateless_categorical(logits, max_emitters, s[1])
        cy = tf.cast(cell // mw, tf.float32)
        cx = tf.cast(cell % mw, tf.float32)
        x = (cx + uniform([batch, max_emitters], s[2], 0.0, 1.0)) * cell_w
        y = (cy + uniform([batch, max_emitters], s[7], 0.0, 1.0)) * cell_h
    if count is None:
        count = tf.random.stateless_poisson([batch], s[3], density * area_um2, dtype=tf.int32)
    exists = tf.range(max_emitters)[None, :] < tf.minimum(count, max_emitters)[:, None]
    photons = sample_photons([batch, max_emitters], s[4], imaging)
    sigma = uniform([batch, max_emitters], s[5], *imaging.psf_sigma_nm)
    inside = (x >= 0) & (x < width * px) & (y >= 0) & (y < height * px)
    zero = tf.zeros_like(x)
    sigma = tf.where(exists, sigma, tf.ones_like(x) * imaging.psf_sigma_nm[0])
    if imaging.is_3d:
        # s[6] is the one stream the 2D draws leave unused: 2D frames stay as they were.
        z = tf.where(exists, uniform([batch, max_emitters], s[6], *imaging.z_range_nm), zero)
        family = None
        if imaging.astigmatism_spread:  # one PSF per frame, from its own stream
            spread = imaging.astigmatism_spread
            family = tf.unstack(uniform([3, batch, 1], tf.random.experimental.stateless_fold_in(
                s[6], 1), 1.0 - spread, 1.0 + spread))
        sigma_x, sigma_y = astigmatic_sigmas(
            z, sigma, imaging.astigmatism,
            reference_sigma_nm=0.5 * (imaging.psf_sigma_nm[0] + imaging.psf_sigma_nm[1]),
            family=family)
    else:
        z, sigma_x, sigma_y = zero, sigma, sigma
    return {
        "x": tf.where(exists, x, zero),
        "y": tf.where(exists, y, zero),
        "z": z,
        "photons": tf.where(exists, photons, zero),
        "sigma": sigma,
        "sigma_x": sigma_x,
        "sigma_y": sigma_y,
        "exists": exists,
        "mask": exists & inside,
    }


def pixel_profiles(position_nm, sigma_nm, n_pixels: int, pixel_size_nm: float):
    """Fraction of a 1D Gaussian (centre ``position_nm``, std ``sigma_nm``, both [B, M]) that
    falls in each of ``n_pixels`` pixels: erf differences at the pixel edges -> [B, M, n]."""
    edges = tf.range(n_pixels + 1, dtype=tf.float32) * pixel_size_nm
    z = (edges[None, None, :] - position_nm[..., None]) / (
        math.sqrt(2.0) * sigma_nm[..., None])
    cdf = 0.5 * tf.math.erf(z)
    return cdf[..., 1:] - cdf[..., :-1]


def render_emitters(emitters: dict, height: int, width: int, pixel_size_nm: float):
    """Expected photons per pixel from the emitters alone, [B, H, W] float32.

    One batched matrix product: image[b] = Py[b]^T @ Px[b], where Py holds each emitter's row
    profile (width ``sigma_y``) times its photons and Px its column profile (``sigma_x``); both
    widths are ``sigma`` where the dict has no ``sigma_x`` / ``sigma_y``.
    """
    weight = emitters["photons"] * tf.cast(emitters["exists"], tf.float32)
    sigma_x = emitters.get("sigma_x", emitters.get("sigma"))
    sigma_y = emitters.get("sigma_y", emitters.get("sigma"))
    prof_y = pixel_profiles(emitters["y"], sigma_y, height, pixel_size_nm)
    prof_x = pixel_profiles(emitters["x"], sigma_x, width, pixel_size_nm)
    return tf.matmul(prof_y * weight[..., None], prof_x, transpose_a=True)


def sample_background(seed, batch: int, height: int, width: int, imaging: ImagingConfig):
    """Background photons per pixel [B, H, W]: a constant per frame, optionally modulated by a
    smooth random field (a 4 x 4 grid of random values, bilinearly interpolated)."""
    s = split_seeds(seed, 2)
    level = uniform([batch, 1, 1], s[0], *imaging.background_photons)
    bg = tf.broadcast_to(level, [batch, height, width])
    if imaging.background_field_fraction > 0:
        grid = uniform([batch, 4, 4, 1], s[1], -1.0, 1.0)
        smooth = tf.image.resize(grid, [height, width], method="bilinear")[..., 0]
        bg = bg * (1.0 + imaging.background_field_fraction * smooth)
    return bg


def apply_camera(seed, photons, camera: CameraConfig):
    """Noisy camera frames in ADU (float32) from expected photons per pixel (any shape)."""
    s = split_seeds(seed, 3)
    lam = camera.qe * tf.maximum(photons, 0.0)
    if camera.spurious_charge_e > 0:  # skipped at 0 so that the default adds no operation
        lam = lam + camera.spurious_charge_e
    electrons = tf.random.stateless_poisson(tf.shape(lam), s[0], lam, dtype=tf.float32)
    if camera.em_gain is not None:
        # Gamma(shape=n, scale=gain) is the standard model of the EM register output for n
        # input electrons; its variance 2 * gain^2 * mean gives the excess factor of 2.
        safe = tf.maximum(electrons, 1.0)
        amplified = tf.random.stateless_gamma(tf.shape(lam), s[1], alpha=safe) * camera.em_gain
        electrons = tf.where(electrons > 0, amplified, 0.0)
    if camera.read_noise_e > 0:
        electrons += camera.read_noise_e * tf.random.stateless_normal(tf.shape(lam), s[2])
    adu = electrons / camera.e_per_adu + camera.baseline_adu
    if camera.quantize:
        adu = tf.round(adu)
    return tf.clip_by_value(adu, 0.0, camera.saturation_adu)


def expected_adu(photons, camera: CameraConfig):
    """Noise-free mean of ``apply_camera`` (before rounding and saturation)."""
    gain = 1.0 if camera.em_gain is None else camera.em_gain
    electrons = camera.qe * photons + camera.spurious_charge_e
    return electrons * gain / camera.e_per_adu + camera.baseline_adu


def simulate_frames(seed, emitters: dict, height: int, width: int,
                    imaging: ImagingConfig) -> dict:
    """Frames for given emitters (dict as returned by ``sample_emitters``; ``exists`` marks real
    ones). Returns ``frames`` (ADU), ``mean_photons`` (signal + background, before noise) and
    ``background``, each [B, H, W]."""
    s = split_seeds(seed, 2)
    batch = tf.shape(emitters["x"])[0]
    signal = render_emitters(emitters, height, width, imaging.pixel_size_nm)
    background = sample_background(s[0], batch, height, width, imaging)
    mean = signal + background
    return {"frames": apply_camera(s[1], mean, imaging.camera), "mean_photons": mean,
            "background": background}


def simulate(seed, batch: int, height: int, width: int, imaging: ImagingConfig,
             max_emitters: int | None = None, density_mask=None) -> dict:
    """Random emitters and their camera frames: ``frames`` [B, H, W] ADU plus the padded ground
    truth ``x, y, photons, sigma`` [B, M] (and ``z, sigma_x, sigma_y`` when ``imaging.is_3d``)
    and ``mask`` [B, M] (inside the frame)."""
    if max_emitters is None:
        max_emitters = imaging.max_emitters(height, width)
    cells = _mask_cells(density_mask)
    check_simulation_memory(imaging, batch, height, width, max_emitters,
                            density_mask_cells=cells)
    s = split_seeds(seed, 2)
    emitters = sample_emitters(s[0], batch, height, width, imaging, max_emitters, density_mask)
    out = simulate_frames(s[1], emitters, height, width, imaging)
    keys = ("x", "y", "photons", "sigma", "mask")
    if imaging.is_3d:
        keys += ("z", "sigma_x", "sigma_y")
    out.update({k: emitters[k] for k in keys})
    return out


def emitters_to_table(sim: dict, first_frame: int = 1) -> Localizations:
    """Ground-truth table (frames numbered from ``first_frame``) from a ``simulate`` result; z
    is filled where the result has one. (The PSF widths are not copied: the table's sigma_x and
    sigma_y are localization uncertainties.)"""
    mask = np.asarray(sim["mask"])
    frame_index = np.nonzero(mask)[0]
    return Localizations(
        frame=frame_index + first_frame,
        x=np.asarray(sim["x"])[mask], y=np.asarray(sim["y"])[mask],
        z=np.asarray(sim["z"])[mask] if "z" in sim else None,
        photons=np.asarray(sim["photons"])[mask])


def simulated_dataset(imaging: ImagingConfig, height: int, width: int, batch: int, seed: int,
                      max_emitters: int | None = None) -> tf.data.Dataset:
    """An endless ``tf.data.Dataset`` of ``simulate`` batches; batch i uses seed (seed, i), so the
    stream is reproducible and independent of how many elements were consumed before."""
    if max_emitters is None:
        max_emitters = imaging.max_emitters(height, width)

    def make(i):
        return simulate(tf.stack([tf.constant(seed, tf.int64), i]), batch, height, width,
                        imaging, max_emitters)

    return tf.data.Dataset.range(2**62).map(make, num_parallel_calls=tf.data.AUTOTUNE)


def simulate_sequence(seed, batch: int, n_frames: int, height: int, width: int,
                      imaging: ImagingConfig, max_emitters: int | None = None) -> dict:
    """``batch`` independent sequences of ``n_frames`` consecutive frames with blinking emitters
    (the model of DECODE's ``EmitterSamplerBlinking``).

    With tau = ``on_time_frames`` > 0, each emitter switches on at t0 ~ Uniform(-3 tau,
    T + 3 tau) (frame t covers [t, t + 1)), stays on for D ~ Exponential(mean tau) and emits a
    flux per frame drawn from the photon distribution; frame t gets flux x the length of
    [t0, t0 + D] within [t, t + 1]. The number of emitters per sequence is Poisson with mean
    density x area x (T + 6 tau) / (tau + 1) (``ImagingConfig.sequence_factor``), so that on
    average ``density_per_um2`` emitters per um^2 are on in any frame (slightly fewer in the
    first frames: an emitter on for more than 3 tau + t frames cannot reach frame t from the
    padding; about 2.5 % in frame 0 at tau = 1).

    With tau = 0 every emitter is on for exactly one whole frame (t0 a uniform integer, D = 1):
    statistically independent frames with the density of ``simulate``, but other random
    numbers, and the same density for all frames of a sequence.

    Position, z and PSF width of an emitter stay fixed; the density and the background (level
    and smooth field) are drawn once per sequence; camera noise is independent per frame.

    Returns ``frames``, ``mean_photons`` and ``background`` [B, T, H, W]; per frame the padded
    ground truth ``x, y, z, photons, sigma, sigma_x, sigma_y`` and ``mask`` (on in that frame
    with photons > 0 and inside it) [B, T, M]; per emitter ``id`` [B, M] int32 (1-based, the
    same in every frame; 0 for padding), ``exists`` [B, M], ``flux`` (photons per whole frame
    on), ``t_start`` and ``t_on`` (t0 and D in frames) [B, M]. In 2D z is 0 and sigma_x =
    sigma_y = sigma.
    """
    n_frames = int(n_frames)
    if n_frames < 1:
        raise LoczooError(f"n_frames must be >= 1, got {n_frames}")
    if max_emitters is None:
        max_emitters = imaging.max_sequence_emitters(height, width, n_frames)
    check_simulation_memory(imaging, batch, height, width, max_emitters,
                            sequence_frames=n_frames)
    m = max_emitters
    s = split_seeds(seed, 6)
    tau = float(imaging.on_time_frames)
    density = uniform([batch], s[1], *imaging.density_per_um2)
    mean_count = imaging.area_um2(height, width) * imaging.sequence_factor(n_frames)
    count = tf.random.stateless_poisson([batch], s[2], density * mean_count, dtype=tf.int32)
    emitters = sample_emitters(s[0], batch, height, width, imaging, m, count=count)
    exists = emitters["exists"]
    t = split_seeds(s[3], 2)
    if tau > 0:
        start = uniform([batch, m], t[0], -3.0 * tau, n_frames + 3.0 * tau)
        # -log(1 - u) with u in [0, 1): exponential without log(0).
        duration = -tau * tf.math.log1p(-uniform([batch, m], t[1], 0.0, 1.0))
    else:
        start = tf.cast(tf.random.stateless_uniform([batch, m], t[0], 0, n_frames, tf.int32),
                        tf.float32)
        duration = tf.ones_like(start)
    frame_t = tf.range(n_frames, dtype=tf.float32)[None, :, None]  # [1, T, 1]
    on = (tf.minimum((start + duration)[:, None], frame_t + 1.0)
          - tf.maximum(start[:, None], frame_t))
    flux = emitters["photons"]
    photons = tf.maximum(on, 0.0) * flux[:, None] * tf.cast(exists, tf.float32)[:, None]

    def per_frame(v):  # [B, M] -> [B, T, M]
        return tf.broadcast_to(v[:, None], [batch, n_frames, m])

    def flat(v):  # [B, T, ...] -> [B * T, ...]
        return tf.reshape(v, tf.concat([[batch * n_frames], tf.shape(v)[2:]], 0))

    fields = ("x", "y", "z", "sigma", "sigma_x", "sigma_y")
    out = {k: per_frame(emitters[k]) for k in fields}
    render = {k: flat(out[k]) for k in fields}
    render["photons"] = flat(photons)
    render["exists"] = render["photons"] > 0
    signal = render_emitters(render, height, width, imaging.pixel_size_nm)
    background = sample_background(s[4], batch, height, width, imaging)
    background = tf.broadcast_to(background[:, None], [batch, n_frames, height, width])
    mean = tf.reshape(signal, [batch, n_frames, height, width]) + background
    out.update({
        "frames": apply_camera(s[5], mean, imaging.camera),
        "mean_photons": mean,
        "background": background,
        "photons": photons,
        "mask": per_frame(emitters["mask"]) & (photons > 0),
        "id": tf.where(exists, tf.range(1, m + 1)[None, :], 0),
        "exists": exists,
        "flux": tf.where(exists, flux, 0.0),
        "t_start": tf.where(exists, start, 0.0),
        "t_on": tf.where(exists, duration, 0.0),
    })
    return out


def sequence_to_table(sim: dict, first_frame: int = 1) -> Localizations:
    """Ground truth of a ``simulate_sequence`` result: frame t of sequence b is frame
    ``first_frame + b T + t``. z is left unknown (NaN) when every z is exactly 0 (2D)."""
    keys = ("x", "y", "z", "photons", "mask")
    flat = {k: np.asarray(sim[k]).reshape(-1, np.shape(sim[k])[-1]) for k in keys}
    if not np.any(flat["z"]):
        del flat["z"]
    return emitters_to_table(flat, first_frame)


def simulate_stack(imaging: ImagingConfig, n_frames: int, height: int, width: int,
                   seed: int = 0, batch: int = 64, progress=None, density_mask=None,
                   sequence_frames: int = 16):
    """A stack [N, H, W] (ADU, float32) and its ground-truth table (frames 1-based), simulated
    batch by batch (optionally on a ``density_mask``, see ``sample_emitters``). The same seed
    and ``batch`` give the same stack. With blinking (``on_time_frames`` > 0) the stack is made
    of independent ``simulate_sequence`` runs of ``sequence_frames`` consecutive frames, each
    with its own density and background (emitters do not carry over from one to the next), so
    that a short stack still spans the configured ranges.

    Refuses (``LoczooError``) before any work a stack whose memory (``stack_memory_bytes``)
    would exceed ``MEMORY_BUDGET_BYTES``."""
    blinking = imaging.on_time_frames > 0
    if blinking and density_mask is not None:
        raise LoczooError("density masks are not supported with blinking (on_time_frames > 0)")
    cells = _mask_cells(density_mask)
    check_stack_memory(imaging, n_frames, height, width, batch, cells, sequence_frames)
    if blinking:
        batch = min(batch, sequence_frames)
    frames = np.empty((n_frames, height, width), np.float32)  # filled batch by batch
    tables = []
    for start in range(0, n_frames, batch):
        size = min(batch, n_frames - start)
        seed_pair = tf.constant([seed, start], tf.int64)
        if blinking:
            sim = simulate_sequence(seed_pair, 1, size, height, width, imaging)
            frames[start:start + size] = sim["frames"].numpy()[0]
            tables.append(sequence_to_table(sim, first_frame=start + 1))
        else:
            sim = simulate(seed_pair, size, height, width, imaging, density_mask=density_mask)
            frames[start:start + size] = sim["frames"].numpy()
            tables.append(emitters_to_table(sim, first_frame=start + 1))
        del sim
        if progress is not None:
            progress(start + size, n_frames)
    return frames, Localizations.concatenate(tables)
