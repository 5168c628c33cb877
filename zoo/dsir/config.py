"""DSIR configuration: the reference code's defaults (``default()``; ``tiny()`` for tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from loczoo.errors import LoczooError
from loczoo.smlm.pipeline import LocalizerConfig


@dataclass(frozen=True, kw_only=True)
class DSIRConfig(LocalizerConfig):
    """DSIR (leaxsd, 2018): frames resized ``upsampling`` (8) times bilinearly and z-scored per
    frame, a convolutional auto-encoder with ``filters`` = (16, 8) channels (``share_batchnorm``
    true shares its batch-norm layers as the reference does; off by default because the
    shared moving statistics break inference, see README.md), and the MSE between prediction
    and spike target both blurred by a peak-1 Gaussian of ``kernel_width`` pixels and
    ``kernel_fwhm`` fine pixels (3; the reference fine-tunes with 1). Adam at 1e-4 with weight
    decay 1e-5, batch 32. ``target_scale`` multiplies the spikes (1 in the reference; loczoo's
    preset uses 100 as Deep-STORM does, see README.md). Localizations are local maxima of the
    prediction blurred by the same Gaussian, above ``threshold`` x ``target_scale`` (one
    emitter's blurred spike peaks at ``target_scale``)."""

    upsampling: int = 8
    patch_size: int = 26
    filters: tuple[int, int] = (16, 8)
    share_batchnorm: bool = False
    kernel_width: int = 5
    kernel_fwhm: float = 3.0
    target_scale: float = 1.0
    learning_rate: float = 1e-4
    weight_decay: float = 1e-5
    batch_size: int = 32
    threshold: float = 0.3
    neighborhood: int = 5
    refine: str = "quadratic"

    POOLINGS: ClassVar[int] = 3  # the auto-encoder's 2x2 poolings (an architecture constant)

    def __post_init__(self):
        super().__post_init__()
        if len(self.filters) != 2 or min(self.filters) < 1:
            raise LoczooError(f"filters must be two positive ints, got {self.filters!r}")
        if self.kernel_width < 1 or self.kernel_width % 2 == 0:
            raise LoczooError(f"kernel_width must be odd, got {self.kernel_width}")
        if self.kernel_fwhm <= 0:
            raise LoczooError(f"kernel_fwhm must be > 0, got {self.kernel_fwhm}")
        if self.target_scale <= 0:
            raise LoczooError(f"target_scale must be > 0, got {self.target_scale}")
        if self.weight_decay < 0:
            raise LoczooError(f"weight_decay must be >= 0, got {self.weight_decay}")

    @classmethod
    def tiny(cls):
        """Four channels, 2x resizing, 8 x 8 camera patches: for tests only."""
        return super().tiny(upsampling=2, patch_size=8, filters=(4, 4))
