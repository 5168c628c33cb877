"""Estimate a user's imaging parameters from a raw SMLM stack (ADU), to simulate look-alike data.

The estimates are meant to make :mod:`loczoo.smlm.simulate` produce training frames that look
like the user's frames: camera baseline and gain, PSF width, emitter density, photons per
emitter and background. Everything works on the frames alone (numpy/scipy, no TensorFlow), and
only a subsample of frames is read, so memory-mapped stacks of any length are fine.

Camera (``estimate_camera``): the photon transfer (mean-variance) relation. Shot noise makes the
variance of a pixel grow linearly with its mean: ``var = F g (mean - baseline) + read_var``
(ADU), with g the ADU per detected photon and F the excess noise factor (1 for sCMOS/CCD, 2 for
an EMCCD). Only ``F g`` is visible in the noise, so with an EM camera pass
``excess_noise_factor=2``: otherwise ``adu_per_photon`` is twice, and ``photons_per_adu`` half,
the true value. Quantum efficiency is invisible too: "photons" are detected photons.
The (mean, variance) points come from two independent sources, fitted jointly:

- background tiles: noise is measured with the 2 x 2 "checkerboard" contrast
  (p00 - p01 - p10 + p11) / 2 of non-overlapping pixel blocks, which cancels any constant or
  linear background and so needs no flat field; blocks near anything brighter than the
  background are masked. The level of each 8 x 8 tile comes from the other half of its blocks,
  so that binning by the level does not select noise (a noisy level computed from the same
  pixels biases the variance of the lowest and highest bins). Tiles span a range of means when
  the background varies in space or from frame to frame.
- spots: residuals of integrated-Gaussian fits, whose expectation follows the same line at
  the model value of each pixel (corrected exactly, to first order, for the noise the fitted
  parameters absorb, through the fit's hat matrix). They extend the range up to the spot
  peaks, which is what identifies the slope when the background is the same everywhere
  (simulated sets, some real ones). Spots that fit worse than noise allows or look like two
  emitters (quadrupole moments of the residuals) are left out, iteratively. This part assumes
  a Gaussian PSF; a real PSF's mismatch adds variance at the peaks, so the tile points carry
  most weight whenever they cover a useful range.

Within each mean bin the variance is a sigma-clipped variance (blinking emitters, neighbours and
hot pixels only add variance), and the line is an iteratively reweighted (Tukey) fit in which
each bin counts by its statistical precision.

The baseline: the line only determines ``baseline + read_var / (F g)``, never the two apart,
because a pixel with no light at all does not exist in SMLM data; fitting the intercept to a
"read-noise floor" is therefore ill-conditioned. ``baseline_adu`` is the x-intercept with zero
read noise (a lower bound of the true baseline; exact when ``read_noise_adu`` is given). A
simulator with this baseline and no read noise reproduces the data's mean and variance at every
level, which is what training needs. ``baseline_max_adu`` (the darkest background level seen,
since background cannot be negative) is an upper bound. Percentiles of pixel minima or medians
alone are not used: they sit at baseline + background - noise, which is never the baseline.

Spots and PSF (``estimate_psf_sigma``): without a first pass, local maxima of a
difference-of-Gaussians image well above its noise, with no other maximum within 4.5 sigma;
box pixels nearer to another maximum are left out. With a first localization pass (e.g. a
network's), every localization with no other within 2.5 sigma is a spot, fitted together
with up to 12 neighbours at their localized positions (their photons and, inside the box,
their widths free): this is what makes dense data usable, where nothing is isolated. Spots
keep 2 sigma from the frame edge (emitters just outside the frame are in no list); box pixels
past the edge are left out of the fit. The model
is a symmetric Gaussian integrated over each pixel (erf differences) on a tilted plane,
fitted by Levenberg-Marquardt vectorised over spots and weighted by the camera's variance
model; the pixel-integrated model keeps sigma unbiased for pixels of 100-160 nm (a sampled
Gaussian would read about 1/12 px^2 too wide). PSF width and photons come from the spots
that fit as single emitters.

Emitters (``estimate_emitters``): photons from the same fits, background per frame from its
flat background tiles (else its spots' fitted offsets, else its unmasked pixels), density from
per-frame counts of a first localization pass when one is given (networks resolve dense
emitters a spot finder merges), else from the spot finder (a lower bound).

Crowded data: when flat background covers less than 5 % of the frames and there is no first
pass, or when the spots do not behave like single emitters under the fitted line, the camera
estimate raises ``LoczooError`` asking for a first pass or the known camera
(``CameraEstimate.known``; on the command line ``loczoo finetune --camera``), rather than
returning a gain that can be off by tens of percent.

``estimate_imaging`` runs all three once and turns them into ``imaging.*`` overrides for
:class:`loczoo.smlm.simulate.ImagingConfig` (``ImagingEstimate.imaging_overrides``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from scipy.special import erf

from loczoo.errors import LoczooError
from loczoo.smlm.io import as_frames, check_pixel_size
from loczoo.smlm.localizations import Localizations

MIN_CAMERA_FRAMES = 10
_MAX_CAMERA_FRAMES = 500
_MAX_SPOT_FRAMES = 1000
_PIXEL_BUDGET = 1e7          # pixel-frames read (80 MB as float64; a few copies in use)
_MAX_SPOTS = 4000            # fits per pass (a random, reproducible subset beyond)
_MAX_CROWDED_SPOTS = 4000    # the same with neighbours in the fit (2-3 x the parameters)
_TILE = 4                    # tile side in 2 x 2 blocks (8 x 8 pixels)
_MIN_TILE_FRACTION = 0.05    # flat tiles needed (of all) to trust them as background
_FLAT_F = 6.0                # F-test (7, 8 dof, 99 %) on the scatter of a tile's block means
_CLIP = 4.0                  # sigma-clipping threshold for variances
_REL_FLOOR = 0.02            # systematic error floor (relative) per mean-variance bin
_NB = 8                      # spot parameters before the neighbours' photons and widths
_MAX_ASPECT = 3.0            # widest / narrowest axis of a plausible astigmatic spot
_WIDTH_MARGIN = 0.15         # relative slack on a known PSF's width range
_MIN_Z_SPOTS = 20            # single-emitter spots needed to estimate the data's z range
_Z_MARGIN = 0.15             # the z range to train: the spots' z range widened by this x span
_Z_MARGIN_NM = 100.0         # ... and by at least this much
_SQRT2 = math.sqrt(2.0)
# How to skip the camera estimate, for its error messages.
_KNOWN_CAMERA = ("the known camera (loczoo finetune --camera, e.g. --camera scmos --camera "
                 "baseline_adu=100; in Python camera=CameraEstimate.known(...))")
_SQRT2PI = math.sqrt(2.0 * math.pi)


def _set_hint(key: str, example: str) -> str:
    """How to give an imaging value that cannot be estimated, for error messages."""
    return (f"or give it yourself (loczoo finetune without --data, with --set "
            f"imaging.{key}={example})")


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class CameraEstimate:
    """Camera from the mean-variance relation. ``photons_per_adu`` converts ADU above the
    baseline into detected photons; ``variance_slope`` is the fitted d(var)/d(mean) (ADU),
    i.e. ``excess_noise_factor * adu_per_photon``. ``baseline_adu`` assumes zero read noise
    unless ``read_noise_adu`` was given (then ``read_noise_known``); the true baseline lies
    between it and ``baseline_max_adu``. ``notes`` are warnings in words."""

    baseline_adu: float
    adu_per_photon: float
    photons_per_adu: float
    read_noise_adu: float | None
    read_noise_known: bool
    baseline_max_adu: float
    excess_noise_factor: float
    variance_slope: float
    slope_rel_error: float
    r_squared: float
    n_bins: int
    n_tile_bins: int
    n_spot_bins: int
    mean_range_adu: tuple[float, float]
    n_frames: int
    notes: tuple[str, ...] = ()

    @classmethod
    def known(cls, baseline_adu: float, adu_per_photon: float, excess_noise_factor: float = 1.0,
              read_noise_adu: float = 0.0) -> "CameraEstimate":
        """A camera from its specification (or an earlier estimate), for ``estimate_imaging``
        on data where the gain cannot be measured (too few frames, too crowded)."""
        if not (adu_per_photon > 0 and excess_noise_factor >= 1 and read_noise_adu >= 0
                and math.isfinite(baseline_adu)):
            raise LoczooError("a known camera needs a finite baseline, adu_per_photon > 0, "
                              "excess_noise_factor >= 1 and read_noise_adu >= 0")
        return cls(baseline_adu=float(baseline_adu), adu_per_photon=float(adu_per_photon),
                   photons_per_adu=1.0 / float(adu_per_photon),
                   read_noise_adu=float(read_noise_adu), read_noise_known=True,
                   baseline_max_adu=float(baseline_adu),
                   excess_noise_factor=float(excess_noise_factor),
                   variance_slope=float(adu_per_photon * excess_noise_factor),
                   slope_rel_error=0.0, r_squared=float("nan"), n_bins=0, n_tile_bins=0,
                   n_spot_bins=0, mean_range_adu=(float("nan"), float("nan")), n_frames=0,
                   notes=("camera given, not estimated",))

    @property
    def estimated(self) -> bool:
        return self.n_bins > 0

    @property
    def fit_quality(self) -> str:
        return (f"R^2 {self.r_squared:.3f}, slope +/- {100 * self.slope_rel_error:.1f} %, "
                f"{self.n_bins} bins")

    def variance(self, mean_adu):
        """The fitted noise variance (ADU^2) at a mean level (ADU)."""
        read = self.read_noise_adu or 0.0
        return self.variance_slope * (np.asarray(mean_adu, np.float64)
                                      - self.baseline_adu) + read * read


@dataclass(frozen=True)
class PsfEstimate:
    """Gaussian PSF width from spots that fit as single emitters: median and 10th-90th
    percentile (nm). Astigmatic (3D) spots, fitted as elliptical Gaussians: ``sigma_nm`` is
    the geometric mean of the two widths, ``sigma_x_range_nm`` and ``sigma_y_range_nm`` the
    10th-90th percentiles per axis. A known PSF (``source``, e.g. psf.json): its in-focus
    width (geometric mean) and the widths it takes over its z range, not measured; and
    ``z_range_nm``, the z range of the data: each single-emitter spot's fitted widths read as
    z on the PSF's width curve (nearest point in log width), 1st-99th percentile widened by
    ``_Z_MARGIN`` of the span (at least ``_Z_MARGIN_NM``), within the PSF's z range."""

    sigma_nm: float
    sigma_range_nm: tuple[float, float]
    n_spots: int
    pixel_size_nm: float
    notes: tuple[str, ...] = ()
    sigma_x_range_nm: tuple[float, float] | None = None
    sigma_y_range_nm: tuple[float, float] | None = None
    source: str = ""
    z_range_nm: tuple[float, float] | None = None
    n_z_spots: int = 0

    @property
    def astigmatic(self) -> bool:
        return self.sigma_x_range_nm is not None


