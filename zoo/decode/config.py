"""DECODE configuration: the reference defaults (``default()``), ``tiny()`` for tests and the
``3d`` variant (astigmatic PSF, SMLM 2016 challenge camera)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from loczoo.errors import LoczooError
from loczoo.smlm.simulate import ImagingConfig, dense_2d_blinking_imaging, smlm2016_3d_imaging

# Output channels of the network, in the reference's order.
CHANNELS = ("p", "photons", "x", "y", "z", "sigma_photons", "sigma_x", "sigma_y", "sigma_z",
            "background")


# DECODE's 2D imaging: the dense 2D presets' conditions with blinking (lives in loczoo.smlm so
# that the simulated data sets can use it without importing an entry).
decode_2d_imaging = dense_2d_blinking_imaging


@dataclass(frozen=True, kw_only=True)
class DECODEConfig:
    """DECODE (Speiser, Mueller et al., Nat Methods 2021).

    Network: frames t-1, t, t+1 each through a shared U-Net (``depth`` stride-2 levels,
    ``features`` doubling per level, ELU, ``inter_features`` outputs), the concatenated
    features through a union U-Net, then four heads (p; photons, x, y, z; their sigmas;
    background). ``predict_z`` False is the 2D mode: z is not predicted (its channels are the
    constants 0 and ``sigma_z_fixed``) and not in the loss.

    Units: the network sees ``(photons - input_offset) / input_scale``; it predicts photons /
    ``photon_max``, x and y offsets in camera pixels from the pixel centre, z / ``z_max`` and
    background photons / ``background_max``. The five constants follow the reference's
    ``autoset_scaling`` from ``imaging`` and are filled in by ``prepare_config`` (0 = not yet).

    Training (reference): AdamW at ``learning_rate`` 2e-4 with ``weight_decay`` 0.1, global
    gradient norm clipped to ``clip_norm`` 0.03, the learning rate times ``lr_decay`` 0.9 every
    ``lr_decay_samples`` samples (10 epochs of 10,000), batch 64 of 40 x 40 px windows;
    emitters under ``photon_min`` photons are not targets.

    Post-processing: p above ``threshold``, local maxima (3 x 3), p summed over the centre and
    its 4 neighbours; pixels that are not maxima but have p above ``split_threshold`` are also
    kept with their sum (two emitters in adjacent pixels). The predicted sigmas are multiplied
    by ``sigma_scale`` (x, y, z), which ``loczoo.calibration`` measures on simulated frames
    so that error / sigma has unit spread (1 until calibrated)."""

    patch_size: int = 40
    depth: int = 2
    features: int = 48
    inter_features: int = 48
    predict_z: bool = False
    sigma_z_fixed: float = 0.1
    p_bias: float = -6.0
    max_targets: int = 250
    photon_min: float = 100.0
    learning_rate: float = 2e-4
    weight_decay: float = 0.1
    clip_norm: float = 0.03
    lr_decay: float = 0.9
    lr_decay_samples: int = 100_000
    batch_size: int = 64
    threshold: float = 0.1
    split_threshold: float = 0.6
    sigma_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_offset: float = 0.0
    input_scale: float = 0.0
    photon_max: float = 0.0
    z_max: float = 0.0
    background_max: float = 0.0
    imaging: ImagingConfig = field(default_factory=decode_2d_imaging)
    # The output grid is the camera's (``LocalizationConfig.upsampling``). Only 1 is valid; a
    # field rather than a constant so that the config satisfies the contract with data, and a
    # config.json written before it existed loads with this default.
    upsampling: int = 1

    def __post_init__(self):
        if self.upsampling != 1:
            raise LoczooError(f"DECODE predicts on the camera grid: upsampling must be 1, got "
                              f"{self.upsampling}")
        if self.depth < 1 or self.features < 1 or self.inter_features < 1:
            raise LoczooError("depth, features and inter_features must be >= 1, got "
                              f"{self.depth}, {self.features}, {self.inter_features}")
        if self.patch_size < 4 or self.patch_size % self.input_multiple:
            raise LoczooError(f"patch_size must be a multiple of {self.input_multiple} "
                              f"({self.depth} stride-2 levels), got {self.patch_size}")
        if self.batch_size < 1 or self.max_targets < 1:
            raise LoczooError(f"batch_size and max_targets must be >= 1, got "
                              f"{self.batch_size} and {self.max_targets}")
        if not 0 < self.threshold < 1 or not 0 < self.split_threshold <= 1:
            raise LoczooError(f"threshold must be in (0, 1) and split_threshold in (0, 1], got "
                              f"{self.threshold} and {self.split_threshold}")
        scale = tuple(self.sigma_scale)
        if len(scale) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0
                                      for v in scale):
            raise LoczooError(f"sigma_scale must be three finite numbers > 0 (x, y, z), got "
                              f"{self.sigma_scale!r}")
        object.__setattr__(self, "sigma_scale", tuple(float(v) for v in scale))
        if self.clip_norm <= 0 or self.learning_rate <= 0 or not 0 < self.lr_decay <= 1:
            raise LoczooError("clip_norm and learning_rate must be > 0 and lr_decay in (0, 1]")
        if self.predict_z and self.imaging.z_range_nm == (0.0, 0.0):
            raise LoczooError("predict_z needs imaging.z_range_nm (the z range to simulate)")

    @property
    def input_multiple(self) -> int:
        return 2**self.depth

    @property
    def output_pixel_nm(self) -> float:
        return self.imaging.pixel_size_nm

    @property
    def has_scaling(self) -> bool:
        return min(self.input_scale, self.photon_max, self.background_max) > 0 and (
            self.z_max > 0 or not self.predict_z)

    @classmethod
    def default(cls):
        """2D, the reference network and training settings."""
        return cls()

    @classmethod
    def tiny(cls):
        """For tests only: 8 features, depth 2, 8 x 8 px windows, batch 2, a few emitters."""
        default = cls()
        return replace(default, features=8, inter_features=8, patch_size=8, batch_size=2,
                       imaging=replace(default.imaging, density_per_um2=(4.0, 8.0)))

    @classmethod
    def variants(cls) -> dict:
        """``3d``: astigmatic PSF over z -750..750 nm and the SMLM 2016 challenge camera."""
        return {"3d": cls(predict_z=True,
                          imaging=replace(smlm2016_3d_imaging(), on_time_frames=1.0))}


def autoset_scaling(config: DECODEConfig) -> DECODEConfig:
    """The reference's ``autoset_scaling`` from the imaging configuration: input offset = mean
    background, input scale = mean photons / 50, photon_max = mean + 8 std of the photons,
    z_max = 1.2 x the largest |z|, background_max = 1.2 x the largest background."""
    imaging = config.imaging
    mean, std = photon_moments(imaging)
    low, high = imaging.background_photons
    bg_high = high * (1.0 + imaging.background_field_fraction)
    z_max = 1.2 * max(abs(v) for v in imaging.z_range_nm)
    return replace(config, input_offset=0.5 * (low + high), input_scale=mean / 50.0,
                   photon_max=mean + 8.0 * std, z_max=z_max if config.predict_z else 0.0,
                   background_max=1.2 * bg_high)


def photon_moments(imaging: ImagingConfig) -> tuple[float, float]:
    """Mean and standard deviation of the photons per emitter (flux per frame)."""
    p, kind = imaging.photon_params, imaging.photon_distribution
    if kind == "uniform":
        return 0.5 * (p[0] + p[1]), (p[1] - p[0]) / math.sqrt(12.0)
    if kind == "normal":
        return p[0], p[1]
    if kind == "lognormal":
        mean = p[0] * math.exp(0.5 * p[1] ** 2)
        return mean, mean * math.sqrt(math.exp(p[1] ** 2) - 1.0)
    return p[0], p[0]  # exponential
