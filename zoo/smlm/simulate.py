"""SMLM frame simulator in pure TensorFlow: emitters -> integrated Gaussian PSF -> camera.

Everything is batched over frames and vectorised over emitters (no Python loop over either), so
the same code runs on CPU or GPU and inside ``tf.data.Dataset.map``. Random numbers are
stateless: the same ``seed`` (a pair of ints) always gives the same frames.

The PSF is a 2D Gaussian integrated over each pixel (differences of erf at the pixel edges). It
is separable, so a batch of frames is one batched matrix product of per-emitter row profiles
(weighted by photons) with per-emitter column profiles.

Coordinates follow ``loczoo.smlm.localizations``: x is the column, y the row, in nm; pixel i
covers [i, i + 1) * pixel_size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from loczoo.config import check_range
from loczoo.errors import LoczooError
from loczoo.smlm.localizations import Localizations

PHOTON_DISTRIBUTIONS = ("uniform", "normal", "lognormal", "exponential")


@dataclass(frozen=True, kw_only=True)
class CameraConfig:
    """Camera model. Photons -> QE -> Poisson electrons -> optional EM gain (Gamma) -> Gaussian
    read noise -> ADU (electrons / e_per_adu + baseline) -> rounding and saturation.

    ``em_gain=None`` is an sCMOS/CCD camera (no excess noise); a number is an EMCCD whose
    multiplication register gives an excess noise factor of about 2.
    """

    qe: float = 1.0
    em_gain: float | None = None
    read_noise_e: float = 1.5
    e_per_adu: float = 0.5
    baseline_adu: float = 100.0
    saturation_adu: float = 65535.0
    quantize: bool = True

    def __post_init__(self):
        if not 0 < self.qe <= 1:
            raise LoczooError(f"camera qe must be in (0, 1], got {self.qe}")
        if self.em_gain is not None and self.em_gain < 1:
            raise LoczooError(f"camera em_gain must be >= 1 or null, got {self.em_gain}")
        if self.read_noise_e < 0 or self.e_per_adu <= 0:
            raise LoczooError(
                f"camera read_noise_e must be >= 0 and e_per_adu > 0, "
                f"got {self.read_noise_e} and {self.e_per_adu}")

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


@dataclass(frozen=True, kw_only=True)
class ImagingConfig:
    """What is imaged and how. Ranges are (low, high) and drawn uniformly per frame (density,
    background) or per emitter (PSF width); photons follow ``photon_distribution`` with
    ``photon_params``: uniform (low, high), normal (mean, std), lognormal (median, sigma of
    log), exponential (mean,). Emitters are also placed in a margin of ``margin_px`` around the
    frame so that PSFs cut by the border appear; only those inside the frame are ground truth.
    """

    pixel_size_nm: float = 100.0
    density_per_um2: tuple[float, float] = (1.0, 10.0)
    photon_distribution: str = "uniform"
    photon_params: tuple[float, ...] = (1000.0, 5000.0)
    psf_sigma_nm: tuple[float, float] = (95.0, 125.0)
    background_photons: tuple[float, float] = (10.0, 100.0)
    background_field_fraction: float = 0.0
    margin_px: float = 3.0
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

    def expected_emitters(self, height: int, width: int) -> float:
        """Mean emitter count in the frame plus its margin at the highest density."""
        area_um2 = ((height + 2 * self.margin_px) * (width + 2 * self.margin_px)
                    * (self.pixel_size_nm / 1000.0) ** 2)
        return self.density_per_um2[1] * area_um2

    def max_emitters(self, height: int, width: int) -> int:
        """A padding size that a Poisson count exceeds with negligible probability."""
        mean = self.expected_emitters(height, width)
        return max(8, int(math.ceil(mean + 6 * math.sqrt(mean) + 8)))


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


def _seeds(seed, n: int):
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=n))


def _uniform(shape, seed, low, high):
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high)


def sample_photons(shape, seed, imaging: ImagingConfig):
    """Photon counts per emitter from the configured distribution (float32, >= 1)."""
    p = imaging.photon_params
    kind = imaging.photon_distribution
    if kind == "uniform":
        n = _uniform(shape, seed, p[0], p[1])
    elif kind == "normal":
        n = p[0] + p[1] * tf.random.stateless_normal(shape, seed)
    elif kind == "lognormal":
        n = p[0] * tf.exp(p[1] * tf.random.stateless_normal(shape, seed))
    else:  # exponential
        n = -p[0] * tf.math.log(_uniform(shape, seed, 1e-7, 1.0))
    return tf.maximum(n, 1.0)


def sample_emitters(seed, batch: int, height: int, width: int, imaging: ImagingConfig,
                    max_emitters: int, density_mask=None) -> dict:
    """Random emitters for ``batch`` frames, padded to ``max_emitters``.

    The count per frame is Poisson with mean density x area (frame plus margin). With a
    ``density_mask`` (array of shape [h, w] covering the frame, relative density in [0, 1]),
    emitters are drawn only inside the frame, with density ``density_per_um2`` where the mask
    is 1 and proportionally less elsewhere.

    Returns a dict of float32 tensors x, y, photons, sigma of shape [batch, max_emitters] and the
    boolean ``exists`` (emitter is real, rendered) and ``mask`` (real and inside the frame:
    ground truth).
    """
    s = _seeds(seed, 8)
    px = imaging.pixel_size_nm
    density = _uniform([batch], s[0], *imaging.density_per_um2)
    if density_mask is None:
        margin = imaging.margin_px * px
        lo_x, hi_x = -margin, width * px + margin
        lo_y, hi_y = -margin, height * px + margin
        area_um2 = (hi_x - lo_x) * (hi_y - lo_y) * 1e-6
        x = _uniform([batch, max_emitters], s[1], lo_x, hi_x)
        y = _uniform([batch, max_emitters], s[2], lo_y, hi_y)
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
        x = (cx + _uniform([batch, max_emitters], s[2], 0.0, 1.0)) * cell_w
        y = (cy + _uniform([batch, max_emitters], s[7], 0.0, 1.0)) * cell_h
    count = tf.random.stateless_poisson([batch], s[3], density * area_um2, dtype=tf.int32)
    exists = tf.range(max_emitters)[None, :] < tf.minimum(count, max_emitters)[:, None]
    photons = sample_photons([batch, max_emitters], s[4], imaging)
    sigma = _uniform([batch, max_emitters], s[5], *imaging.psf_sigma_nm)
    inside = (x >= 0) & (x < width * px) & (y >= 0) & (y < height * px)
    zero = tf.zeros_like(x)
    return {
        "x": tf.where(exists, x, zero),
        "y": tf.where(exists, y, zero),
        "photons": tf.where(exists, photons, zero),
        "sigma": tf.where(exists, sigma, tf.ones_like(x) * imaging.psf_sigma_nm[0]),
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
    profile times its photons and Px its column profile.
    """
    weight = emitters["photons"] * tf.cast(emitters["exists"], tf.float32)
    prof_y = pixel_profiles(emitters["y"], emitters["sigma"], height, pixel_size_nm)
    prof_x = pixel_profiles(emitters["x"], emitters["sigma"], width, pixel_size_nm)
    return tf.matmul(prof_y * weight[..., None], prof_x, transpose_a=True)