@dataclass(frozen=True)
class EmitterEstimate:
    """Density (/um^2 per frame), photons per emitter (detected photons, from fitted spots)
    and background (photons per pixel, per frame): medians and 10th-90th percentiles."""

    density_per_um2: float
    density_range_per_um2: tuple[float, float]
    density_source: str
    n_density_frames: int
    photons: float
    photon_range: tuple[float, float]
    n_photon_spots: int
    background_photons: float
    background_range_photons: tuple[float, float]
    n_background_frames: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImagingEstimate:
    """All estimates for one stack, as text (``summary_lines``) and as simulator overrides."""

    pixel_size_nm: float
    n_frames: int
    camera: CameraEstimate
    psf: PsfEstimate
    emitters: EmitterEstimate
    notes: tuple[str, ...] = field(default=())

    def summary_lines(self) -> list[str]:
        c, p, e = self.camera, self.psf, self.emitters
        if c.estimated:
            how = (f"mean-variance fit over {c.n_bins} bins ({c.n_tile_bins} background, "
                   f"{c.n_spot_bins} spot), R^2 {c.r_squared:.2f}, slope +/- "
                   f"{100 * c.slope_rel_error:.0f} %")
        else:
            how = "given"
        lines = [f"camera baseline {c.baseline_adu:.1f} ADU, {c.adu_per_photon:.3g} ADU/photon "
                 f"({c.photons_per_adu:.3g} photons/ADU; {how})"]
        if c.read_noise_known:
            lines.append(f"camera read noise {c.read_noise_adu:.2f} ADU (given)")
        else:
            lines.append(f"camera baseline assumes no read noise; the true baseline lies in "
                         f"{c.baseline_adu:.1f}-{c.baseline_max_adu:.1f} ADU")
        if c.excess_noise_factor != 1.0:
            lines.append(f"camera excess noise factor {c.excess_noise_factor:g} (EM gain)")
        if p.source:
            psf_line = (f"PSF from {p.source} (not estimated): in-focus sigma {p.sigma_nm:.0f} nm"
                        f" (x/y geometric mean), widths over its z range x "
                        f"{p.sigma_x_range_nm[0]:.0f}-{p.sigma_x_range_nm[1]:.0f} nm, y "
                        f"{p.sigma_y_range_nm[0]:.0f}-{p.sigma_y_range_nm[1]:.0f} nm")
            if p.z_range_nm is not None:
                psf_line += (f"; z range to train {p.z_range_nm[0]:.0f}..{p.z_range_nm[1]:.0f}"
                             f" nm (the widths of {p.n_z_spots} spots read on it, with a "
                             f"margin)")
        elif p.astigmatic:
            psf_line = (f"PSF widths (astigmatic spots, elliptical fits) x "
                        f"{p.sigma_x_range_nm[0]:.0f}-{p.sigma_x_range_nm[1]:.0f} nm, y "
                        f"{p.sigma_y_range_nm[0]:.0f}-{p.sigma_y_range_nm[1]:.0f} nm (10-90 %, "
                        f"{p.n_spots} spots)")
        else:
            psf_line = (f"PSF sigma {p.sigma_nm:.0f} nm (10-90 %: {p.sigma_range_nm[0]:.0f}-"
                        f"{p.sigma_range_nm[1]:.0f} nm, {p.n_spots} spots)")
        lines += [
            psf_line,
            f"density {e.density_range_per_um2[0]:.2g}-{e.density_range_per_um2[1]:.2g} /um^2 "
            f"(median {e.density_per_um2:.2g}) from {e.n_density_frames} frames "
            f"({e.density_source})",
            f"photons {e.photon_range[0]:.0f}-{e.photon_range[1]:.0f} (median {e.photons:.0f}, "
            f"10-90 % of {e.n_photon_spots} spots)",
            f"background {e.background_range_photons[0]:.3g}-{e.background_range_photons[1]:.3g}"
            f" photons/pixel (median {e.background_photons:.3g})",
        ]
        seen = set()
        for note in (*c.notes, *p.notes, *e.notes, *self.notes):
            if note not in seen:
                seen.add(note)
                lines.append(f"note: {note}")
        return lines

    def imaging_overrides(self, psf_margin: float = 0.1, range_margin: float = 0.2,
                          em_gain: float = 100.0) -> list[str]:
        """``imaging.KEY=VALUE`` overrides (``loczoo.config.with_overrides``) that make the
        simulator's ``ImagingConfig`` cover these estimates: PSF sigma 10-90 % widened to at
        least median +/- ``psf_margin``, photons (uniform) and density 10-90 % and background
        10-90 % widened by ``range_margin`` on each side, and the camera as its photon-to-ADU
        conversion: qe 1 and ``e_per_adu = photons_per_adu`` (sCMOS), or with an excess noise
        factor of 2 an EM gain of ``em_gain`` and ``e_per_adu = em_gain * photons_per_adu``,
        so that ``camera.photons_per_adu`` is the estimate either way. Read noise is 0 unless
        it was given (the baseline then absorbs it, see the module docstring). Astigmatic
        spots leave ``imaging.psf_sigma_nm`` out: their widths vary with z, the in-focus width
        is the model's (or a known PSF's) astigmatism, not a spot-fit median."""
        c, p, e = self.camera, self.psf, self.emitters
        lo_s = min(p.sigma_range_nm[0], p.sigma_nm * (1 - psf_margin))
        hi_s = max(p.sigma_range_nm[1], p.sigma_nm * (1 + psf_margin))
        lo_n = max(1.0, e.photon_range[0] * (1 - range_margin))
        hi_n = max(lo_n + 1.0, e.photon_range[1] * (1 + range_margin))
        lo_d = max(0.0, e.density_range_per_um2[0] * (1 - range_margin))
        hi_d = max(lo_d + 0.05, e.density_range_per_um2[1] * (1 + range_margin))
        lo_b = max(0.0, e.background_range_photons[0] * (1 - range_margin))
        hi_b = max(lo_b + 0.5, e.background_range_photons[1] * (1 + range_margin))
        em = c.excess_noise_factor > 1.5
        e_per_adu = c.photons_per_adu * (em_gain if em else 1.0)
        read_e = (c.read_noise_adu or 0.0) * e_per_adu if c.read_noise_known else 0.0

        def num(value: float) -> str:
            return f"{float(value):.6g}"

        def span(lo: float, hi: float) -> str:  # rounded outwards: the range still covers
            return f"[{math.floor(lo * 1000) / 1000!r}, {math.ceil(hi * 1000) / 1000!r}]"

        psf = [] if p.astigmatic else [f"imaging.psf_sigma_nm={span(lo_s, hi_s)}"]
        if p.z_range_nm is not None:
            psf.append(f"imaging.z_range_nm=[{p.z_range_nm[0]!r}, {p.z_range_nm[1]!r}]")
        return [
            f"imaging.pixel_size_nm={num(self.pixel_size_nm)}",
            *psf,
            'imaging.photon_distribution="uniform"',
            f"imaging.photon_params={span(lo_n, hi_n)}",
            f"imaging.density_per_um2={span(lo_d, hi_d)}",
            f"imaging.background_photons={span(lo_b, hi_b)}",
            "imaging.camera.qe=1.0",
            f"imaging.camera.em_gain={num(em_gain) if em else 'null'}",
            f"imaging.camera.e_per_adu={num(e_per_adu)}",
            f"imaging.camera.baseline_adu={num(c.baseline_adu)}",
            f"imaging.camera.read_noise_e={num(read_e)}",
            "imaging.camera.spurious_charge_e=0.0",
        ]


# ------------------------------------------------------------------------------ public API


def estimate_camera(frames, excess_noise_factor: float = 1.0,
                    read_noise_adu: float | None = None,
                    localizations: Localizations | None = None,
                    pixel_size_nm: float | None = None) -> CameraEstimate:
    """Camera baseline and gain from the mean-variance relation of ``frames`` [N, H, W] (ADU).

    With an EM camera the fitted slope includes the excess noise factor 2: pass
    ``excess_noise_factor=2``, or ``adu_per_photon`` is twice (``photons_per_adu`` half) the
    true value. ``read_noise_adu`` (from the camera's data sheet), if known, turns the
    zero-read-noise baseline into the true one. A first localization pass
    (``localizations``, with ``pixel_size_nm``) lets crowded spots be fitted with their
    neighbours. Needs at least 10 frames."""
    frames = _check_stack(frames)
    notes: list[str] = []
    limit = max(_camera_limit(frames), _spot_limit(frames))
    data, index = _load(frames, limit, notes)
    _enough_for_camera(data)
    extra = None
    if localizations is not None:
        if pixel_size_nm is None:
            raise LoczooError("estimate_camera with localizations needs pixel_size_nm")
        extra = _localization_points(localizations, index, _check_pixel_size(pixel_size_nm))
    cam_data = data[_every_index(len(data), _camera_limit(frames))]
    spot_rows = _every_index(len(data), _spot_limit(frames))
    extra = _rows_subset(extra, spot_rows, len(data))
    sigma_px = _psf_scale(data[spot_rows], extra)
    spots = _find_and_fit(data[spot_rows], sigma_px, None, extra)
    return _camera_from(cam_data, spots, excess_noise_factor, read_noise_adu, notes)


def estimate_psf_sigma(frames, camera: CameraEstimate, pixel_size_nm: float,
                       localizations: Localizations | None = None) -> PsfEstimate:
    """PSF Gaussian sigma (nm) from spots fitted with an integrated Gaussian, weighted
    by ``camera``'s noise model. ``localizations`` (a first pass), if given, become the
    spots, each fitted with its neighbours (the way to measure dense data)."""
    frames = _check_stack(frames)
    pixel_size_nm = _check_pixel_size(pixel_size_nm)
    notes: list[str] = []
    data, index = _load(frames, _spot_limit(frames), notes)
    extra = _localization_points(localizations, index, pixel_size_nm)
    sigma_px = _psf_scale(data, extra)
    spots = _find_and_fit(data, sigma_px, camera, extra)
    return _psf_from(spots, pixel_size_nm, notes)


def estimate_emitters(frames, camera: CameraEstimate, pixel_size_nm: float,
                      psf_sigma_nm: float, localizations: Localizations | None = None
                      ) -> EmitterEstimate:
    """Density, photons per emitter and background per pixel (detected photons).

    ``localizations`` (a first pass, e.g. a network's, frames 1-based in the stack's
    numbering) gives the density; without it the spot finder's counts are used, which miss
    overlapping emitters in dense data."""
    frames = _check_stack(frames)
    pixel_size_nm = _check_pixel_size(pixel_size_nm)
    if not psf_sigma_nm > 0:
        raise LoczooError(f"psf_sigma_nm must be > 0, got {psf_sigma_nm}")
    notes: list[str] = []
    data, index = _load(frames, _spot_limit(frames), notes)
    extra = _localization_points(localizations, index, pixel_size_nm)
    spots = _find_and_fit(data, psf_sigma_nm / pixel_size_nm, camera, extra)
    return _emitters_from(frames, data, spots, camera, pixel_size_nm, localizations, notes)


def estimate_imaging(frames, pixel_size_nm: float, localizations: Localizations | None = None,
                     excess_noise_factor: float = 1.0, read_noise_adu: float | None = None,
                     camera: CameraEstimate | None = None, elliptical: bool = False,
                     psf=None, psf_source: str = "psf.json") -> ImagingEstimate:
    """Camera, PSF and emitters from one frame subsample (see the module docstring).

    ``excess_noise_factor``: 2 for an EMCCD (see ``estimate_camera``); ``read_noise_adu``: the
    camera's read noise if known; ``localizations``: a first localization pass (density, and
    the neighbours of each fitted spot); ``camera``: a known camera
    (``CameraEstimate.known``) instead of estimating it.

    3D (astigmatic) data: ``elliptical`` fits the spots as elliptical Gaussians (sigma_x and
    sigma_y apart); a spot counts as a single emitter when its widths are plausible (each
    0.5-4 px, aspect up to 3) and its residuals noise-like. ``psf``: a known astigmatic PSF
    (``loczoo.smlm.psf.PsfModel``, read from ``psf_source``; implies ``elliptical``): the
    spots' widths must then lie within the PSF's widths over its z range (+/- 15 %), photons
    and background come from fits with the widths set to the nearest point of its width
    curve, and the PSF is reported as given, not estimated."""
    frames = _check_stack(frames)
    pixel_size_nm = _check_pixel_size(pixel_size_nm)
    notes: list[str] = []
    cam_limit, spot_limit = _camera_limit(frames), _spot_limit(frames)
    data, index = _load(frames, max(cam_limit, spot_limit), notes)
    if camera is None:
        _enough_for_camera(data)
    spot_rows = _every_index(len(data), spot_limit)
    spot_data = data[spot_rows]
    cam_data = data[_every_index(len(data), cam_limit)]
    extra = _rows_subset(_localization_points(localizations, index, pixel_size_nm), spot_rows,
                         len(data))
    elliptical = bool(elliptical or psf is not None)
    widths = curve = curve_z = None
    if psf is not None:
        curve, curve_z = _psf_curve(psf, pixel_size_nm)
        widths = ((float(curve[:, 0].min()), float(curve[:, 0].max())),
                  (float(curve[:, 1].min()), float(curve[:, 1].max())))
    sigma_px = _psf_scale(spot_data, extra, elliptical)
    spots = _find_and_fit(spot_data, sigma_px, None, extra, elliptical=elliptical)
    spots = replace(spots, widths=widths, curve=curve)
    if camera is None:
        camera = _camera_from(cam_data, spots, excess_noise_factor, read_noise_adu, [])
    spots = _refit(spots, camera)
    if psf is None:
        psf_estimate = _psf_from(spots, pixel_size_nm, [])
    else:
        psf_estimate = _psf_given(psf, spots, curve_z, pixel_size_nm, psf_source)
    emitters = _emitters_from(frames, spot_data, spots, camera, pixel_size_nm, localizations,
                              [])
    return ImagingEstimate(pixel_size_nm=pixel_size_nm, n_frames=int(frames.shape[0]),
                           camera=camera, psf=psf_estimate, emitters=emitters,
                           notes=tuple(notes))


