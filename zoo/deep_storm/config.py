"""Deep-STORM configuration: the paper's defaults and a TINY configuration for tests."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from loczoo.errors import LoczooError
from loczoo.smlm.simulate import CameraConfig, ImagingConfig


def _default_imaging() -> ImagingConfig:
    # Dense 2D imaging at 100 nm pixels with a PSF sigma around 110 nm, and an sCMOS-like
    # camera comparable to the Deep-STORM demo 1 data (about 2 ADU per photon, baseline 100).
    # Ranges are wide on purpose: the model must transfer to imaging conditions it never saw.
    return ImagingConfig(
        pixel_size_nm=100.0, density_per_um2=(0.5, 10.0), photon_distribution="uniform",
        photon_params=(800.0, 6000.0), psf_sigma_nm=(90.0, 135.0),
        background_photons=(5.0, 120.0), background_field_fraction=0.3,
        camera=CameraConfig(qe=1.0, read_noise_e=1.5, e_per_adu=0.5, baseline_adu=100.0))


@dataclass(frozen=True, kw_only=True)
class DeepSTORMConfig:
    """Deep-STORM (Nehme et al., Optica 2018). Defaults follow the reference implementation.

    The network sees camera frames upsampled ``upsampling`` times by nearest neighbour and
    predicts a map on that grid. Training targets are emitter spikes on the fine grid blurred
    by a ``kernel_size`` Gaussian of ``heatmap_sigma`` fine pixels and scaled by
    ``target_scale``; the loss blurs the prediction with the same kernel times
    ``prediction_blur_scale`` and adds ``l1_weight`` x mean |prediction|.
    ``norm_mean``/``norm_std`` are the global normalisation constants applied after per-frame
    min-max scaling; ``None`` until computed from the training data.
    """

    upsampling: int = 8
    patch_size: int = 26
    filters: tuple[int, int, int, int] = (32, 64, 128, 512)
    kernel_size: int = 7
    heatmap_sigma: float = 1.0
    target_scale: float = 100.0
    prediction_blur_scale: float = 2.0
    l1_weight: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 16
    norm_mean: float | None = None
    norm_std: float | None = None
    threshold: float = 0.1
    neighborhood: int = 3
    refine: str = "cog"
    imaging: ImagingConfig = field(default_factory=_default_imaging)

    def __post_init__(self):
        if self.upsampling < 1:
            raise LoczooError(f"upsampling must be >= 1, got {self.upsampling}")
        if (self.patch_size * self.upsampling) % 8:
            raise LoczooError(f"patch_size x upsampling must be a multiple of 8 (three 2x2 "
                              f"poolings), got {self.patch_size} x {self.upsampling}")
        if len(self.filters) != 4 or min(self.filters) < 1:
            raise LoczooError(f"filters must be four positive ints, got {self.filters!r}")
        if self.kernel_size % 2 == 0:
            raise LoczooError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.refine not in ("cog", "none"):
            raise LoczooError(f"refine must be 'cog' or 'none', got {self.refine!r}")
        if self.norm_std is not None and self.norm_std <= 0:
            raise LoczooError(f"norm_std must be > 0, got {self.norm_std}")

    @property
    def input_multiple(self) -> int:
        """Frame height and width must be multiples of this (8 after upsampling)."""
        return 8 // math.gcd(8, self.upsampling)

    @property
    def output_pixel_nm(self) -> float:
        return self.imaging.pixel_size_nm / self.upsampling

    @classmethod
    def default(cls) -> "DeepSTORMConfig":
        return cls()

    @classmethod
    def tiny(cls) -> "DeepSTORMConfig":
        """A few thousand parameters, 16 x 16 fine patches: for tests only."""
        return replace(cls(), upsampling=2, patch_size=8, filters=(4, 4, 8, 8), batch_size=2,
                       imaging=replace(_default_imaging(), density_per_um2=(2.0, 6.0)))
