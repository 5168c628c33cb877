"""Labelled structures for simulation: density masks that place emitters on biological-looking
shapes instead of uniformly (used by the demo, where a rendering should show something)."""

from __future__ import annotations

import numpy as np


def filament_mask(height_px: int, width_px: int, n_filaments: int = 8, oversample: int = 8,
                  persistence_px: float = 20.0, seed: int = 0) -> np.ndarray:
    """A density mask [height_px * oversample, width_px * oversample] of thin, gently curving
    filaments (microtubule-like worm-like chains) crossing the field: 1 on a filament, else 0.

    Each filament starts at a random point and direction and is traced in steps of half a mask
    cell both ways until it leaves the field; its direction diffuses so that it decorrelates
    over about ``persistence_px`` camera pixels.
    """
    rng = np.random.default_rng(seed)
    h, w = height_px * oversample, width_px * oversample
    mask = np.zeros((h, w), np.float32)
    step = 0.5
    angle_std = np.sqrt(step / (persistence_px * oversample))
    for _ in range(n_filaments):
        start = rng.uniform((0, 0), (h, w))
        heading = rng.uniform(0, 2 * np.pi)
        for direction in (0.0, np.pi):
            pos, theta = start.copy(), heading + direction
            while 0 <= pos[0] < h and 0 <= pos[1] < w:
                mask[int(pos[0]), int(pos[1])] = 1.0
                theta += angle_std * rng.standard_normal()
                pos += step * np.array([np.sin(theta), np.cos(theta)])
    return mask
