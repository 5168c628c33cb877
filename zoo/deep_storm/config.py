"""Deep-STORM configuration: the paper's defaults (``default()``; ``tiny()`` for tests)."""

from __future__ import annotations

from dataclasses import dataclass

from loczoo.smlm.heatmaps import HeatmapConfig


@dataclass(frozen=True, kw_only=True)
class DeepSTORMConfig(HeatmapConfig):
    """Deep-STORM (Nehme et al., Optica 2018). Defaults follow the reference implementation:
    8x upsampling, 26 px patches, 7 x 7 sigma-1 kernel, targets x 100, and a loss that blurs the
    prediction with the kernel times ``prediction_blur_scale`` (2) plus ``l1_weight`` (1) x
    mean |prediction|. The pipeline fields are documented in ``HeatmapConfig``."""

    prediction_blur_scale: float = 2.0
    l1_weight: float = 1.0
