"""One table type for localizations, used by every SMLM entry, reader, writer and metric.

Coordinate convention (the same everywhere in loczoo, and in ThunderSTORM and the SMLM
challenges): x is the column and y the row, both in nm from the image corner; camera pixel i
covers [i, i + 1) * pixel_size, so its centre is at (i + 0.5) * pixel_size. Frames are 1-based.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# Columns every table has; the others are optional and NaN where unknown.
REQUIRED = ("frame", "x", "y")
OPTIONAL = ("z", "photons", "prob", "sigma_x", "sigma_y", "sigma_z")


def pixel_centre_nm(index, pixel_size_nm: float):
    """Position in nm of the centre of pixel ``index`` (any array-like of indices)."""
    return (np.asarray(index, dtype=np.float64) + 0.5) * pixel_size_nm


def nm_to_pixel(position_nm, pixel_size_nm: float):
    """Continuous pixel coordinate (pixel i covers [i, i+1)) of a position in nm."""
    return np.asarray(position_nm, dtype=np.float64) / pixel_size_nm


@dataclass
class Localizations:
    """Columns of equal length: frame (1-based int), x, y, z in nm, photons, detection
    probability and per-localization uncertainties (nm). Optional columns are NaN if unknown."""

    frame: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray | None = None
    photons: np.ndarray | None = None
    prob: np.ndarray | None = None
    sigma_x: np.ndarray | None = None
    sigma_y: np.ndarray | None = None
    sigma_z: np.ndarray | None = None

    def __post_init__(self):
        self.frame = np.asarray(self.frame, dtype=np.int64).reshape(-1)
        n = self.frame.size
        for name in ("x", "y") + OPTIONAL:
            value = getattr(self, name)
            if value is None:
                value = np.full(n, np.nan)
            value = np.asarray(value, dtype=np.float64).reshape(-1)
            if value.size != n:
                raise ValueError(f"column {name!r} has {value.size} values, frame has {n}")
            setattr(self, name, value)

    def __len__(self) -> int:
        return int(self.frame.size)

    @classmethod
    def empty(cls) -> "Localizations":
        return cls(frame=np.zeros(0, np.int64), x=np.zeros(0), y=np.zeros(0))

    @classmethod
    def concatenate(cls, tables) -> "Localizations":
        tables = list(tables)
        if not tables:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(t, f.name) for t in tables])
                      for f in fields(cls)})

    def has(self, column: str) -> bool:
        """True if an optional column holds any known (finite) value."""
        return bool(np.isfinite(getattr(self, column)).any())

    def select(self, index) -> "Localizations":
        """Rows picked by a boolean mask or an index array."""
        return Localizations(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def in_frame(self, frame: int) -> "Localizations":
        return self.select(self.frame == frame)

    def sorted(self) -> "Localizations":
        """Rows ordered by frame, then y, then x (a stable, reproducible order for files)."""
        return self.select(np.lexsort((self.x, self.y, self.frame)))

    @property
    def n_frames_spanned(self) -> int:
        return int(self.frame.max()) if len(self) else 0
