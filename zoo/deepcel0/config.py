"""DeepCEL0 configuration: the notebook's defaults (``default()``; ``tiny()`` for tests)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from loczoo.errors import LoczooError
from loczoo.smlm.heatmaps import HeatmapConfig


def zerocost_l2_factor(upsampling: int, min_emitters: int = 7) -> float:
    """ZeroCostDL4Mic's automatic "L2 weighting factor" (target scale). Its patch emitter count
    is practically always ``min_emitters`` (methods.md 1.2), which leaves this formula:
    170.2 for 8x upsampling, 85.1 for 4x."""
    return 100.0 / math.sqrt(min_emitters * 8**2 / (upsampling**2 * 20.28))


@dataclass(frozen=True, kw_only=True)
class DeepCEL0Config(HeatmapConfig):
    """DeepCEL0 (Cascarano et al., Bioinformatics 2022): the Deep-STORM pipeline with a ReLU
    output and the L2 + CEL0 loss. Defaults follow the DeepCEL0 notebook: 4x upsampling,
    ``cel0_lambda`` 100, the prediction blurred by the sum-1 kernel (no x2), and the
    ZeroCostDL4Mic automatic target scale for 4x. Change ``target_scale`` with ``upsampling``
    (``zerocost_l2_factor``)."""

    upsampling: int = 4
    target_scale: float = round(zerocost_l2_factor(4), 2)
    cel0_lambda: float = 100.0

    def __post_init__(self):
        super().__post_init__()
        if self.cel0_lambda < 0:
            raise LoczooError(f"cel0_lambda must be >= 0, got {self.cel0_lambda}")
