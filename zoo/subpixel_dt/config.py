"""Configuration of the sub-pixel distance-transform CNN (Yee, Hagen and Ventura)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from loczoo.errors import LoczooError
from loczoo.smlm.pipeline import LocalizerConfig


@dataclass(frozen=True, kw_only=True)
class SubpixelDTConfig(LocalizerConfig):
    """The 2013 model by default: ``n_conv`` 3 x 3 convolutions of ``filters`` channels, one
    sub-pixel convolution to ``subpixel_filters`` channels on a grid ``upsampling`` (r) times
    finer, and a 1 x 1 convolution to the distance-transform map. The target is
    f(d) = exp(alpha (1 - d / d_max)) - 1 for d < d_max (d: distance to the nearest emitter in
    fine pixels), divided by exp(alpha) - 1 when ``normalize_target`` so that an emitter peaks
    at 1. ``threshold`` is on that normalised scale: the paper's 300 at alpha 7 is 0.274.
    ``variants()`` holds the 2016 model (11 convolutions, 10 sub-pixel filters, d_max 42)."""

    upsampling: int = 7
    patch_size: int = 32
    n_conv: int = 9
    filters: int = 32
    subpixel_filters: int = 32
    dropout: float = 0.0
    alpha: float = 7.0
    d_max: float = 35.0
    normalize_target: bool = True
    threshold: float = 0.274
    refine: str = "quadratic"

    def __post_init__(self):
        super().__post_init__()
        if self.n_conv < 1 or self.filters < 1 or self.subpixel_filters < 1:
            raise LoczooError("n_conv, filters and subpixel_filters must be >= 1, got "
                              f"{self.n_conv}, {self.filters}, {self.subpixel_filters}")
        if not 0.0 <= self.dropout < 1.0:
            raise LoczooError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.alpha <= 0 or self.d_max <= 0:
            raise LoczooError(f"alpha and d_max must be > 0, got {self.alpha}, {self.d_max}")

    @property
    def target_peak(self) -> float:
        """The target's value at an emitter: 1 if normalised, else exp(alpha) - 1."""
        return 1.0 if self.normalize_target else math.expm1(self.alpha)

    @classmethod
    def variants(cls) -> dict:
        return {"2013": cls(), "2016": cls(n_conv=11, subpixel_filters=10, d_max=42.0)}

    @classmethod
    def tiny(cls):
        """Two small convolutions, r = 3, 8 x 8 camera patches: for tests only."""
        return super().tiny(upsampling=3, patch_size=8, n_conv=2, filters=4,
                            subpixel_filters=2, d_max=6.0)
