"""Test-time augmentation of localization networks: the network also sees each frame flipped
(and, for PSFs that look the same turned by 90 degrees, transposed), every output is mapped back
onto the frame, and the maps are averaged before post-processing.

Averaging over mirror images cancels a learned sub-pixel bias (an offset b becomes -b in the
mirrored pass) and lowers the variance of what the network predicts. Output channels named
``x`` and ``y`` (offsets along the width and the height, as DECODE's) change sign with a flip
along their axis; a transpose swaps them, and ``sigma_x`` with ``sigma_y``; every other channel
(probabilities, densities, photons, z, background) is a scalar map. An astigmatic PSF is
elongated along x above one focus and along y above the other, so a transposed frame would
read as a different z: astigmatic models get the 4 flips, the others all 8 symmetries of the
square (flips and transposes).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Symmetry(NamedTuple):
    """Flip the height axis, flip the width axis, then transpose (height <-> width)."""

    flip_height: bool
    flip_width: bool
    transpose: bool


def symmetries(astigmatic: bool) -> tuple[Symmetry, ...]:
    """The transforms averaged, the identity first: 4 flips, or 8 with the transposes."""
    transposes = (False,) if astigmatic else (False, True)
    return tuple(Symmetry(h, w, t) for t in transposes for h in (False, True)
                 for w in (False, True))


def transform(inputs: np.ndarray, s: Symmetry) -> np.ndarray:
    """Network inputs [B, H, W, C] as the symmetry ``s`` moves them."""
    out = inputs
    if s.flip_height:
        out = out[:, ::-1]
    if s.flip_width:
        out = out[:, :, ::-1]
    if s.transpose:
        out = np.swapaxes(out, 1, 2)
    return np.ascontiguousarray(out)


def restore(outputs: np.ndarray, s: Symmetry, channels: tuple[str, ...]) -> np.ndarray:
    """Output maps [B, H', W', K] of a transformed input, back on the frame's grid, with the
    ``x`` / ``y`` (and ``sigma_x`` / ``sigma_y``) channels of ``channels`` moved with them."""
    out = np.array(outputs, dtype=np.float32, copy=True)
    index = {name: i for i, name in enumerate(channels)}
    if s.transpose:
        out = np.swapaxes(out, 1, 2).copy()
        for a, b in (("x", "y"), ("sigma_x", "sigma_y")):
            if a in index and b in index:
                out[..., [index[a], index[b]]] = out[..., [index[b], index[a]]]
    if s.flip_width:
        out = out[:, :, ::-1]
        if "x" in index:
            out[..., index["x"]] *= -1.0
    if s.flip_height:
        out = out[:, ::-1]
        if "y" in index:
            out[..., index["y"]] *= -1.0
    return np.ascontiguousarray(out)


def averaged(forward, inputs: np.ndarray, channels: tuple[str, ...], astigmatic: bool,
             plain: np.ndarray | None = None) -> np.ndarray:
    """The mean of ``forward`` (inputs [B, H, W, C] -> outputs [B, H', W', K]) over the
    symmetries, each output restored onto the frame; ``plain``: the identity's output if
    already computed."""
    total = None
    for s in symmetries(astigmatic):
        if s == Symmetry(False, False, False) and plain is not None:
            out = np.asarray(plain, np.float32)
        else:
            out = restore(np.asarray(forward(transform(inputs, s))), s, channels)
        total = out.astype(np.float64) if total is None else total + out
    return (total / len(symmetries(astigmatic))).astype(np.float32)
