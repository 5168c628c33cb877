"""Real frames with ground truth, as training data: a TIFF stack plus a localization table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loczoo.errors import LoczooError
from loczoo.smlm.localizations import Localizations


@dataclass
class TrainingData:
    """Frames [N, H, W] (ADU), their ground truth (frames 1-based) and the pixel size."""

    frames: np.ndarray
    truth: Localizations
    pixel_size_nm: float

    def __post_init__(self):
        if self.frames.ndim != 3 or self.frames.shape[0] == 0:
            raise LoczooError(f"training frames must be a non-empty [N, H, W] stack, "
                              f"got shape {self.frames.shape}")
        if len(self.truth) and (self.truth.frame.min() < 1
                                or self.truth.frame.max() > self.frames.shape[0]):
            raise LoczooError(f"ground truth frames span {self.truth.frame.min()}.."
                              f"{self.truth.frame.max()} but the stack has "
                              f"{self.frames.shape[0]} frames")

    def padded_emitters(self, columns=("x", "y")) -> dict[str, np.ndarray]:
        """``columns`` of the ground truth as float32 [N, M] arrays (NaN where a column is
        unknown) plus the boolean ``mask`` [N, M], with M the largest count in any frame."""
        n = self.frames.shape[0]
        counts = np.bincount(self.truth.frame - 1, minlength=n)
        m = max(1, int(counts.max(initial=0)))
        order = np.argsort(self.truth.frame, kind="stable")
        frame = self.truth.frame[order] - 1
        slot = np.arange(frame.size) - np.searchsorted(frame, frame)
        padded = {"mask": np.zeros((n, m), bool)}
        padded["mask"][frame, slot] = True
        for column in columns:
            padded[column] = np.zeros((n, m), np.float32)
            padded[column][frame, slot] = getattr(self.truth, column)[order]
        return padded

    def split_frames(self, split: str, validation_fraction: float = 0.3) -> np.ndarray:
        """Frame indices (0-based) of a split: the last ``validation_fraction`` of every block
        of ten frames is validation, so both splits span the whole acquisition."""
        index = np.arange(self.frames.shape[0])
        is_val = (index % 10) >= round(10 * (1 - validation_fraction))
        chosen = index[is_val] if split == "validation" else index[~is_val]
        return chosen if chosen.size else index

    def subset(self, indices) -> "TrainingData":
        """The frames at ``indices`` (0-based, increasing) with their ground truth, renumbered
        from 1."""
        indices = np.asarray(indices)
        position = np.full(self.frames.shape[0] + 1, -1)
        position[indices + 1] = np.arange(1, indices.size + 1)
        truth = self.truth.select(position[self.truth.frame] > 0)
        truth.frame = position[truth.frame]
        return TrainingData(frames=np.asarray(self.frames[indices]), truth=truth,
                            pixel_size_nm=self.pixel_size_nm)
