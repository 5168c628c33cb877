"""Fiducial-free drift correction of a localization table (``loczoo drift``).

The frames are cut into consecutive segments, each holding the localizations of a sub-stack;
the structure is the same in every segment, only shifted by the stage drift. Two estimators:

- ``rcc``, redundant cross-correlation (Wang et al., Opt Express 22:15982, 2014): each segment
  is rendered as a 2D histogram, every pair of segments is cross-correlated (FFT), the peak
  (sub-bin, by a parabola through its neighbours) gives their relative shift, and the drift of
  every segment follows from all pairs by least squares, pairs whose residual is far above the
  rest dropped and the system solved again. The axial drift, for 3D tables, comes the same
  way from the cross-correlation of the segments' z histograms after the lateral correction,
  each localization counted only where the reference holds structure within 2 bins laterally.
- ``aim``, adaptive intersection maximisation (after Ma et al., 2024, as in Picasso): segment
  by segment against a reference that grows with every corrected segment, the shift that
  brings its localizations onto the reference's: coarse from the lateral cross-correlation
  peak (and, in 3D, the mode of the z displacements to reference localizations nearby), then
  refined by the median displacement to the reference localizations within a radius that
  shrinks to one bin.

Both give the drift at each segment's centre; the trace for every frame is the piecewise-
linear interpolation between them (extended linearly before the first and after the last
centre). The trace is the position of the sample relative to the first frame: corrected
coordinates are the measured ones minus it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from loczoo.errors import LoczooError
from loczoo.outputs import atomic_path
from loczoo.smlm.localizations import Localizations

METHODS = ("rcc", "aim")
MIN_SEGMENTS = 3
MIN_PER_SEGMENT = 50
AIM_SEGMENT_POINTS = 20_000     # localizations of a segment matched (a random subset beyond)
AIM_REFERENCE_POINTS = 200_000  # reference localizations kept (a random subset beyond)


@dataclass(frozen=True)
class DriftTrace:
    """Drift (nm) at every frame ``frame`` (1-based, consecutive): the sample's displacement
    from its position in the first frame. ``z`` is None for 2D tables."""

    frame: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray | None = None

    def at(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(x, y, z) drift at each of ``frames`` (frames outside the trace: the nearest end)."""
        index = np.clip(np.asarray(frames, np.int64) - int(self.frame[0]), 0,
                        len(self.frame) - 1)
        return self.x[index], self.y[index], None if self.z is None else self.z[index]


