"""Deep-STORM configuration: the paper's defaults and a TINY configuration for tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from loczoo.smlm.heatmaps import HeatmapConfig
from loczoo.smlm.simulate import ImagingConfig, dense_2d_imaging


@dataclass(frozen=True, kw_only=True)
class DeepSTORMConfig(HeatmapConfig):
    """Deep-STORM (Nehme et al., Optica 2018). Defaults follow the reference implementation:
    8x upsampling, 26 px patches, 7 x 7 sigma-1 kernel, targets x 100, and a loss that blurs the
    prediction with the kernel times ``prediction_blur_scale`` (2) plus ``l1_weight`` (1) x
    mean |prediction|. The pipeline fields are documented in ``HeatmapConfig``."""

    prediction_blur_scale: float = 2.0
    l1_weight: float = 1.0
    imaging: ImagingConfig = field(default_factory=dense_2d_imaging)

    @classmethod
    def default(cls) -> "DeepSTORMConfig":
        return cls()

    @classmethod
    def tiny(cls) -> "DeepSTORMConfig":
        """A few thousand parameters, 16 x 16 fine patches: for tests only."""
        return replace(cls(), upsampling=2, patch_size=8, filters=(4, 4, 8, 8), batch_size=2,
                       imaging=replace(dense_2d_imaging(), density_per_um2=(2.0, 6.0)))
