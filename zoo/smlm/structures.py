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


def drifting_filaments(n_frames: int = 2000, per_frame: float = 40, seed: int = 1,
                       with_z: bool = True, precision_nm: float = 12.0,
                       field_nm: float = 10000.0, n_filaments: int = 20,
                       drift_nm: tuple[float, float, float] = (150.0, 120.0, 100.0)):
    """A localization table of straight filaments under a smooth stage drift, for testing
    drift correction: each frame holds Poisson(``per_frame``) localizations at random points
    of the filaments (``precision_nm`` laterally, twice that axially, filaments at z in
    -300..300 nm), shifted by the drift x(t) = a sin(2 pi t / T) + 100 nm t / T,
    y(t) = b cos(1.4 pi t / T) - b, z(t) = c sin(pi t / T) with (a, b, c) = ``drift_nm``.
    Returns (Localizations, (x, y, z) drift per frame relative to frame 1)."""
    from loczoo.smlm.localizations import Localizations

    rng = np.random.default_rng(seed)
    start = rng.uniform(0, field_nm, (n_filaments, 2))
    angle = rng.uniform(0, np.pi, n_filaments)
    depth = rng.uniform(-300, 300, n_filaments)
    t = np.arange(1, n_frames + 1)
    a, b, c = drift_nm
    dx = a * np.sin(2 * np.pi * t / n_frames) + 100.0 * t / n_frames
    dy = b * np.cos(1.4 * np.pi * t / n_frames) - b
    dz = c * np.sin(np.pi * t / n_frames)
    frame = np.repeat(t, rng.poisson(per_frame, n_frames))
    f = rng.integers(0, n_filaments, frame.size)
    s = rng.uniform(-field_nm / 2, field_nm / 2, frame.size)
    x = start[f, 0] + s * np.cos(angle[f]) + rng.normal(0, precision_nm, frame.size)
    y = start[f, 1] + s * np.sin(angle[f]) + rng.normal(0, precision_nm, frame.size)
    z = depth[f] + rng.normal(0, 2 * precision_nm, frame.size)
    keep = (x > 0) & (x < field_nm) & (y > 0) & (y < field_nm)
    x, y, z, frame = x[keep], y[keep], z[keep], frame[keep]
    table = Localizations(frame=frame, x=x + dx[frame - 1], y=y + dy[frame - 1],
                          z=(z + dz[frame - 1]) if with_z else None)
    return table, (dx - dx[0], dy - dy[0], dz - dz[0])