def segments(frames: np.ndarray, segment_frames: int | None, minimum: int = MIN_SEGMENTS):
    """(segment index per localization, segment centre frames): consecutive blocks of
    ``segment_frames`` frames (default: as many segments as give about 2,000 localizations
    each, between 5 and 40). LoczooError when fewer than ``minimum`` segments hold
    ``MIN_PER_SEGMENT`` localizations."""
    first, last = int(frames.min()), int(frames.max())
    span = last - first + 1
    if segment_frames is None:
        count = int(np.clip(len(frames) // 2000, 5, 40))
        segment_frames = max(1, math.ceil(span / count))
    index = (frames - first) // segment_frames
    n = int(index.max()) + 1
    counts = np.bincount(index, minlength=n)
    if n < minimum or (counts >= MIN_PER_SEGMENT).sum() < minimum:
        raise LoczooError(f"too few frames or localizations for drift segments: {span} frames "
                          f"in segments of {segment_frames} give {n} segments, "
                          f"{int((counts >= MIN_PER_SEGMENT).sum())} with at least "
                          f"{MIN_PER_SEGMENT} localizations (at least {minimum} needed); "
                          f"use a smaller --segment")
    centres = first + (np.arange(n) + 0.5) * segment_frames - 0.5
    return index, centres, counts


# ------------------------------------------------------------------------------------ RCC


def _histograms(coords: np.ndarray, index: np.ndarray, n: int, bin_nm: float,
                origin: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """[n, *shape] float32 histograms of ``coords`` [N, D] per segment."""
    cells = np.floor((coords - origin) / bin_nm).astype(np.int64)
    inside = np.all((cells >= 0) & (cells < np.array(shape)), axis=1)
    flat = np.ravel_multi_index(tuple(cells[inside].T), shape)
    keys = index[inside] * int(np.prod(shape)) + flat
    counts = np.bincount(keys, minlength=n * int(np.prod(shape)))
    return counts.reshape((n,) + shape).astype(np.float32)


def _peak(corr: np.ndarray) -> np.ndarray:
    """Sub-bin position of the maximum of a (fft-shifted) correlation, per axis, relative to
    the centre: a parabola through the maximum and its two neighbours along each axis."""
    pos = np.array(np.unravel_index(int(np.argmax(corr)), corr.shape))
    out = pos.astype(np.float64)
    for axis in range(corr.ndim):
        if 0 < pos[axis] < corr.shape[axis] - 1:
            lo, hi = pos.copy(), pos.copy()
            lo[axis] -= 1
            hi[axis] += 1
            a, b, c = corr[tuple(lo)], corr[tuple(pos)], corr[tuple(hi)]
            denom = a - 2.0 * b + c
            if denom < 0:
                out[axis] += 0.5 * (a - c) / denom
    return out - np.array([s // 2 for s in corr.shape])


def _pair_shifts(images: np.ndarray, valid: np.ndarray, max_shift_bins: float):
    """(i, j, shift of j relative to i in bins [D]) for every pair of valid segments, from
    the cross-correlation peak within ``max_shift_bins``."""
    axes = tuple(range(1, images.ndim))
    spectra = np.fft.rfftn(images, axes=axes)
    shape = images.shape[1:]
    centre = np.array([s // 2 for s in shape])
    grid = np.stack(np.meshgrid(*[np.arange(s) - c for s, c in zip(shape, centre)],
                                indexing="ij"), axis=-1)
    window = np.sqrt((grid ** 2).sum(axis=-1)) <= max_shift_bins
    rows = []
    ids = np.flatnonzero(valid)
    for a, i in enumerate(ids):
        for j in ids[a + 1:]:
            corr = np.fft.irfftn(np.conj(spectra[i]) * spectra[j], s=shape, axes=tuple(
                range(len(shape))))
            corr = np.fft.fftshift(corr)
            corr = np.where(window, corr, -np.inf)
            rows.append((i, j, _peak(corr)))
    return rows


def _solve(pairs, n: int, valid: np.ndarray, dims: int) -> np.ndarray:
    """Drift [n, dims] (segment 0 = the first valid one at 0) from relative shifts
    d_j - d_i = r_ij by least squares; pairs with residuals above 3 x their median (and above
    1 bin) are dropped once and the system solved again. Invalid segments are NaN."""
    ids = np.flatnonzero(valid)
    col = {s: k for k, s in enumerate(ids[1:])}   # the first valid segment is fixed at 0
    keep = np.ones(len(pairs), bool)
    for _ in range(2):
        a = np.zeros((int(keep.sum()), len(col)))
        b = np.zeros((int(keep.sum()), dims))
        rows = [p for p, k in zip(pairs, keep) if k]
        for r, (i, j, shift) in enumerate(rows):
            if j in col:
                a[r, col[j]] += 1.0
            if i in col:
                a[r, col[i]] -= 1.0
            b[r] = shift
        solution = np.linalg.lstsq(a, b, rcond=None)[0]
        full = np.zeros((n, dims))
        full[ids[1:]] = solution
        residual = np.array([np.linalg.norm(full[j] - full[i] - s) for i, j, s in pairs])
        limit = max(1.0, 3.0 * float(np.median(residual[keep])))
        new_keep = residual <= limit
        # Every segment must stay connected to the system.
        if np.array_equal(new_keep, keep) or new_keep.sum() < len(ids) - 1:
            break
        keep = new_keep
    out = np.full((n, dims), np.nan)
    out[ids] = full[ids]
    return out


def _rcc(locs: Localizations, index, n, valid, bin_nm, max_drift_nm, use_z):
    xy = np.stack([locs.y, locs.x], axis=1)           # rows, columns
    origin = xy.min(axis=0) - 2.0 * bin_nm
    shape = tuple(int(v) for v in np.ceil((xy.max(axis=0) - origin) / bin_nm) + 3)
    images = _histograms(xy, index, n, bin_nm, origin, shape)
    pairs = _pair_shifts(images, valid, max_drift_nm / bin_nm)
    drift_yx = _solve(pairs, n, valid, 2) * bin_nm
    drift_z = None
    if use_z:
        drift_z = _rcc_z(locs, index, n, valid, drift_yx, bin_nm, max_drift_nm)
    return drift_yx[:, 1], drift_yx[:, 0], drift_z


def _rcc_z(locs, index, n, valid, drift_yx, bin_nm, max_drift_nm):
    """Axial drift per segment: z histograms cross-correlated pairwise after the lateral
    correction, each localization counted with the z of the structure around it (the
    localizations of the other segments within 2 lateral bins), so that only z offsets of the
    same structure add up."""
    z_bin = bin_nm
    corrected = np.stack([locs.x - drift_yx[index, 1], locs.y - drift_yx[index, 0]], axis=1)
    z = np.asarray(locs.z, np.float64)
    z_lo = np.nanmin(z) - max_drift_nm - 2.0 * z_bin
    n_bins = int(np.ceil((np.nanmax(z) + max_drift_nm + 2.0 * z_bin - z_lo) / z_bin)) + 1
    # 2D (lateral cell, z) histograms, cells of 2 lateral bins: each segment's z profile per
    # place; their products summed over places make the cross-correlation of matching
    # structure only.
    cell = np.floor(corrected / (2.0 * bin_nm)).astype(np.int64)
    cell -= cell.min(axis=0)
    cell_id = cell[:, 0] * (int(cell[:, 1].max()) + 1) + cell[:, 1]
    _, cell_id = np.unique(cell_id, return_inverse=True)
    zb = np.floor((z - z_lo) / z_bin).astype(np.int64)
    ok = np.isfinite(z) & (zb >= 0) & (zb < n_bins)
    n_cells = int(cell_id.max()) + 1
    from scipy.sparse import csr_matrix

    mats = []
    for s in range(n):
        sel = ok & (index == s)
        mats.append(csr_matrix((np.ones(int(sel.sum())), (cell_id[sel], zb[sel])),
                               shape=(n_cells, n_bins)))
    max_bins = int(np.ceil(max_drift_nm / z_bin))
    pairs = []
    ids = np.flatnonzero(valid)
    for a, i in enumerate(ids):
        for j in ids[a + 1:]:
            # corr[k] = sum over places and z of h_i(z) h_j(z + k)
            prod = (mats[i].T @ mats[j]).toarray()           # [z_i, z_j]
            corr = np.full(2 * max_bins + 1, 0.0)
            for k in range(-max_bins, max_bins + 1):
                corr[k + max_bins] = np.trace(prod, offset=k)
            if corr.max() <= 0:
                continue
            pairs.append((i, j, _peak(corr)))
    if not pairs:
        raise LoczooError("the segments share no structure in z: cannot estimate the axial drift")
    return _solve(pairs, n, valid, 1)[:, 0] * z_bin


# ------------------------------------------------------------------------------------ AIM


def _aim(locs: Localizations, index, n, valid, bin_nm, max_drift_nm, use_z):
    coords = np.stack([locs.x, locs.y] + ([locs.z] if use_z else []), axis=1).astype(float)
    dims = coords.shape[1]
    drift = np.full((n, dims), np.nan)
    ids = np.flatnonzero(valid)
    drift[ids[0]] = 0.0
    reference = coords[index == ids[0]]
    origin = coords[:, :2].min(axis=0) - max_drift_nm - 2.0 * bin_nm
    shape = tuple(int(v) for v in np.ceil((coords[:, :2].max(axis=0) + max_drift_nm
                                           - origin) / bin_nm) + 3)
    rng = np.random.default_rng(0)

    def at_most(array, count):  # a reproducible random subset: the cost stays bounded
        return array if len(array) <= count else array[rng.choice(len(array), count, False)]

    for s in ids[1:]:
        points = coords[index == s]
        sample = at_most(points, AIM_SEGMENT_POINTS)
        # Coarse: the lateral cross-correlation peak of the segment against the reference.
        pair = np.stack([_histograms(reference[:, 1::-1], np.zeros(len(reference), int), 1,
                                     bin_nm, origin[::-1], shape[::-1])[0],
                         _histograms(points[:, 1::-1], np.zeros(len(points), int), 1,
                                     bin_nm, origin[::-1], shape[::-1])[0]])
        (_, _, yx), = _pair_shifts(pair, np.ones(2, bool), max_drift_nm / bin_nm)
        shift = np.zeros(dims)
        shift[:2] = yx[::-1] * bin_nm
        if use_z:
            shift[2] = _z_mode(reference, sample - shift, 2.0 * bin_nm, max_drift_nm, bin_nm)
        # Fine: the mean displacement to the reference localizations the segment intersects,
        # in shrinking radii.
        tree = cKDTree(reference[:, :2])
        for radius in (2.0 * bin_nm, bin_nm, bin_nm):
            shifted = sample - shift
            source, target = _neighbours(tree, shifted[:, :2], radius)
            if source.size == 0:
                break
            disp = shifted[source] - reference[target]
            if use_z:
                disp = disp[np.abs(disp[:, 2]) <= 2.0 * radius]
            if len(disp) == 0:
                break
            shift = shift + np.median(disp, axis=0)
        drift[s] = shift
        # The corrected segment joins the reference: later segments meet more structure.
        reference = at_most(np.concatenate([reference, points - shift]), AIM_REFERENCE_POINTS)
    return drift[:, 0], drift[:, 1], drift[:, 2] if use_z else None


def _neighbours(tree: cKDTree, points: np.ndarray, radius: float, k: int = 16):
    """(point index, tree index) pairs of each point's nearest ``k`` tree points within
    ``radius`` (vectorised; enough to find the mode of the displacements)."""
    dist, near = tree.query(points, k=min(k, tree.n), distance_upper_bound=radius)
    dist, near = dist.reshape(len(points), -1), near.reshape(len(points), -1)
    found = np.isfinite(dist)
    return np.nonzero(found)[0], near[found]


def _z_mode(reference, points, lateral_nm, max_drift_nm, bin_nm) -> float:
    """The most common z displacement between ``points`` and the ``reference``
    localizations within ``lateral_nm`` of them laterally (a histogram of ``bin_nm`` bins,
    refined by the mean near its peak)."""
    source, target = _neighbours(cKDTree(reference[:, :2]), points[:, :2], lateral_nm)
    if source.size == 0:
        return 0.0
    dz = points[source, 2] - reference[target, 2]
    dz = dz[np.abs(dz) <= max_drift_nm]
    if dz.size == 0:
        return 0.0
    edges = np.arange(-max_drift_nm, max_drift_nm + bin_nm, bin_nm)
    counts, edges = np.histogram(dz, edges)
    peak = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    close = np.abs(dz - peak) <= bin_nm
    return float(dz[close].mean())


# ----------------------------------------------------------------------------- public API


def estimate_drift(locs: Localizations, method: str = "rcc", segment_frames: int | None = None,
                   bin_nm: float = 30.0, max_drift_nm: float = 1000.0,
                   use_z: bool | None = None) -> DriftTrace:
    """The drift trace of ``locs`` (see the module docstring). ``bin_nm``: RCC's histogram
    bin and AIM's fine radius; ``max_drift_nm``: the largest shift searched (RCC) and AIM's
    coarse radius; ``use_z``: estimate the axial drift too (default: when the table has z)."""
    if method not in METHODS:
        raise LoczooError(f"drift method must be one of {', '.join(METHODS)}, got {method!r}")
    if len(locs) == 0:
        raise LoczooError("the table has no localizations")
    if use_z is None:
        use_z = locs.has("z")
    if use_z and not np.isfinite(locs.z).all():
        raise LoczooError("the axial drift needs a z for every localization (or pass no z)")
    frames = np.asarray(locs.frame, np.int64)
    index, centres, counts = segments(frames, segment_frames)
    n = len(centres)
    valid = counts >= MIN_PER_SEGMENT
    if method == "rcc":
        dx, dy, dz = _rcc(locs, index, n, valid, bin_nm, max_drift_nm, use_z)
    else:
        dx, dy, dz = _aim(locs, index, n, valid, bin_nm, max_drift_nm, use_z)
    all_frames = np.arange(int(frames.min()), int(frames.max()) + 1)
    known = valid & np.isfinite(dx)

    def trace(values):
        # Piecewise linear through the segment centres, extended linearly past the first and
        # last (drift keeps its pace over half a segment better than it stops).
        c, v = centres[known], values[known]
        out = np.interp(all_frames, c, v)
        if len(c) >= 2:
            before, after = all_frames < c[0], all_frames > c[-1]
            out[before] = v[0] + (all_frames[before] - c[0]) * (v[1] - v[0]) / (c[1] - c[0])
            out[after] = v[-1] + (all_frames[after] - c[-1]) * (v[-1] - v[-2]) / (c[-1] - c[-2])
        return out

    x, y = trace(dx), trace(dy)
    z = trace(dz) if dz is not None else None
    # Relative to the first frame.
    return DriftTrace(all_frames, x - x[0], y - y[0], None if z is None else z - z[0])


def apply_drift(locs: Localizations, trace: DriftTrace) -> Localizations:
    """``locs`` with the drift of each one's frame subtracted (z too when the trace has it)."""
    dx, dy, dz = trace.at(locs.frame)
    z = locs.z if dz is None else locs.z - dz
    return Localizations(frame=locs.frame, x=locs.x - dx, y=locs.y - dy, z=z,
                         photons=locs.photons, prob=locs.prob, sigma_x=locs.sigma_x,
                         sigma_y=locs.sigma_y, sigma_z=locs.sigma_z)


TRACE_COLUMNS = ("frame", "x [nm]", "y [nm]", "z [nm]")


def write_trace(path: str | Path, trace: DriftTrace) -> Path:
    """The trace as CSV: frame, x [nm], y [nm] (and z [nm]), written atomically."""
    path = Path(path)
    names = TRACE_COLUMNS[:3] + (TRACE_COLUMNS[3:] if trace.z is not None else ())
    with atomic_path(path) as tmp, open(tmp, "w", newline="\n", encoding="utf-8") as fh:
        fh.write(",".join(f'"{n}"' for n in names) + "\n")
        for row in range(len(trace.frame)):
            values = [f"{int(trace.frame[row])}", f"{trace.x[row]:.3f}", f"{trace.y[row]:.3f}"]
            if trace.z is not None:
                values.append(f"{trace.z[row]:.3f}")
            fh.write(",".join(values) + "\n")
    return path


def read_trace(path: str | Path) -> DriftTrace:
    """A trace written by ``write_trace``; one-line errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise LoczooError(f"drift trace {path} does not exist")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0][:3]) != TRACE_COLUMNS[:3]:
        raise LoczooError(f"{path} is not a drift trace (its header must start with "
                          f"{', '.join(TRACE_COLUMNS[:3])})")
    has_z = tuple(rows[0]) == TRACE_COLUMNS
    try:
        data = np.array([[float(v) for v in row] for row in rows[1:] if row], np.float64)
    except ValueError:
        raise LoczooError(f"{path} holds a value that is not a number") from None
    if data.size == 0 or data.shape[1] != len(rows[0]) or not np.isfinite(data).all():
        raise LoczooError(f"{path} has no rows, rows of the wrong length, or NaN values")
    frames = data[:, 0].astype(np.int64)
    if not np.array_equal(frames, np.arange(frames[0], frames[0] + len(frames))):
        raise LoczooError(f"{path}: the frames must be consecutive")
    return DriftTrace(frames, data[:, 1], data[:, 2], data[:, 3] if has_z else None)