def sample_background(seed, batch: int, height: int, width: int, imaging: ImagingConfig):
    """Background photons per pixel [B, H, W]: a constant per frame, optionally modulated by a
    smooth random field (a 4 x 4 grid of random values, bilinearly interpolated)."""
    s = _seeds(seed, 2)
    level = _uniform([batch, 1, 1], s[0], *imaging.background_photons)
    bg = tf.broadcast_to(level, [batch, height, width])
    if imaging.background_field_fraction > 0:
        grid = _uniform([batch, 4, 4, 1], s[1], -1.0, 1.0)
        smooth = tf.image.resize(grid, [height, width], method="bilinear")[..., 0]
        bg = bg * (1.0 + imaging.background_field_fraction * smooth)
    return bg


def apply_camera(seed, photons, camera: CameraConfig):
    """Noisy camera frames in ADU (float32) from expected photons per pixel (any shape)."""
    s = _seeds(seed, 3)
    lam = camera.qe * tf.maximum(photons, 0.0)
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
    return camera.qe * photons * gain / camera.e_per_adu + camera.baseline_adu


def simulate_frames(seed, emitters: dict, height: int, width: int,
                    imaging: ImagingConfig) -> dict:
    """Frames for given emitters (dict as returned by ``sample_emitters``; ``exists`` marks real
    ones). Returns ``frames`` (ADU), ``mean_photons`` (signal + background, before noise) and
    ``background``, each [B, H, W]."""
    s = _seeds(seed, 2)
    batch = tf.shape(emitters["x"])[0]
    signal = render_emitters(emitters, height, width, imaging.pixel_size_nm)
    background = sample_background(s[0], batch, height, width, imaging)
    mean = signal + background
    return {"frames": apply_camera(s[1], mean, imaging.camera), "mean_photons": mean,
            "background": background}


def simulate(seed, batch: int, height: int, width: int, imaging: ImagingConfig,
             max_emitters: int | None = None, density_mask=None) -> dict:
    """Random emitters and their camera frames: ``frames`` [B, H, W] ADU plus the padded ground
    truth ``x, y, photons, sigma`` [B, M] and ``mask`` [B, M] (inside the frame)."""
    if max_emitters is None:
        max_emitters = imaging.max_emitters(height, width)
    s = _seeds(seed, 2)
    emitters = sample_emitters(s[0], batch, height, width, imaging, max_emitters, density_mask)
    out = simulate_frames(s[1], emitters, height, width, imaging)
    out.update({k: emitters[k] for k in ("x", "y", "photons", "sigma", "mask")})
    return out


def emitters_to_table(sim: dict, first_frame: int = 1) -> Localizations:
    """Ground-truth table (frames numbered from ``first_frame``) from a ``simulate`` result."""
    mask = np.asarray(sim["mask"])
    frame_index = np.nonzero(mask)[0]
    return Localizations(
        frame=frame_index + first_frame,
        x=np.asarray(sim["x"])[mask], y=np.asarray(sim["y"])[mask],
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


def simulate_stack(imaging: ImagingConfig, n_frames: int, height: int, width: int,
                   seed: int = 0, batch: int = 64, progress=None, density_mask=None):
    """A stack [N, H, W] (ADU, float32) and its ground-truth table (frames 1-based), simulated
    batch by batch (optionally on a ``density_mask``, see ``sample_emitters``). The same seed
    and ``batch`` give the same stack."""
    frames, tables = [], []
    for start in range(0, n_frames, batch):
        size = min(batch, n_frames - start)
        sim = simulate(tf.constant([seed, start], tf.int64), size, height, width, imaging,
                       density_mask=density_mask)
        frames.append(sim["frames"].numpy())
        tables.append(emitters_to_table(sim, first_frame=start + 1))
        if progress is not None:
            progress(start + size, n_frames)
    return np.concatenate(frames), Localizations.concatenate(tables)
