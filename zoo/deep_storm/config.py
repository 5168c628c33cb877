"""Deep-STORM configuration: the paper's defaults and a TINY configuration for tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from loczoo.smlm.heatmaps import HeatmapConfig
from loczoo.smlm.simulate import CameraConfig, ImagingConfig


def default_imaging() -> ImagingConfig:
    # Dense 2D imaging at 100 nm pixels with a PSF sigma around 110 nm, and an sCMOS-like
    # camera comparable to the Deep-STORM demo 1 data (about 2 ADU per photon, baseline 100).
    # Ranges are wide on purpose: the model must transfer to imaging conditions it never saw.
    return ImagingConfig(
        pixel_size_nm=100.0, density_per_um2=(0.5, 10.0), photon_distribution="uniform",
        photon_params=(800.0, 6000.0), psf_sigma_nm=(90.0, 135.0),
        background_photons=(5.0, 120.0), background_field_fraction=0.3,
        camera=CameraConfig(qe=1.0, read_noise_e=1.5, e_per_adu=0.5, baseline_adu=100.0))


@dataclass(frozen=True, kw_only=True)
class DeepSTORMConfig(HeatmapConfig):
    """Deep-STORM (Nehme et al., Optica 2018). Defaults follow the reference implementation:
    8x upsampling, 26 px patches, 7 x 7 sigma-1 kernel, targets x 100, and a loss that blurs the
    prediction with the kernel times ``prediction_blur_scale`` (2) plus ``l1_weight`` (1) x
    mean |prediction|. The pipeline fields are documented in ``HeatmapConfig``."""

    prediction_blur_scale: float = 2.0
    l1_weight: float = 1.0
    imaging: ImagingConfig = field(default_factory=default_imaging)

    @classmethod
    def default(cls) -> "DeepSTORMConfig":
        return cls()

    @classmethod
    def tiny(cls) -> "DeepSTORMConfig":
        """A few thousand parameters, 16 x 16 fine patches: for tests only."""
        return replace(cls(), upsampling=2, patch_size=8, filters=(4, 4, 8, 8), batch_size=2,
                       imaging=replace(default_imaging(), density_per_um2=(2.0, 6.0)))