def _psf_curve(psf, pixel_size_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """[M, 2] widths (sigma_x, sigma_y; pixels) of a known PSF along its z range, and the
    [M] z (nm) they belong to (10 nm apart or closer)."""
    lo, hi = (float(v) for v in psf.z_range_nm)
    z = np.linspace(lo, hi, max(201, int(math.ceil((hi - lo) / 10.0)) + 1))
    sx, sy = psf.sigmas(z)
    curve = np.stack([sx, sy], axis=1) / pixel_size_nm
    finite = np.isfinite(curve).all(axis=1) & (curve > 0).all(axis=1)
    if not finite.any():
        raise LoczooError("the PSF has no positive width over its z range; calibrate it again "
                          "(loczoo calibrate-psf) or drop --psf")
    return curve[finite], z[finite]


# ------------------------------------------------------------------------------ input


def _check_stack(frames):
    frames = as_frames(frames)
    if min(frames.shape[1:]) < 12:
        raise LoczooError(f"frames of {frames.shape[1]} x {frames.shape[2]} pixels are too small "
                          "to estimate imaging parameters; need at least 12 x 12")
    return frames


def _check_pixel_size(pixel_size_nm) -> float:
    """The pixel size, required here: a finite number of nm (io's check), below 0.1 mm."""
    value = check_pixel_size(pixel_size_nm, "pixel_size_nm")
    if value is None or value >= 1e5:
        raise LoczooError(f"pixel_size_nm must be a positive number of nm, got {pixel_size_nm!r}")
    return value


def _budget(frames, most: int) -> int:
    pixels = int(frames.shape[1]) * int(frames.shape[2])
    return int(max(MIN_CAMERA_FRAMES, min(most, _PIXEL_BUDGET // pixels)))


def _camera_limit(frames) -> int:
    return _budget(frames, _MAX_CAMERA_FRAMES)


def _spot_limit(frames) -> int:
    return _budget(frames, _MAX_SPOT_FRAMES)


def _every_index(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` evenly spaced indices into ``n`` items."""
    return np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int))


def _enough_for_camera(data: np.ndarray) -> None:
    if len(data) < MIN_CAMERA_FRAMES:
        raise LoczooError(f"too few frames for the camera estimate: {len(data)} usable, need at "
                          f"least {MIN_CAMERA_FRAMES}; or give {_KNOWN_CAMERA}")


def _rows_subset(extra, rows: np.ndarray, n: int):
    """First-pass points of the loaded frames ``rows`` (of ``n``), renumbered 0.."""
    if extra is None:
        return None
    where = np.full(n, -1)
    where[rows] = np.arange(rows.size)
    keep = where[extra[0]] >= 0
    return where[extra[0][keep]], extra[1][keep], extra[2][keep]


def _localization_points(localizations: Localizations | None, index: np.ndarray,
                         pixel_size_nm: float):
    """First-pass positions as (loaded frame, row, col) in pixel-index coordinates (the
    centre of pixel i is i), for the loaded frames ``index`` (0-based stack frames)."""
    if localizations is None or len(localizations) == 0:
        return None
    where = np.full(int(index.max()) + 2, -1)
    where[index] = np.arange(index.size)
    frame = np.asarray(localizations.frame, np.int64) - 1
    ok = (frame >= 0) & (frame <= index.max())
    ok[ok] = where[frame[ok]] >= 0
    ok &= np.isfinite(localizations.x) & np.isfinite(localizations.y)
    return (where[frame[ok]], localizations.y[ok] / pixel_size_nm - 0.5,
            localizations.x[ok] / pixel_size_nm - 0.5)


def _load(frames, limit: int, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` evenly spaced frames as float64 and their indices in the stack;
    constant frames (dropped frames, blank pages) are left out with a note, NaN is an
    error."""
    n = int(frames.shape[0])
    index = _every_index(n, limit)
    data = np.asarray(frames[index], dtype=np.float64)
    finite = np.isfinite(data).reshape(len(data), -1).all(axis=1)
    if not finite.all():
        raise LoczooError(f"frames contain NaN or infinite values (frame {index[~finite][0] + 1})"
                          "; expected finite pixel values in ADU")
    flat = data.reshape(len(data), -1)
    constant = flat.max(axis=1) == flat.min(axis=1)
    if constant.all():
        raise LoczooError("all frames are constant (every pixel the same value): no noise or "
                          "signal to estimate anything from")
    if constant.any():
        notes.append(f"left out {int(constant.sum())} constant frame(s) (first: frame "
                     f"{index[constant][0] + 1})")
    return data[~constant], index[~constant]


# ------------------------------------------------------------------------------ spots


@dataclass
class _Spots:
    """Fitted spots. ``theta`` [n, 8 + 2K]: the spot's x0, y0 (box pixels, pixel j covers
    [j, j + 1)), sigma (pixels; sigma_x when ``elliptical``), photons N (ADU), background B
    (ADU at the box centre) and its slopes Bx, By (ADU per pixel; real backgrounds are rarely
    flat over a box), sigma_y (a free parameter only when ``elliptical``, astigmatic 3D
    spots; otherwise a copy of sigma, the fit round and its parameter count 7 + ...), then the
    photons and the widths (elliptical: x widths, then y widths) of up to K neighbours whose
    positions ``nb_pos`` [n, K, 2] (x, y in box pixels) come from a first localization pass and
    stay fixed (``nb_on`` [n, K] marks real ones; those inside the box have their own widths,
    as PSF widths differ between emitters, those outside share the spot's). Per spot also
    its loaded-frame index, box corner (row, col), data, model, Jacobian [n, Q, 8 + 2K or 3K] and
    the pixels in the fit (``valid``: not claimed by an unmodelled neighbour)."""

    frame: np.ndarray
    corner: np.ndarray
    theta: np.ndarray
    boxes: np.ndarray
    model: np.ndarray
    jac: np.ndarray
    valid: np.ndarray
    nb_pos: np.ndarray
    nb_on: np.ndarray
    nearest: np.ndarray         # [n] distance (pixels) to the nearest unmodelled maximum
    size: int                   # box side P (Q = P * P)
    counts: np.ndarray          # detections per loaded frame (score >= count threshold)
    signal_mask: np.ndarray     # [frames, H, W] bool: near anything above the background
    sigma_px: float
    camera: CameraEstimate | None = None   # the noise model of a weighted fit
    first_pass: bool = False    # spots at first-pass localizations, neighbours in the model
    elliptical: bool = False    # sigma_x and sigma_y fitted apart (astigmatic 3D spots)
    # A known PSF's width range over its z range, ((lo_x, hi_x), (lo_y, hi_y)) in pixels, and
    # its width curve [M, 2] (sigma_x, sigma_y in pixels along z); None: not known.
    widths: tuple | None = None
    curve: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.frame.size)

    @property
    def n_params(self) -> np.ndarray:
        return _n_params(self.nb_pos, self.nb_on, self.size, self.elliptical)

    def select(self, keep) -> "_Spots":
        return replace(self, frame=self.frame[keep], corner=self.corner[keep],
                       theta=self.theta[keep], boxes=self.boxes[keep], model=self.model[keep],
                       jac=self.jac[keep], valid=self.valid[keep], nb_pos=self.nb_pos[keep],
                       nb_on=self.nb_on[keep], nearest=self.nearest[keep])


def _n_params(nb_pos: np.ndarray, nb_on: np.ndarray, size: int, elliptical: bool) -> np.ndarray:
    """Free parameters per spot: 7 (round) or 8 (elliptical), the neighbours' photons and
    the widths of those inside the box."""
    return (_NB - (not elliptical) + nb_on.sum(axis=1)
            + (1 + elliptical) * _own_width(nb_pos, nb_on, size).sum(axis=1))


def _robust_noise(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """1.4826 x MAD per frame of ``values`` [n, H, W] over the pixels where ``keep``."""
    out = np.empty(len(values))
    for i, (v, k) in enumerate(zip(values, keep)):
        v = v[k] if k.sum() >= 50 else v.ravel()
        out[i] = 1.4826 * np.median(np.abs(v - np.median(v)))
    return np.maximum(out, 1e-9)


def _detect(data: np.ndarray, sigma_px: float, low: float = 3.0):
    """Local maxima of a difference of Gaussians (PSF-sized minus background-sized) above
    ``low`` x its noise: frame, row, col, score; the score image; and the signal mask:
    pixels within 2.5 sigma of any pixel above 2.5 x noise. The noise is re-estimated away
    from the masked pixels (twice), so that dense frames, where most pixels carry signal, do
    not hide their own emitters behind an inflated noise level."""
    s1 = max(0.6, float(sigma_px))
    s2 = max(3.0, 3.0 * s1)
    response = (ndimage.gaussian_filter(data, (0, s1, s1))
                - ndimage.gaussian_filter(data, (0, s2, s2)))
    radius = max(2, int(math.ceil(2.5 * sigma_px)))
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = (yy * yy + xx * xx <= radius * radius)[None]
    mask = np.zeros(data.shape, bool)
    for _ in range(3):
        noise = _robust_noise(response, ~mask)
        score = response / noise[:, None, None]
        mask = ndimage.binary_dilation(score > 2.5, structure=disk)
    peak = (response == ndimage.maximum_filter(response, size=(1, 3, 3))) & (score > low)
    t, r, c = np.nonzero(peak)
    return t, r, c, score, mask


def _disks(extra, shape, radius: float) -> np.ndarray:
    """[frames, H, W] bool: pixels within ``radius`` of a first-pass localization (faint
    emitters the DoG mask misses still add structure to the background tiles)."""
    out = np.zeros(shape, bool)
    t, row, col = (np.asarray(v) for v in extra)
    reach = int(math.ceil(radius))
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            r = np.rint(row).astype(np.int64) + dy
            c = np.rint(col).astype(np.int64) + dx
            ok = ((r >= 0) & (r < shape[1]) & (c >= 0) & (c < shape[2])
                  & ((r - row) ** 2 + (c - col) ** 2 <= radius * radius))
            out[t[ok], r[ok], c[ok]] = True
    return out


def _psf_scale(data: np.ndarray, extra=None, elliptical: bool = False) -> float:
    """A first PSF width (pixels; the geometric mean of the two axes of elliptical spots) from
    a quick fit of bright spots in up to 60 frames, to size the detection filter, the fit
    boxes and the isolation radius of the real pass."""
    rows = _every_index(len(data), 60)
    spots = _find_and_fit(data[rows], 1.2, fit_threshold=8.0,
                          extra=_rows_subset(extra, rows, len(data)), elliptical=elliptical)
    if len(spots) < 5:
        return 1.2
    return float(np.clip(np.median(np.sqrt(spots.theta[:, 2] * spots.theta[:, 7])), 0.5, 4.0))


def _find_and_fit(data: np.ndarray, sigma_px: float, camera: CameraEstimate | None = None,
                  extra=None, fit_threshold: float = 6.0,
                  count_threshold: float = 5.0, elliptical: bool = False) -> _Spots:
    """Find spots and fit them (unweighted least squares without ``camera``).

    Without a first pass, a spot is a DoG maximum of score >= ``fit_threshold`` with no
    other maximum above 3 x noise within 4.5 sigma, and box pixels within 4 sigma of another
    maximum (and nearer to it than to the spot) are left out of the fit: the neighbour's tail
    would otherwise widen the spot and inflate its residuals.

    With first-pass localizations (``extra``: loaded frame, row, col in pixel-index
    coordinates), a spot is any localization with no other one within 2.5 sigma; up to 12
    neighbours around its box are fitted with it (photons and widths; positions as localized),
    which works in dense data where nothing is isolated. Either way only fits whose photons
    exceed ``fit_threshold`` standard errors are kept. ``elliptical``: sigma_x and sigma_y
    are fitted apart (astigmatic spots)."""
    sigma_px = float(np.clip(sigma_px, 0.5, 4.0))
    n, h, w = data.shape
    t, r, c, score_img, mask = _detect(data, sigma_px)
    score = score_img[t, r, c]
    counts = np.bincount(t[score >= count_threshold], minlength=n)
    hw = int(np.clip(math.ceil(3.0 * sigma_px), 3, 6))
    size = 2 * hw + 1
    if extra is not None and len(extra[0]):
        mask = mask | _disks(extra, data.shape, 4.0 * sigma_px)
        found = _from_localizations(extra, score_img.shape, hw, sigma_px)
    else:
        found = _from_maxima(t, r, c, score, (h, w), hw, sigma_px, fit_threshold)
    if found is None:
        q = size * size
        return _Spots(np.zeros(0, int), np.zeros((0, 2), int), np.zeros((0, _NB)),
                      np.zeros((0, q)), np.zeros((0, q)), np.zeros((0, q, 5)),
                      np.zeros((0, q), bool), np.zeros((0, 0, 2)), np.zeros((0, 0), bool),
                      np.zeros(0), size, counts, mask, sigma_px, camera, extra is not None,
                      elliptical)
    t_k, corner, start, nb_pos, nb_on, valid, nearest = found
    offsets = np.arange(size)
    rows = (corner[:, 0, None] + offsets)[:, :, None]
    cols = (corner[:, 1, None] + offsets)[:, None, :]
    # Boxes may reach past the frame edge (small frames would otherwise hold few spots): the
    # pixels outside are mirrored in, for the start values only, and left out of the fit.
    padded = np.pad(data, ((0, 0), (hw, hw), (hw, hw)), mode="reflect")
    boxes = padded[t_k[:, None, None], rows + hw, cols + hw].reshape(t_k.size, -1)
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).reshape(t_k.size, -1)
    valid = valid & inside
    theta = _initial(boxes, size, sigma_px, start, nb_pos, nb_on, elliptical)
    theta, model, jac, ok = _levenberg_marquardt(boxes, theta, size, camera, valid, nb_pos,
                                                 nb_on, elliptical=elliptical)
    ok &= _plausible(theta, size, start) & (valid.sum(axis=1) >= 0.6 * size * size)
    snr = _photon_snr(theta, boxes, model, jac, valid, camera,
                      _n_params(nb_pos, nb_on, size, elliptical))
    ok &= snr >= fit_threshold
    return _Spots(t_k[ok], corner[ok], theta[ok], boxes[ok], model[ok], jac[ok], valid[ok],
                  nb_pos[ok], nb_on[ok], nearest[ok], size, counts, mask, sigma_px, camera,
                  extra is not None and len(extra[0]) > 0, elliptical)


def _photon_snr(theta, boxes, model, jac, valid, camera, n_params) -> np.ndarray:
    """Fitted photons over their standard error (covariance of the weighted fit, scaled by
    the reduced chi^2 so that it also holds for the unweighted fit)."""
    weight = _weights(model, camera) * valid
    normal = np.einsum("nqk,nq,nql->nkl", jac, weight, jac)
    normal += np.eye(jac.shape[2]) * (np.diagonal(normal, axis1=1, axis2=2) == 0)[:, None, :]
    var_n = np.linalg.pinv(normal)[:, 3, 3]
    chi2 = (weight * (boxes - model) ** 2).sum(axis=1) / np.maximum(
        valid.sum(axis=1) - n_params, 1)
    return theta[:, 3] / np.sqrt(np.maximum(var_n * chi2, 1e-300))


def _subsample(count: int, most: int = _MAX_SPOTS) -> np.ndarray:
    index = np.arange(count)
    if count > most:
        index = np.sort(np.random.default_rng(0).choice(count, most, replace=False))
    return index


def _edge_margin(sigma_px: float) -> int:
    """Pixels kept between a spot and the frame edge: emitters just outside the frame are
    neither detected nor in a first pass, but their light reaches about 2 sigma in."""
    return int(math.ceil(2.0 * sigma_px))


def _from_maxima(t, r, c, score, shape, hw, sigma_px, fit_threshold):
    """Isolated DoG maxima: frame, box corner, start (x0, y0), no neighbours, the pixels
    free of unmodelled neighbours, and the distance to the nearest other maximum."""
    h, w = shape
    edge = _edge_margin(sigma_px)
    candidate = np.flatnonzero((score >= fit_threshold) & (r >= edge) & (r < h - edge)
                               & (c >= edge) & (c < w - edge))
    if candidate.size == 0:
        return None
    # Frames side by side, far apart, so that one k-d tree finds neighbours within a frame.
    points = np.stack([r, c + t * (w + 1000.0)], axis=1).astype(np.float64)
    tree = cKDTree(points)
    reach = hw * math.sqrt(2.0) + 4.0 * sigma_px + 1.0
    k = int(min(16, len(points)))
    dist, near = tree.query(points[candidate], k=k, distance_upper_bound=reach)
    dist, near = dist.reshape(candidate.size, k), near.reshape(candidate.size, k)
    found = np.isfinite(dist) & (near < len(points)) & (near != candidate[:, None])
    nearest = np.where(found, dist, np.inf).min(axis=1)
    keep = nearest > max(4.0, 4.5 * sigma_px)
    keep = np.flatnonzero(keep)[_subsample(int(keep.sum()))]
    if keep.size == 0:
        return None
    candidate, near, found, nearest = candidate[keep], near[keep], found[keep], nearest[keep]
    rel = np.where(found[..., None], points[np.minimum(near, len(points) - 1)]
                   - points[candidate][:, None, :], 1e6)        # [n, k, 2] (row, col)
    valid = _neighbour_free(rel, np.arange(-hw, hw + 1), sigma_px)
    corner = np.stack([r[candidate] - hw, c[candidate] - hw], axis=1)
    start = np.full((candidate.size, 2), hw + 0.5)
    m = candidate.size
    return (t[candidate], corner, start, np.zeros((m, 0, 2)), np.zeros((m, 0), bool), valid,
            nearest)


def _from_localizations(extra, shape, hw, sigma_px, most: int = 12):
    """Spots at first-pass localizations, fitted with their neighbours (see
    ``_find_and_fit``)."""
    t, row, col = (np.asarray(v) for v in extra)
    n, h, w = shape
    pr, pc = np.rint(row).astype(np.int64), np.rint(col).astype(np.int64)
    edge = _edge_margin(sigma_px)
    inside = (pr >= edge) & (pr < h - edge) & (pc >= edge) & (pc < w - edge)
    shift = w + 1000.0
    points = np.stack([row, col + t * shift], axis=1)
    tree = cKDTree(points)
    candidate = np.flatnonzero(inside)
    if candidate.size == 0:
        return None
    reach = hw * math.sqrt(2.0) + 3.0 * sigma_px + 1.0
    k = int(min(most + 1, len(points)))
    dist, near = tree.query(points[candidate], k=k, distance_upper_bound=reach)
    dist, near = dist.reshape(candidate.size, k), near.reshape(candidate.size, k)
    found = np.isfinite(dist) & (near < len(points)) & (near != candidate[:, None])
    nearest = np.where(found, dist, np.inf).min(axis=1)
    # Two emitters closer than 2.5 sigma cannot be told apart by a fit.
    keep = np.flatnonzero(nearest > 2.5 * sigma_px)
    keep = keep[_subsample(keep.size, _MAX_CROWDED_SPOTS)]
    if keep.size == 0:
        return None
    candidate, near, found = candidate[keep], near[keep], found[keep]
    corner = np.stack([pr[candidate] - hw, pc[candidate] - hw], axis=1)
    # Box coordinates: pixel j covers [j, j + 1), so pixel-index coordinate p is p + 0.5.
    start = np.stack([col[candidate] - corner[:, 1] + 0.5, row[candidate] - corner[:, 0] + 0.5],
                     axis=1)
    idx = np.minimum(near, len(points) - 1)
    nb_pos = np.stack([col[idx] - corner[:, 1, None] + 0.5, row[idx] - corner[:, 0, None] + 0.5],
                      axis=-1)
    # Neighbours more than 3 sigma outside the box add nothing to it.
    size = 2 * hw + 1
    margin = 3.0 * sigma_px
    near_box = ((nb_pos > -margin) & (nb_pos < size + margin)).all(axis=-1)
    nb_on = found & near_box
    nb_pos = np.where(nb_on[..., None], nb_pos, -1e3)
    valid = np.ones((candidate.size, size * size), bool)
    return (t[candidate], corner, start, nb_pos, nb_on, valid, np.full(candidate.size, np.inf))


def _neighbour_free(rel: np.ndarray, offsets: np.ndarray, sigma_px: float) -> np.ndarray:
    """[n, Q] bool: box pixels not within 4 sigma of a neighbour (``rel``: [n, k, 2] offsets
    from the spot, 1e6 for none) that is nearer to them than the spot is."""
    n = rel.shape[0]
    dy = offsets[None, None, :, None] - rel[..., 0][..., None, None]
    dx = offsets[None, None, None, :] - rel[..., 1][..., None, None]
    to_neighbour = np.hypot(dy, dx)                               # [n, k, P, P]
    to_spot = np.hypot(offsets[:, None], offsets[None, :])[None, None]
    claimed = ((to_neighbour < 4.0 * sigma_px) & (to_neighbour < to_spot)).any(axis=1)
    return ~claimed.reshape(n, offsets.size * offsets.size)


def _refit(spots: _Spots, camera: CameraEstimate) -> _Spots:
    """Refit the same spots weighted by the camera's noise model (more precise widths and
    photons than the unweighted fit used for the camera's residuals). Fits with neighbours
    are only tagged with the camera: refitting them would double the run time for a small
    gain in precision, and unweighted least squares is unbiased too."""
    if len(spots) == 0 or spots.first_pass:
        return replace(spots, camera=camera)
    start = spots.theta[:, :2].copy()
    theta, model, jac, ok = _levenberg_marquardt(spots.boxes, spots.theta.copy(), spots.size,
                                                 camera, spots.valid, spots.nb_pos,
                                                 spots.nb_on, elliptical=spots.elliptical)
    ok &= _plausible(theta, spots.size, start)
    return replace(spots, theta=theta, model=model, jac=jac, camera=camera).select(ok)


def _initial(boxes, size, sigma_px, start, nb_pos, nb_on, elliptical=False) -> np.ndarray:
    img = boxes.reshape(-1, size, size)
    border = np.concatenate([img[:, 0], img[:, -1], img[:, 1:-1, 0], img[:, 1:-1, -1]], axis=1)
    bg = np.percentile(border, 25, axis=1)
    peak_to_photons = 2.0 * math.pi * sigma_px * sigma_px
    n = len(boxes)

    def at(pos):  # box value at a position (clipped into the box) above the offset
        j = np.clip(np.floor(pos).astype(np.int64), 0, size - 1)
        return np.maximum(img[np.arange(n)[:, None], j[..., 1], j[..., 0]] - bg[:, None], 0.0)

    photons = np.maximum(at(start[:, None, :])[:, 0] * peak_to_photons, 1.0)
    theta = [start[:, 0], start[:, 1], np.full(n, sigma_px), photons, bg, np.zeros(n),
             np.zeros(n), np.full(n, sigma_px)]
    out = np.stack(theta, axis=1)
    if nb_pos.shape[1]:
        nb = np.where(nb_on, at(nb_pos) * peak_to_photons, 0.0)
        widths = [np.full(nb.shape, sigma_px)] * (2 if elliptical else 1)
        out = np.concatenate([out, nb, *widths], axis=1)
    # With positions and widths fixed the model is linear in photons and background: solve
    # that first, so that Levenberg-Marquardt starts near the optimum (overlapping neighbours
    # otherwise take dozens of iterations to share out their light).
    return _linear_solve(out, boxes, size, nb_pos, nb_on, elliptical)


def _linear_solve(theta, boxes, size, nb_pos, nb_on, elliptical=False,
                  valid=None) -> np.ndarray:
    """``theta`` with the photons and background (plane) of the spot and its neighbours solved
    by linear least squares (over the ``valid`` pixels, default all), positions and widths
    kept."""
    out = theta.copy()
    _, jac = _evaluate(out, size, nb_pos, nb_on, elliptical)
    k = nb_pos.shape[1]
    cols = np.r_[3, 4, 5, 6, _NB:_NB + k]
    a = jac[..., cols]
    if valid is not None:
        a = a * valid[..., None]
        boxes = boxes * valid
    normal = np.swapaxes(a, 1, 2) @ a
    normal += np.eye(cols.size) * (np.diagonal(normal, axis1=1, axis2=2).max(axis=1)[:, None, None]
                                   * 1e-9 + (np.diagonal(normal, axis1=1, axis2=2) == 0)[:, None])
    rhs = (np.swapaxes(a, 1, 2) @ boxes[..., None])[..., 0]
    try:
        solved = np.linalg.solve(normal, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return out
    ok = np.isfinite(solved).all(axis=1) & (solved[:, 0] > 0)
    out[np.ix_(ok, cols)] = solved[ok]
    out[:, _NB:_NB + k] = np.maximum(out[:, _NB:_NB + k], 0.0)
    return out


def gaussian_pixel_profile(centre: np.ndarray, sigma: np.ndarray, size: int):
    """Fraction of a 1D Gaussian in each pixel of the box (pixel j covers [j, j + 1)) and its
    derivatives by centre and sigma, each [..., size]: the pixel-integrated PSF of the spot
    fits here and of the bead fits of ``loczoo.smlm.psf``."""
    edges = np.arange(size + 1, dtype=np.float64) - centre[..., None]
    s = sigma[..., None]
    cdf = 0.5 * erf(edges / (_SQRT2 * s))
    dens = np.exp(-0.5 * (edges / s) ** 2)
    value = cdf[..., 1:] - cdf[..., :-1]
    d_centre = (dens[..., :-1] - dens[..., 1:]) / (_SQRT2PI * s)
    d_sigma = (edges[..., :-1] * dens[..., :-1] - edges[..., 1:] * dens[..., 1:]) / (
        _SQRT2PI * s * s)
    return value, d_centre, d_sigma


def _evaluate(theta: np.ndarray, size: int, nb_pos: np.ndarray, nb_on: np.ndarray,
              elliptical: bool = False):
    """Integrated Gaussians (the spot, plus its fixed-position neighbours) + a plane, per box
    [n, Q], and the Jacobian [n, Q, 8 + 2K] (elliptical: 8 + 3K). Round spots (not
    ``elliptical``) use sigma for both axes, and their sigma_y column is zero (the parameter
    stays put)."""
    x0, y0, s, photons, bg, bg_x, bg_y, s_y = theta[:, :_NB].T
    if not elliptical:
        s_y = s
    n, k = theta.shape[0], nb_pos.shape[1]
    ex, ex_c, ex_s = gaussian_pixel_profile(x0, s, size)
    ey, ey_c, ey_s = gaussian_pixel_profile(y0, s_y, size)
    p = photons[:, None, None]
    shape = ey[:, :, None] * ex[:, None, :]
    jac = np.empty((n, size, size, _NB + (3 if elliptical else 2) * k))
    offset = np.arange(size) + 0.5 - size / 2.0
    jac[..., 0] = p * ey[:, :, None] * ex_c[:, None, :]
    jac[..., 1] = p * ey_c[:, :, None] * ex[:, None, :]
    if elliptical:
        jac[..., 2] = p * ey[:, :, None] * ex_s[:, None, :]
        jac[..., 7] = p * ey_s[:, :, None] * ex[:, None, :]
    else:
        jac[..., 2] = p * (ey_s[:, :, None] * ex[:, None, :]
                           + ey[:, :, None] * ex_s[:, None, :])
        jac[..., 7] = 0.0
    jac[..., 3] = shape
    jac[..., 4] = 1.0
    jac[..., 5] = offset[None, None, :]
    jac[..., 6] = offset[None, :, None]
    model = (bg[:, None, None] + bg_x[:, None, None] * offset[None, None, :]
             + bg_y[:, None, None] * offset[None, :, None] + p * shape)
    if k:
        own = _own_width(nb_pos, nb_on, size)
        nk = theta[:, _NB:_NB + k]
        sk = np.where(own, theta[:, _NB + k:_NB + 2 * k], s[:, None])
        sk_y = np.where(own, theta[:, _NB + 2 * k:], s_y[:, None]) if elliptical else sk
        nx, _, nx_s = gaussian_pixel_profile(nb_pos[..., 0], sk, size)          # [n, k, P]
        ny, _, ny_s = gaussian_pixel_profile(nb_pos[..., 1], sk_y, size)
        on = nb_on[..., None]
        nx, nx_s = np.where(on, nx, 0.0), np.where(on, nx_s, 0.0)
        model = model + np.swapaxes(ny * nk[..., None], 1, 2) @ nx
        jac[..., _NB:_NB + k] = np.einsum("nki,nkj->nijk", ny, nx)
        d_y = np.einsum("nki,nkj->nijk", ny_s * nk[..., None], nx)
        d_x = np.einsum("nki,nkj->nijk", ny * nk[..., None], nx_s)
        inside = own[:, None, None, :]
        # Neighbours outside the box share the spot's width (their own would be guesswork).
        if elliptical:
            jac[..., _NB + k:_NB + 2 * k] = np.where(inside, d_x, 0.0)
            jac[..., _NB + 2 * k:] = np.where(inside, d_y, 0.0)
            jac[..., 2] += np.where(inside, 0.0, d_x).sum(axis=-1)
            jac[..., 7] += np.where(inside, 0.0, d_y).sum(axis=-1)
        else:
            d_width = d_x + d_y
            jac[..., _NB + k:] = np.where(inside, d_width, 0.0)
            jac[..., 2] += np.where(inside, 0.0, d_width).sum(axis=-1)
    return model.reshape(n, -1), jac.reshape(n, size * size, jac.shape[-1])


def _own_width(nb_pos: np.ndarray, nb_on: np.ndarray, size: int) -> np.ndarray:
    """[n, K] bool: neighbours centred inside the box, which get a width of their own."""
    return nb_on & ((nb_pos >= 0.0) & (nb_pos <= size)).all(axis=-1)


def _weights(model: np.ndarray, camera: CameraEstimate | None) -> np.ndarray:
    if camera is None:
        return np.ones_like(model)
    floor = 0.05 * camera.variance_slope + 1e-6
    return 1.0 / np.maximum(camera.variance(model), floor)


def _clamp(theta: np.ndarray, size: int, k: int) -> np.ndarray:
    theta[:, 0] = np.clip(theta[:, 0], 0.0, size)
    theta[:, 1] = np.clip(theta[:, 1], 0.0, size)
    theta[:, 2] = np.clip(theta[:, 2], 0.25, 0.5 * size)
    theta[:, 7] = np.clip(theta[:, 7], 0.25, 0.5 * size)
    theta[:, 3] = np.maximum(theta[:, 3], 1e-3)
    theta[:, _NB:_NB + k] = np.maximum(theta[:, _NB:_NB + k], 0.0)
    theta[:, _NB + k:] = np.clip(theta[:, _NB + k:], 0.25, 0.5 * size)
    return theta


def _levenberg_marquardt(boxes: np.ndarray, theta: np.ndarray, size: int,
                         camera: CameraEstimate | None, valid: np.ndarray,
                         nb_pos: np.ndarray, nb_on: np.ndarray, iterations: int = 40,
                         elliptical: bool = False):
    """Vectorised Levenberg-Marquardt over all boxes. Weights (1 / variance of the model,
    not of the data, so that the fit stays unbiased) are recomputed every iteration. Round
    fits (not ``elliptical``) return sigma_y = sigma."""
    k = nb_pos.shape[1]
    theta = _clamp(theta.astype(np.float64), size, k)
    model, jac = _evaluate(theta, size, nb_pos, nb_on, elliptical)
    valid = valid.astype(np.float64)
    weight = _weights(model, camera) * valid
    cost = (weight * (boxes - model) ** 2).sum(axis=1)
    lam = np.full(len(theta), 1e-2)
    active = np.ones(len(theta), bool)
    eye = np.eye(theta.shape[1])
    # Absent neighbours have all-zero Jacobian columns: a unit diagonal keeps them put.
    fixed = np.zeros((len(theta), _NB), bool)
    fixed[:, 7] = not elliptical   # round: sigma_y is not a parameter
    free = _own_width(nb_pos, nb_on, size)
    absent = np.concatenate([fixed, ~nb_on] + [~free] * (2 if elliptical else 1), axis=1)
    for _ in range(iterations):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        j, wgt = jac[idx], weight[idx]
        jw_t = np.swapaxes(j * wgt[..., None], 1, 2)
        normal = jw_t @ j
        grad = (jw_t @ (boxes[idx] - model[idx])[..., None])[..., 0]
        diag = np.diagonal(normal, axis1=1, axis2=2)
        # A neighbour fitted to 0 photons leaves its width undetermined: same treatment.
        flat = diag <= 1e-12 * diag.max(axis=1, keepdims=True)
        damped = normal + eye * (lam[idx, None] * diag + (absent[idx] | flat)
                                 + 1e-12)[:, None, :]
        try:
            step = np.linalg.solve(damped, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack([np.linalg.lstsq(a, b, rcond=None)[0]
                             for a, b in zip(damped, grad)])
        trial = _clamp(theta[idx] + step, size, k)
        t_model, t_jac = _evaluate(trial, size, nb_pos[idx], nb_on[idx], elliptical)
        t_weight = _weights(t_model, camera) * valid[idx]
        t_cost = (t_weight * (boxes[idx] - t_model) ** 2).sum(axis=1)
        better = np.isfinite(t_cost) & (t_cost <= cost[idx])
        good = idx[better]
        rel = np.abs(step[better, :5]) / (np.abs(theta[good, :5]) + 1e-3)
        drop = (cost[good] - t_cost[better]) / np.maximum(cost[good], 1e-12)
        theta[good], model[good], jac[good] = trial[better], t_model[better], t_jac[better]
        cost[good], weight[good] = t_cost[better], t_weight[better]
        lam[good] = np.maximum(lam[good] * 0.3, 1e-7)
        lam[idx[~better]] *= 10.0
        active[good[(rel.max(axis=1) < 1e-6) | (drop < 1e-9)]] = False
        active[idx[~better][lam[idx[~better]] > 1e8]] = False
    if not elliptical:
        theta[:, 7] = theta[:, 2]
    ok = np.isfinite(theta).all(axis=1) & np.isfinite(cost)
    return theta, model, jac, ok


def _plausible(theta: np.ndarray, size: int, start: np.ndarray) -> np.ndarray:
    """The fit stayed with its spot (within 1.5 px of the start), a sane width, photons."""
    return ((np.abs(theta[:, 0] - start[:, 0]) < 1.5) & (np.abs(theta[:, 1] - start[:, 1]) < 1.5)
            & (theta[:, 2] > 0.3) & (theta[:, 2] < 0.35 * size) & (theta[:, 7] > 0.3)
            & (theta[:, 7] < 0.35 * size) & (theta[:, 3] > 0))


# ------------------------------------------------------------------------------ camera


def _clipped_variance(values: np.ndarray) -> tuple[float, int]:
    """Variance of zero-mean noise samples, iteratively clipped at 4 robust sigma (what lies
    beyond is structure: emitters, neighbours, hot pixels), corrected for the clipped tails
    of a Gaussian (0.1 %)."""
    values = np.asarray(values, np.float64)
    scale = 1.4826 * np.median(np.abs(values))
    if not scale > 0:
        scale = values.std()
    if not scale > 0:
        return 0.0, int(values.size)
    kept = values
    for _ in range(4):
        kept = values[np.abs(values) < _CLIP * scale]
        if kept.size < 10:
            break
        new = math.sqrt(np.mean(kept * kept) / 0.99893)
        if abs(new - scale) < 1e-4 * scale:
            scale = new
            break
        scale = new
    return float(np.mean(kept * kept) / 0.99893), int(kept.size)


def _quantile_bins(key: np.ndarray, most: int, least: int) -> list[np.ndarray]:
    """Index sets of up to ``most`` bins of equal count (at least ``least``) along ``key``."""
    n = key.size
    k = int(min(most, n // max(least, 1)))
    if k < 1:
        return []
    order = np.argsort(key, kind="stable")
    return [order[i * n // k:(i + 1) * n // k] for i in range(k)]


def _width_bins(key: np.ndarray, most: int, least: int) -> list[np.ndarray]:
    """Index sets of up to ``most`` bins of equal width along ``key`` (1st to 99.5th
    percentile), neighbours merged until each has ``least`` samples. Most spot pixels lie
    near the background; equal widths give the few bright ones, which carry the slope,
    bins of their own."""
    if key.size < least:
        return []
    lo, hi = np.percentile(key, [1.0, 99.5])
    if not hi > lo:
        return [np.arange(key.size)]
    edges = np.linspace(lo, hi, most + 1)[1:-1]
    which = np.searchsorted(edges, key)
    order = np.argsort(which, kind="stable")
    counts = np.bincount(which, minlength=most)
    bins, current, size = [], [], 0
    start = 0
    for count in counts:
        current.append(order[start:start + count])
        size += count
        start += count
        if size >= least:
            bins.append(np.concatenate(current))
            current, size = [], 0
    if current and size:
        if bins:
            bins[-1] = np.concatenate([bins[-1], *current])
        else:
            bins.append(np.concatenate(current))
    return bins


def _tile_points(data: np.ndarray, mask: np.ndarray):
    """(level, variance, count) of background noise per bin of tile level, and the tile levels
    with their frame index. The contrasts of half of a tile's 2 x 2 blocks (a checkerboard) are
    paired with the level (mean) of the other half, and the other way round."""
    n, h, w = data.shape
    h2, w2 = (h // 2) // _TILE * _TILE, (w // 2) // _TILE * _TILE
    if h2 == 0 or w2 == 0:
        return np.zeros((0, 3)), np.zeros(0), np.zeros(0, int)
    d = data[:, :2 * h2, :2 * w2]
    p00, p01, p10, p11 = d[:, 0::2, 0::2], d[:, 0::2, 1::2], d[:, 1::2, 0::2], d[:, 1::2, 1::2]
    contrast = (p00 - p01 - p10 + p11) / 2.0
    mean = (p00 + p01 + p10 + p11) / 4.0
    m = mask[:, :2 * h2, :2 * w2].reshape(n, h2, 2, w2, 2).any(axis=(2, 4))
    parity = (np.add.outer(np.arange(h2), np.arange(w2)) % 2).astype(bool)

    def tiles(a):  # [n, h2, w2] -> [n, th, tw, TILE * TILE]
        return (a.reshape(n, h2 // _TILE, _TILE, w2 // _TILE, _TILE)
                .transpose(0, 1, 3, 2, 4).reshape(n, h2 // _TILE, w2 // _TILE, -1))

    con, mea, bad = tiles(contrast), tiles(mean), tiles(m)
    par = tiles(np.broadcast_to(parity, (n, h2, w2)))
    frame = np.broadcast_to(np.arange(n)[:, None, None], con.shape[:3])
    levels, samples, inv_pixels, tile_levels, tile_frames = [], [], [], [], []
    half = _TILE * _TILE // 2
    for level_parity in (False, True):
        lev_sel = (par == level_parity) & ~bad
        con_sel = (par != level_parity) & ~bad
        n_lev, n_con = lev_sel.sum(axis=-1), con_sel.sum(axis=-1)
        level = np.where(lev_sel, mea, 0.0).sum(axis=-1) / np.maximum(n_lev, 1)
        # Flatness: on a flat background the block means scatter by noise / 2 (a contrast's
        # noise / 2); emitter structure the mask missed (dense clusters, which a band-pass
        # filter sees as background) makes them scatter far more. The noise for this test
        # comes from the level blocks' own contrasts: testing against the contrasts that are
        # measured would favour tiles whose noise came out high.
        spread = (np.where(lev_sel, (mea - level[..., None]) ** 2, 0.0).sum(axis=-1)
                  / np.maximum(n_lev - 1, 1))
        noise = np.where(lev_sel, con * con, 0.0).sum(axis=-1) / np.maximum(n_lev, 1) / 4.0
        usable = ((n_lev >= half * 3 // 4) & (n_con >= half * 3 // 4)
                  & (spread <= _FLAT_F * noise))
        level = level[usable]
        vals = con[usable]
        sel = con_sel[usable]
        counts = sel.sum(axis=-1)
        levels.append(np.repeat(level, counts))
        samples.append(vals[sel])
        # Each level is the mean of 4 n_lev pixels: its own noise variance is var / (4 n_lev).
        inv_pixels.append(np.repeat(1.0 / (4.0 * n_lev[usable]), counts))
        tile_levels.append(level)
        tile_frames.append(frame[usable])
    level = np.concatenate(levels)
    sample = np.concatenate(samples)
    inv_pix = np.concatenate(inv_pixels)
    points = []
    # Bins of 3000 samples (2.6 % precision) where there are enough, never below 400.
    for index in _quantile_bins(level, 24, int(np.clip(level.size // 24, 400, 3000))):
        var, kept = _clipped_variance(sample[index])
        points.append((float(np.mean(level[index])), var, kept,
                       var * float(np.mean(inv_pix[index]))))
    points = np.array(points).reshape(-1, 4)
    if len(points) > 1:
        # Binning by a noisy level spreads the bins wider than the true levels (regression
        # dilution, which flattens the slope): shrink the bin levels towards their mean by
        # the fraction of the level variance that is noise.
        centre = np.average(points[:, 0], weights=points[:, 2])
        spread = float(np.var(level))
        noise = float(np.average(points[:, 3], weights=points[:, 2]))
        factor = max(0.0, 1.0 - noise / spread) if spread > 0 else 0.0
        points[:, 0] = centre + (points[:, 0] - centre) * factor
    return (points[:, :3], np.concatenate(tile_levels), np.concatenate(tile_frames))


def _tile_fraction(tile_levels: np.ndarray, shape) -> float:
    """The fraction of all tile halves that passed as flat background."""
    n, h, w = shape
    possible = 2 * n * ((h // 2) // _TILE) * ((w // 2) // _TILE)
    return tile_levels.size / max(possible, 1)


@dataclass
class _Residuals:
    """Per pixel of each fitted spot: residual r, model mu, and the features u, w with
    E[r^2] = s u + c w when the noise variance is s mu + c. With H the hat matrix of the
    (unweighted) fit, E[r r^T] = (I - H) V (I - H), so E[r_i^2] = (1 - 2 h_i) v_i
    + J_i A (J^T V J) A J_i^T (A = (J^T J)^-1, h_i = J_i A J_i^T): linear in (s, c) with
    u = (1 - 2h) mu + J A (J^T diag(mu) J) A J^T and w = 1 - h. Fitted parameters absorb part
    of the noise (most at the spot centre); this puts it back exactly to first order."""

    r: np.ndarray
    mu: np.ndarray
    u: np.ndarray
    w: np.ndarray
    valid: np.ndarray
    n_params: np.ndarray

    def select(self, keep) -> "_Residuals":
        return _Residuals(self.r[keep], self.mu[keep], self.u[keep], self.w[keep],
                          self.valid[keep], self.n_params[keep])


def _residuals(spots: _Spots) -> _Residuals:
    valid = spots.valid & np.isfinite(spots.model)
    jac = spots.jac * valid[..., None]
    mu = spots.model
    normal = np.einsum("nqk,nql->nkl", jac, jac)
    inv = np.linalg.pinv(normal)
    lev = np.einsum("nqk,nkl,nql->nq", jac, inv, jac)
    s_mu = np.einsum("nqk,nq,nql->nkl", jac, mu, jac)
    u = (1.0 - 2.0 * lev) * mu + np.einsum("nqk,nkl,nql->nq", jac, inv @ s_mu @ inv, jac)
    w = 1.0 - lev
    valid = valid & np.isfinite(u) & np.isfinite(w) & (w > 0.2)
    return _Residuals(spots.boxes - mu, mu, u, w, valid, spots.n_params)


def _spot_points(res: _Residuals) -> np.ndarray:
    """(u, w, variance, count) per bin of model value (sigma-clipped residual variance)."""
    if res.r.size == 0 or not res.valid.any():
        return np.zeros((0, 4))
    v = res.valid
    key, u, w, r = res.mu[v], res.u[v], res.w[v], res.r[v]
    points = []
    for index in _width_bins(key, 16, 300):
        var, _ = _clipped_variance(r[index])
        points.append((float(np.mean(u[index])), float(np.mean(w[index])), var, index.size))
    return np.array(points).reshape(-1, 4)


def _spot_z(res: _Residuals, slope: float, intercept: float) -> np.ndarray:
    """Per spot, how far its residuals exceed the noise model var = slope mu + intercept: the
    Wilson-Hilferty normal score of sum r^2 / sum E[r^2] (about N(0, 1) for a clean spot;
    an unresolved neighbour or a misfit makes it large)."""
    expected = np.maximum(slope * res.u + intercept * res.w, 1e-6 * max(slope, 1e-12))
    expected = np.where(res.valid, expected, 0.0)
    total = expected.sum(axis=1)
    ratio = np.where(res.valid, res.r * res.r, 0.0).sum(axis=1) / np.maximum(total, 1e-300)
    dof = np.maximum(total ** 2 / np.maximum((expected ** 2).sum(axis=1), 1e-300)
                     - res.n_params, 2.0)
    a = 2.0 / (9.0 * dof)
    return (np.cbrt(ratio) - (1.0 - a)) / np.sqrt(a)


def _spot_slope(res: _Residuals, level: float, variance: float,
                quantile: float = 0.3) -> float | None:
    """The slope s of the line through (level, variance) under which the ``quantile`` of the
    spots' normal scores is that of N(0, 1): a fit to the best-fitting 30 % of the spots,
    which tolerates most spots having a neighbour or a misfit."""
    if len(res.r) < 20:
        return None
    target = -0.5244  # N(0, 1) quantile at 0.3

    def excess(log_s):
        s_ = math.exp(log_s)
        return float(np.quantile(_spot_z(res, s_, variance - s_ * level), quantile)) - target

    lo, hi = math.log(1e-4), math.log(1e5)
    f_lo, f_hi = excess(lo), excess(hi)
    if not (f_lo > 0 > f_hi):
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def _fit_line(x: np.ndarray, v: np.ndarray, count: np.ndarray):
    """Robust weighted fit v = s x1 + c x2. Each point's relative error is sqrt(2 / n) plus
    a 2 % floor; Tukey weights on standardised residuals downweight bins that structure has
    inflated. Returns (s, c, r2, slope_rel_error, weights, reduced chi^2)."""
    rel = np.sqrt(2.0 / np.maximum(count, 1) + _REL_FLOOR ** 2)
    base = 1.0 / (np.maximum(v, 1e-12) * rel) ** 2
    weight = base.copy()
    beta = np.zeros(2)
    for _ in range(20):
        sw = np.sqrt(weight)
        beta_new, *_ = np.linalg.lstsq(x * sw[:, None], v * sw, rcond=None)
        pred = x @ beta_new
        z = (v - pred) / (np.maximum(np.abs(pred), 1e-12) * rel)
        scale = max(1.0, 1.4826 * float(np.median(np.abs(z[weight > 0]))))
        u = z / (4.685 * scale)
        weight = base * np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)
        if np.allclose(beta_new, beta, rtol=1e-7, atol=0.0):
            beta = beta_new
            break
        beta = beta_new
    pred = x @ beta
    used = weight > 0
    # R^2 over the bins in use, each bin counting once by its relative residual (the fit's
    # weights would let a few dense bins at one level decide).
    rel_w = np.where(used, 1.0 / np.maximum(pred, 1e-12) ** 2, 0.0)
    mean_v = (rel_w * v).sum() / max(rel_w.sum(), 1e-300)
    ss_res = (rel_w * (v - pred) ** 2).sum()
    ss_tot = (rel_w * (v - mean_v) ** 2).sum()
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    dof = max(int(used.sum()) - 2, 1)
    chi2 = float((weight * ((v - pred) ** 2)).sum()) / dof
    try:
        cov = np.linalg.inv((x * weight[:, None]).T @ x) * max(1.0, chi2)
        slope_err = math.sqrt(max(cov[0, 0], 0.0)) / abs(beta[0]) if beta[0] != 0 else math.inf
    except np.linalg.LinAlgError:
        slope_err = math.inf
    return float(beta[0]), float(beta[1]), float(r2), float(slope_err), weight, chi2


def _camera_from(data: np.ndarray, spots: _Spots, excess_noise_factor: float,
                 read_noise_adu: float | None, notes: list[str]) -> CameraEstimate:
    """The mean-variance line from background tiles and spot residuals.

    1. Tiles alone give the noise at their (weighted) mean level, precisely, and a slope if
       their levels differ enough. 2. A first slope from the spots through that point: the
       one under which the best-fitting 30 % of the spots fit as well as pure noise should
       (robust to most spots having a neighbour). 3. Three times: spots that fit badly under
       the current line or look like two emitters (``_elongation_chi2``) are dropped and the
       line is fitted to the tiles and the remaining spots' residuals together.
    Raises when the spots decide the slope but most of them do not fit as single emitters
    (a crowded sample without a first localization pass)."""
    if not excess_noise_factor >= 1.0:
        raise LoczooError(f"excess_noise_factor must be >= 1 (2 for EM gain), got "
                          f"{excess_noise_factor}")
    if read_noise_adu is not None and not read_noise_adu >= 0:
        raise LoczooError(f"read_noise_adu must be >= 0, got {read_noise_adu}")
    _enough_for_camera(data)
    mask = (spots.signal_mask if spots.signal_mask.shape == data.shape
            else _detect(data, spots.sigma_px)[4])
    tiles, tile_levels, _ = _tile_points(data, mask)
    notes = list(notes)
    coverage = _tile_fraction(tile_levels, data.shape)
    if coverage < _MIN_TILE_FRACTION and not spots.first_pass:
        # Spots found by the DoG alone in a field this crowded have undetected neighbours
        # (10-30 % too steep in simulations, without any sign in their fits).
        raise LoczooError(
            f"cannot measure the camera gain: background regions cover only {100 * coverage:.1f}"
            " % of the frames (a crowded sample), too little to measure the noise on, and "
            "spots found without a first pass are not reliable there; pass a first "
            f"localization pass (localizations) or {_KNOWN_CAMERA}")
    if 0 < coverage < _MIN_TILE_FRACTION:
        # The few flat patches of a crowded sample read noisier than the line (by 10-20 % in
        # simulations, even with every emitter masked): leave the noise to the spots.
        notes.append(f"background regions cover only {100 * coverage:.1f} % of the frames "
                     "(crowded): noise measured on the spots only")
        tiles = np.zeros((0, 3))
    x_t = np.stack([tiles[:, 0], np.ones(len(tiles))], axis=1)
    # A neighbour 5-7 sigma away still lights the side of the box that faces it: where there
    # are enough spots without any, only those go into the noise measurement.
    far = spots.nearest > 7.0 * spots.sigma_px
    cand = spots.select(far) if far.sum() >= 100 else spots
    res = _residuals(cand)
    anchor, tile_slope = _tile_anchor(tiles)
    if anchor is None and len(cand) >= 20:
        # No clean background: the spots' outer pixels (within 10 % of their peak) instead.
        peak = cand.theta[:, 3] / (2.0 * math.pi * cand.theta[:, 2] * cand.theta[:, 7])
        outer = res.valid & (res.mu - cand.theta[:, 4:5] < 0.1 * peak[:, None])
        if outer.sum() >= 300:
            var, _ = _clipped_variance(res.r[outer])
            anchor = (float(res.mu[outer].mean()), var / float(res.w[outer].mean()))
    line = None
    if anchor is not None and anchor[1] > 0:
        first = _spot_slope(res, *anchor)
        if first is not None:
            line = (first, anchor[1] - first * anchor[0])
    keep = np.ones(len(cand), bool)
    for _ in range(3):
        if line is not None and len(cand):
            keep = _single_emitters(cand, res, *line)
            if keep.sum() < 10:
                keep = np.ones(len(cand), bool)
        spot_pts = _spot_points(res.select(keep))
        x = np.concatenate([x_t, spot_pts[:, :2]])
        v = np.concatenate([tiles[:, 1], spot_pts[:, 2]])
        count = np.concatenate([tiles[:, 2], spot_pts[:, 3]])
        if len(v) < 3:
            raise LoczooError("cannot estimate the camera: too few background regions and "
                              "isolated spots to measure the noise at different levels; pass "
                              f"a first localization pass (localizations) or {_KNOWN_CAMERA}")
        fit = _fit_line(x, v, count)
        if not (np.isfinite(fit[0]) and fit[0] > 0):
            raise LoczooError("cannot estimate the camera gain: the pixel variance does not "
                              "grow with the mean (no shot noise visible; is this raw camera "
                              f"data in ADU?); or give {_KNOWN_CAMERA}")
        line = fit[:2]
    slope, intercept, r2, slope_err, weight, chi2 = fit
    # Consistency of the spots with the line: most should fit as single emitters, and the
    # best tenth should fit like pure noise does (normal score about -1.3). Crowded samples
    # fail one or the other: nothing fits (all scores high), or the line was pulled steep
    # enough for the contaminated spots to pass (the best ones then fit "too well").
    clean, z10 = 1.0, -1.28
    if len(cand):
        clean = float(_single_emitters(cand, res, slope, intercept).mean())
        z10 = float(np.percentile(_spot_z(res, slope, intercept), 10))
    if (clean < 0.5 or not -2.0 < z10 < -0.5) and len(spot_pts):
        if tile_slope is None:
            raise LoczooError(
                f"cannot measure the camera gain: the spots do not fit as single emitters "
                f"({100 * clean:.0f} % do; a crowded sample?) and the background does not vary "
                "enough to measure it instead; pass a first localization pass "
                f"(localizations) or {_KNOWN_CAMERA}")
        notes.append(f"only {100 * clean:.0f} % of the spots fit as single emitters: camera "
                     "gain from background regions only")
        spot_pts = np.zeros((0, 4))
        x, v, count = x_t, tiles[:, 1], tiles[:, 2]
        slope, intercept, r2, slope_err, weight, chi2 = _fit_line(x, v, count)
    if tile_slope is not None and abs(tile_slope / slope - 1.0) > 0.15:
        notes.append(f"background regions alone give {tile_slope:.3g} ADU^2/ADU, spots and "
                     f"background together {slope:.3g}: a PSF far from Gaussian or "
                     "structured background; trust the camera estimate less")
    if chi2 > 4.0:
        notes.append(f"the noise does not follow one line within its errors (reduced chi^2 "
                     f"{chi2:.1f}): structured background or a non-Gaussian PSF")
    return _make_camera(slope, intercept, r2, slope_err, weight, x, tiles, spot_pts,
                        tile_levels, spots, excess_noise_factor, read_noise_adu, len(data),
                        notes)


def _tile_anchor(tiles: np.ndarray):
    """The noise (level, variance) at the tiles' weighted mean level, and the tiles' own
    slope when their levels span enough of a range to measure it (else None)."""
    if len(tiles) == 0:
        return None, None
    if len(tiles) < 3:
        level = float(np.average(tiles[:, 0], weights=tiles[:, 2]))
        return (level, float(np.average(tiles[:, 1], weights=tiles[:, 2]))), None
    x_t = np.stack([tiles[:, 0], np.ones(len(tiles))], axis=1)
    s_t, c_t, _, err_t, w_t, _ = _fit_line(x_t, tiles[:, 1], tiles[:, 2])
    level = float((w_t * tiles[:, 0]).sum() / max(w_t.sum(), 1e-300))
    anchor = (level, s_t * level + c_t)
    span = float(np.ptp(tiles[w_t > 0, 0])) if (w_t > 0).any() else 0.0
    usable = err_t < 0.1 and s_t > 0 and s_t * span > 0.3 * anchor[1]
    return anchor, (s_t if usable else None)


def _single_emitters(spots: _Spots, res: _Residuals, slope: float,
                     intercept: float) -> np.ndarray:
    """Spots whose residuals fit the noise line (normal score < 2.5), that do not look
    like two emitters (elongation chi^2 below its 99 % point) and, fitted as elliptical
    spots, have plausible widths (``_width_ok``)."""
    var = np.maximum(slope * spots.model + intercept, 1e-6 * slope)
    return ((_spot_z(res, slope, intercept) < 3.5) & (_elongation_chi2(spots, var) < 9.21)
            & _width_ok(spots))


def _width_ok(spots: _Spots) -> np.ndarray:
    """Elliptical fits whose widths a single emitter can have: within a known PSF's widths
    over its z range (+/- 15 %), else each 0.5-4 px with an aspect up to 3. Round fits: all
    (their width range is the PSF estimate itself)."""
    if not spots.elliptical:
        return np.ones(len(spots), bool)
    sx, sy = spots.theta[:, 2], spots.theta[:, 7]
    if spots.widths is not None:
        (lo_x, hi_x), (lo_y, hi_y) = spots.widths
        lo, hi = 1.0 - _WIDTH_MARGIN, 1.0 + _WIDTH_MARGIN
        return ((sx >= lo * lo_x) & (sx <= hi * hi_x) & (sy >= lo * lo_y) & (sy <= hi * hi_y))
    narrow, wide = np.minimum(sx, sy), np.maximum(sx, sy)
    return (narrow >= 0.5) & (wide <= 4.0) & (wide <= _MAX_ASPECT * narrow)


def _on_psf(spots: _Spots) -> np.ndarray:
    """``theta`` with each spot's widths moved to the nearest point of the known PSF's width
    curve and its photons and background solved again (unchanged without a known PSF)."""
    if spots.curve is None or len(spots) == 0:
        return spots.theta
    dist = ((spots.theta[:, None, 2] - spots.curve[None, :, 0]) ** 2
            + (spots.theta[:, None, 7] - spots.curve[None, :, 1]) ** 2)
    near = spots.curve[np.argmin(dist, axis=1)]
    theta = spots.theta.copy()
    theta[:, 2], theta[:, 7] = near[:, 0], near[:, 1]
    return _linear_solve(theta, spots.boxes, spots.size, spots.nb_pos, spots.nb_on, True,
                         spots.valid.astype(np.float64))


def _make_camera(slope, intercept, r2, slope_err, weight, x, tiles, spot_pts, tile_levels,
                 spots, excess_noise_factor, read_noise_adu, n_frames, notes) -> CameraEstimate:
    notes = list(notes)
    read_var = 0.0 if read_noise_adu is None else float(read_noise_adu) ** 2
    baseline = (read_var - intercept) / slope
    # Background cannot be negative: the darkest background seen bounds the baseline above.
    if tile_levels.size >= 20:
        upper = float(np.percentile(tile_levels, 1))
    elif len(spots) >= 5:
        upper = float(np.percentile(spots.theta[:, 4], 5))
    else:
        upper = math.inf
    used = weight > 0
    n_tiles = int(used[:len(tiles)].sum())
    n_spot = int(used[len(tiles):].sum())
    means = x[used, 0] / np.maximum(x[used, 1], 1e-9)
    lo, hi = (float(means.min()), float(means.max())) if means.size else (math.nan, math.nan)
    if n_frames < 50:
        notes.append(f"only {n_frames} frames for the camera estimate; more give a "
                     "steadier gain")
    if slope_err > 0.1:
        notes.append(f"camera gain uncertain (+/- {100 * slope_err:.0f} %): the noise was "
                     f"measured over a narrow range of levels ({lo:.0f}-{hi:.0f} ADU)")
    if n_tiles == 0:
        notes.append("no clean background regions: the camera gain rests on spot-fit "
                     "residuals alone (assumes a Gaussian PSF)")
    elif n_spot == 0:
        notes.append("camera gain from background regions only")
    if baseline > upper + 3.0 * math.sqrt(max(slope * 10.0, 1.0)):
        notes.append(f"fitted baseline {baseline:.1f} ADU is above the darkest background "
                     f"({upper:.1f} ADU): camera estimate unreliable")
    read_noise = None if read_noise_adu is None else float(read_noise_adu)
    adu_per_photon = slope / excess_noise_factor
    return CameraEstimate(
        baseline_adu=float(baseline), adu_per_photon=float(adu_per_photon),
        photons_per_adu=float(1.0 / adu_per_photon), read_noise_adu=read_noise,
        read_noise_known=read_noise_adu is not None,
        baseline_max_adu=float(max(upper, baseline)) if math.isfinite(upper) else math.inf,
        excess_noise_factor=float(excess_noise_factor), variance_slope=float(slope),
        slope_rel_error=float(slope_err), r_squared=float(r2), n_bins=n_tiles + n_spot,
        n_tile_bins=n_tiles, n_spot_bins=n_spot, mean_range_adu=(lo, hi),
        n_frames=int(n_frames), notes=tuple(notes))


# ------------------------------------------------------------------------------ PSF, emitters


def _good_fits(spots: _Spots, camera: CameraEstimate | None) -> np.ndarray:
    """Spots that look like one emitter under the camera's noise model: residuals no larger
    than noise (reduced chi^2 < 1.6) and no elongation beyond noise (two emitters closer than
    the PSF width fit as one wide, bright spot, which would bias sigma and photons up)."""
    if len(spots) == 0 or camera is None:
        return _width_ok(spots)
    valid = spots.valid
    var = np.maximum(camera.variance(spots.model), 1e-9)
    chi2 = (np.where(valid, (spots.boxes - spots.model) ** 2 / var, 0.0).sum(axis=1)
            / np.maximum(valid.sum(axis=1) - spots.n_params, 1))
    return ((chi2 < 1.6) & (_elongation_chi2(spots, var) < 9.21)   # chi^2_2 at 99 %
            & _width_ok(spots))


def _single_spots(spots: _Spots, what: str, notes: list[str], hint: str = "") -> np.ndarray:
    """The good fits (``_good_fits``); an error naming ``what`` (and ``hint``: how to give
    the value instead) when there are fewer than 5, a note when most fits are not single
    emitters."""
    hint = f"; {hint}" if hint else ""
    if len(spots) == 0:
        raise LoczooError(f"no isolated spots found: cannot estimate {what} (are there "
                          f"emitters in the frames, and are they not all overlapping?){hint}")
    keep = _good_fits(spots, spots.camera)
    if keep.sum() < 5:
        shape = ""
        if spots.elliptical:
            shape = (" with widths a single emitter can have ("
                     + ("the PSF's over its z range" if spots.widths is not None else
                        "each 0.5-4 px, aspect up to 3") + ")")
        raise LoczooError(
            f"cannot estimate {what}: only {int(keep.sum())} of {len(spots)} spots fit as "
            f"single emitters{shape} (a crowded sample?); pass a first localization pass "
            f"(localizations) so that neighbours are fitted too{hint}")
    if keep.mean() < 0.5:
        advice = ("" if spots.first_pass else
                  f": a first localization pass would make {what} more reliable")
        notes.append(f"only {100 * keep.mean():.0f} % of the spots fit as single emitters "
                     f"(crowded?){advice}")
    return keep


def _elongation_chi2(spots: _Spots, var: np.ndarray) -> np.ndarray:
    """Per spot, chi^2 (2 dof) of the Gaussian-weighted quadrupole moments (xx - yy, 2 xy) of
    data minus model about the fitted centre, against their noise: a single round spot gives
    zero up to noise (the model's own pixelation cancels), an unresolved pair does not.
    Elliptical fits model the spot's own xx - yy moment, so an astigmatic spot passes too."""
    size = spots.size
    centre = np.arange(size) + 0.5
    dx = centre[None, None, :] - spots.theta[:, 0, None, None]
    dy = centre[None, :, None] - spots.theta[:, 1, None, None]
    sx2 = spots.theta[:, 2, None, None] ** 2
    sy2 = spots.theta[:, 7, None, None] ** 2
    weight = np.exp(-dx * dx / (2.0 * sx2) - dy * dy / (2.0 * sy2)).reshape(len(spots), -1)
    weight = np.where(spots.valid, weight, 0.0)
    ex = gaussian_pixel_profile(spots.theta[:, 0], spots.theta[:, 2], size)[0]
    ey = gaussian_pixel_profile(spots.theta[:, 1], spots.theta[:, 7], size)[0]
    signal = (spots.theta[:, 3, None, None] * ey[:, :, None] * ex[:, None, :]).reshape(
        len(spots), -1)
    norm = np.maximum((weight * signal).sum(axis=1), 1e-12)
    resid = spots.boxes - spots.model
    out = np.zeros(len(spots))
    for basis in ((dx * dx - dy * dy), (2.0 * dx * dy)):
        b = (np.broadcast_to(basis, (len(spots), size, size)).reshape(len(spots), -1)
             * weight / norm[:, None])
        moment = (b * resid).sum(axis=1)
        noise = np.maximum((b * b * var).sum(axis=1), 1e-300)
        out += moment * moment / noise
    return out


def _psf_from(spots: _Spots, pixel_size_nm: float, notes: list[str]) -> PsfEstimate:
    notes = list(notes)
    keep = _single_spots(spots, "the PSF width", notes,
                         "give the PSF with --psf psf.json (loczoo calibrate-psf), "
                         + _set_hint("psf_sigma_nm", "[lo,hi]"))
    sx, sy = spots.theta[keep, 2] * pixel_size_nm, spots.theta[keep, 7] * pixel_size_nm
    sigma = np.sqrt(sx * sy)
    if sigma.size < 20:
        notes.append(f"PSF width from only {sigma.size} spots")
    lo, med, hi = np.percentile(sigma, [10, 50, 90])
    axes = {}
    if spots.elliptical:
        axes = dict(sigma_x_range_nm=tuple(float(v) for v in np.percentile(sx, [10, 90])),
                    sigma_y_range_nm=tuple(float(v) for v in np.percentile(sy, [10, 90])))
        notes.append("astigmatic spots: their widths vary with z, so the in-focus PSF width "
                     "is not measured and imaging.psf_sigma_nm stays the model's; give the "
                     "calibrated PSF with --psf psf.json (loczoo calibrate-psf), or "
                     "--set imaging.psf_sigma_nm=[lo,hi]")
    return PsfEstimate(sigma_nm=float(med), sigma_range_nm=(float(lo), float(hi)),
                       n_spots=int(sigma.size), pixel_size_nm=float(pixel_size_nm),
                       notes=tuple(notes), **axes)


def _psf_given(psf, spots: _Spots, curve_z: np.ndarray, pixel_size_nm: float,
               source: str) -> PsfEstimate:
    """A known PSF as a PsfEstimate: its in-focus width (geometric mean of the axes) and the
    widths of its curve along z (not measured), and the data's z range (``_z_range``)."""
    s0 = math.sqrt(float(psf.sigma0_x_nm) * float(psf.sigma0_y_nm))
    nm = spots.curve * pixel_size_nm
    notes: list[str] = []
    z_range, n_z = _z_range(spots, curve_z, notes)
    return PsfEstimate(sigma_nm=s0, sigma_range_nm=(s0, s0), n_spots=0,
                       pixel_size_nm=float(pixel_size_nm),
                       sigma_x_range_nm=(float(nm[:, 0].min()), float(nm[:, 0].max())),
                       sigma_y_range_nm=(float(nm[:, 1].min()), float(nm[:, 1].max())),
                       source=source or "the given PSF", z_range_nm=z_range, n_z_spots=n_z,
                       notes=tuple(notes))


def _z_range(spots: _Spots, curve_z: np.ndarray, notes: list[str]):
    """(z range (nm) of the data, spots used) from the single-emitter spots' fitted widths read
    as z on the known PSF's width curve; (None, n) with a note when fewer than
    ``_MIN_Z_SPOTS`` spots fit (training then covers the PSF's whole z range). The 1st-99th
    percentile is widened by ``_Z_MARGIN`` of its span, at least ``_Z_MARGIN_NM`` (a single
    fit's z error, and emitters too defocused to be fitted), and kept within the PSF's range:
    a network trained on the z the data holds spends none of its capacity elsewhere."""
    keep = _good_fits(spots, spots.camera) if len(spots) else np.zeros(0, bool)
    n = int(keep.sum())
    if n < _MIN_Z_SPOTS:
        notes.append(f"only {n} spots fit as single emitters: the z range to train is the "
                     f"PSF's whole range (--set imaging.z_range_nm=[lo,hi] narrows it)")
        return None, n
    log_fit = np.log(np.maximum(spots.theta[keep][:, [2, 7]], 1e-6))
    log_curve = np.log(spots.curve)
    dist = ((log_fit[:, None, :] - log_curve[None, :, :]) ** 2).sum(axis=-1)
    z = curve_z[np.argmin(dist, axis=1)]
    lo, hi = np.percentile(z, [1, 99])
    margin = max(_Z_MARGIN_NM, _Z_MARGIN * (hi - lo))
    lo = max(float(curve_z[0]), math.floor((lo - margin) / 10.0) * 10.0)
    hi = min(float(curve_z[-1]), math.ceil((hi + margin) / 10.0) * 10.0)
    return (float(lo), float(hi)), n


def _median_by(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """Median of ``values`` per group 0..n-1 (NaN for empty groups)."""
    out = np.full(n, np.nan)
    if values.size == 0:
        return out
    order = np.argsort(group, kind="stable")
    values, group = values[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], group.size]):
        out[group[start]] = np.median(values[start:stop])
    return out


def _percentiles(values) -> tuple[float, float, float]:
    lo, med, hi = np.percentile(np.asarray(values, np.float64), [10, 50, 90])
    return float(lo), float(med), float(hi)


def _emitters_from(frames, data: np.ndarray, spots: _Spots, camera: CameraEstimate,
                   pixel_size_nm: float, localizations: Localizations | None,
                   notes: list[str]) -> EmitterEstimate:
    notes = list(notes)
    n_total, h, w = (int(v) for v in frames.shape)
    area_um2 = h * w * (pixel_size_nm / 1000.0) ** 2
    good = _single_spots(spots, "the photons per emitter", notes,
                         _set_hint("photon_params", "[lo,hi]"))
    theta = _on_psf(spots)   # a known PSF's widths (the fitted ones otherwise)
    photons = theta[good, 3] * camera.photons_per_adu
    if photons.size < 20:
        notes.append(f"photons from only {photons.size} isolated spots")
    # Background per frame, in order of preference: the median level of its flat background
    # tiles (see _tile_points), the median offset of its fitted spots (neighbours are in the
    # model when a first pass is given), the mean of the pixels outside the signal mask.
    _, tile_levels, tile_frames = _tile_points(data, spots.signal_mask)
    n_tiles = np.bincount(tile_frames, minlength=len(data))
    by_tiles = _median_by(tile_levels, tile_frames, len(data))
    by_spots = _median_by(theta[good, 4], spots.frame[good], len(data))
    free = ~spots.signal_mask
    by_pixels = (np.where(free, data, 0.0).sum(axis=(1, 2))
                 / np.maximum(free.sum(axis=(1, 2)), 1))
    by_pixels[free.sum(axis=(1, 2)) < 0.05 * h * w] = np.nan
    frame_level = np.where(n_tiles >= 4, by_tiles, np.where(np.isfinite(by_spots), by_spots,
                                                             by_pixels))
    level = frame_level[np.isfinite(frame_level)]
    if level.size == 0:
        raise LoczooError("cannot estimate the background: no frame has background regions "
                          "or fitted spots; "
                          + _set_hint("background_photons", "[lo,hi]"))
    background = (level - camera.baseline_adu) * camera.photons_per_adu
    if localizations is not None:
        frame = np.asarray(localizations.frame, np.int64)
        inside = (frame >= 1) & (frame <= n_total)
        if (~inside).any():
            notes.append(f"{int((~inside).sum())} localizations lie outside frames 1-{n_total} "
                         "and were ignored")
        counts = np.bincount(frame[inside] - 1, minlength=n_total)
        source = "first-pass localizations"
        if not inside.any():
            notes.append("the localizations table has no rows in this stack")
    else:
        counts = spots.counts
        source = "spot finder"
        notes.append("density from the spot finder, which misses overlapping emitters: in "
                     "dense data it is a lower bound (pass a first localization pass)")
    density = counts / area_um2
    n_lo, n_med, n_hi = _percentiles(photons)
    if spots.elliptical:
        # A 2D first pass or spot finder misses defocused astigmatic spots; the light in the
        # frame does not: each frame's photons above its background over the photons of one
        # emitter (light from outside the frame and lost past its edges roughly cancel).
        known = np.isfinite(frame_level)
        light = ((data[known].sum(axis=(1, 2)) - frame_level[known] * h * w)
                 * camera.photons_per_adu)
        budget = np.maximum(light / n_med, 0.0) / area_um2
        notes.append(f"astigmatic spots: density from each frame's photons over the photons "
                     f"per emitter (median {np.median(budget):.2g} /um^2; the {source}: "
                     f"{np.median(density):.2g} /um^2)")
        density, source = budget, "photon budget"
    d_lo, d_med, d_hi = _percentiles(density)
    b_lo, b_med, b_hi = _percentiles(background)
    return EmitterEstimate(
        density_per_um2=d_med, density_range_per_um2=(d_lo, d_hi), density_source=source,
        n_density_frames=int(density.size), photons=n_med, photon_range=(n_lo, n_hi),
        n_photon_spots=int(photons.size), background_photons=b_med,
        background_range_photons=(b_lo, b_hi), n_background_frames=int(background.size),
        notes=tuple(notes))
