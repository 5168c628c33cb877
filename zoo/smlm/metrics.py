"""Localization metrics: SMLM-challenge matching and scores, chance level, precision bounds.

Implemented from the formulas in docs/methods.md section 6 (no code from the challenge, DECODE
or GDSC). Matching pairs ground-truth and predicted localizations frame by frame within a
lateral (and optionally axial) tolerance, either optimally (Hungarian: most pairs, then smallest
total distance) or greedily (the challenge's GS-NN). ``evaluate`` turns a matching into the
challenge numbers (Jaccard, RMSE, efficiency). The precision bounds give per-axis localization
precision limits (nm) for a Gaussian PSF on a pixelated, Poisson (optionally EMCCD) camera.

numpy and scipy only: this module must stay importable without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import erf, spence

from loczoo.errors import LoczooError
from loczoo.smlm.localizations import Localizations

METHODS = ("hungarian", "greedy")
ALPHA_LATERAL = 1.0  # nm^-1, efficiency weight of lateral RMSE (Sage et al. 2019)
ALPHA_AXIAL = 0.5  # nm^-1, efficiency weight of axial RMSE


@dataclass
class Matching:
    """Result of :func:`match`.

    Attributes:
        truth_index: Row indices of the matched ground-truth localizations (original table).
        pred_index: Row indices of the paired predictions, aligned with ``truth_index``.
        tp: Number of pairs.
        fp: Predictions left unpaired (after border exclusion).
        fn: Ground-truth localizations left unpaired (after border exclusion).
        dx: Paired x differences, prediction minus truth (nm).
        dy: Paired y differences (nm).
        dz: Paired z differences (nm); NaN where either z is unknown.
    """

    truth_index: np.ndarray
    pred_index: np.ndarray
    tp: int
    fp: int
    fn: int
    dx: np.ndarray
    dy: np.ndarray
    dz: np.ndarray


def _inside(table: Localizations, border_nm: float, fov_nm: tuple[float, float] | None):
    """Boolean mask of rows kept by the border exclusion (x against width, y against height)."""
    keep = np.ones(len(table), dtype=bool)
    if border_nm > 0:
        if fov_nm is None:
            raise LoczooError("border_nm > 0 needs fov_nm=(height_nm, width_nm)")
        height, width = float(fov_nm[0]), float(fov_nm[1])
        keep &= (table.x >= border_nm) & (table.x <= width - border_nm)
        keep &= (table.y >= border_nm) & (table.y <= height - border_nm)
    return keep


def _frame_slices(frames_sorted: np.ndarray, wanted: np.ndarray):
    """Start and stop of each wanted frame in a frame-sorted array."""
    return (np.searchsorted(frames_sorted, wanted, side="left"),
            np.searchsorted(frames_sorted, wanted, side="right"))


# Frames whose truth x prediction count is at most this are matched on the dense distance
# matrix (about 50 bytes per cell); larger ones on the pairs within the tolerance, found with a
# KD-tree, split into independent groups (connected components). Both give the same pairs.
DENSE_MAX_CELLS = 1 << 20
# Most candidate pairs (within the lateral tolerance) one frame may have: each costs about
# 150 bytes while matching, so this bounds the memory at about 1.5 GB.
MAX_CANDIDATE_PAIRS = 10_000_000


def _admissible_cost(dx, dy, dz, tol, ax_tol):
    """Admissible mask and cost of pairs (elementwise: any shape). The one definition for the
    dense matrix and the candidate pairs, so both paths see bit-identical costs."""
    lateral = np.hypot(dx, dy)
    admissible = lateral <= tol
    cost = lateral
    if ax_tol is not None:
        known = np.isfinite(dz)
        admissible &= ~known | (np.abs(np.where(known, dz, 0.0)) <= ax_tol)
        cost = np.where(known, np.sqrt(lateral**2 + np.where(known, dz, 0.0) ** 2), lateral)
    return admissible, cost


def _greedy(rows, cols, cost, n_rows, n_cols):
    """Accept pairs in order of increasing cost (ties: in the given order) while both ends are
    free. ``rows``/``cols`` must be in row-major order for ties to match the dense path."""
    order = np.argsort(cost, kind="stable")
    used_r = np.zeros(n_rows, bool)
    used_c = np.zeros(n_cols, bool)
    out_r, out_c = [], []
    for r, c in zip(rows[order].tolist(), cols[order].tolist()):
        if not used_r[r] and not used_c[c]:
            used_r[r] = used_c[c] = True
            out_r.append(r)
            out_c.append(c)
    return np.asarray(out_r, np.int64), np.asarray(out_c, np.int64)


def _hungarian_dense(sub_ok, sub_cost):
    """Most admissible pairs, then least total cost, on a dense block whose every row and
    column has an admissible partner; returns local (row, col) indices."""
    # Any assignment with one more admissible pair must be cheaper: big > (#pairs) * max cost.
    big = (min(sub_ok.shape) + 1) * (float(sub_cost[sub_ok].max()) + 1.0)
    r, c = linear_sum_assignment(np.where(sub_ok, sub_cost, big))
    ok = sub_ok[r, c]
    return r[ok], c[ok]


def _hungarian_sparse(r, c, cost, n_rows, n_cols):
    """The same optimum as ``_hungarian_dense`` from the edge list alone (for large groups):
    a full matching on a graph where each row and column may also pair with its own dummy at
    cost big / 2, and the dummies of a real pair (i, j) pair with each other at no cost, so
    that every matching of k real pairs costs its distances + big / 2 (n_rows + n_cols - 2 k).
    All weights are shifted by 1 (a full matching has n_rows + n_cols edges, so the shift
    changes nothing), as the sparse solver needs non-zero weights."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    big = (min(n_rows, n_cols) + 1) * (float(cost.max()) + 1.0)
    rows_i, cols_j = np.arange(n_rows), np.arange(n_cols)
    left = np.concatenate([r, rows_i, n_rows + cols_j, n_rows + c])
    right = np.concatenate([c, n_cols + rows_i, cols_j, n_cols + r])
    weight = np.concatenate([cost, np.full(n_rows + n_cols, big / 2.0), np.zeros(r.size)]) + 1
    n = n_rows + n_cols
    graph = coo_matrix((weight, (left, right)), shape=(n, n)).tocsr()
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    real = (row_ind < n_rows) & (col_ind < n_cols)
    return row_ind[real].astype(np.int64), col_ind[real].astype(np.int64)


def _pair_frame(tx, ty, tz, px, py, pz, tol, ax_tol, method, frame=None):
    """Match one frame; returns local (row, col) index arrays."""
    if len(tx) * len(px) > DENSE_MAX_CELLS:
        return _pair_frame_sparse(tx, ty, tz, px, py, pz, tol, ax_tol, method, frame)
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, never admissible
        dx = px[None, :] - tx[:, None]
        dy = py[None, :] - ty[:, None]
        dz = pz[None, :] - tz[:, None] if ax_tol is not None else None
        admissible, cost = _admissible_cost(dx, dy, dz, tol, ax_tol)
    if not admissible.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if method == "greedy":
        rows, cols = np.nonzero(admissible)
        return _greedy(rows, cols, cost[rows, cols], len(tx), len(px))
    # Hungarian on the rows / columns that have at least one admissible partner.
    rr = np.nonzero(admissible.any(axis=1))[0]
    cc = np.nonzero(admissible.any(axis=0))[0]
    r, c = _hungarian_dense(admissible[np.ix_(rr, cc)], cost[np.ix_(rr, cc)])
    return rr[r], cc[c]


def _candidate_pairs(tx, ty, px, py, tol, frame=None):
    """(truth row, prediction column) of every pair that may be within the lateral tolerance,
    in row-major order, from KD-trees (a radius a little wider than ``tol``: the exact test is
    ``_admissible_cost``). Rows with a non-finite x or y never match and are left out."""
    from scipy.spatial import cKDTree

    t_ok = np.nonzero(np.isfinite(tx) & np.isfinite(ty))[0]
    p_ok = np.nonzero(np.isfinite(px) & np.isfinite(py))[0]
    empty = np.zeros(0, np.int64)
    if t_ok.size == 0 or p_ok.size == 0:
        return empty, empty
    t_tree = cKDTree(np.column_stack([tx[t_ok], ty[t_ok]]))
    p_tree = cKDTree(np.column_stack([px[p_ok], py[p_ok]]))
    radius = tol * (1.0 + 1e-9) + 1e-9
    count = int(t_tree.count_neighbors(p_tree, radius))  # counted without storing the pairs
    if count > MAX_CANDIDATE_PAIRS:
        where = "a frame" if frame is None else f"frame {frame}"
        raise LoczooError(
            f"{where} has {count} prediction / ground-truth pairs within {tol:g} nm "
            f"({len(px)} localizations vs {len(tx)} ground-truth emitters), more than the "
            f"{MAX_CANDIDATE_PAIRS} that matching handles; use a smaller tolerance "
            "(--tolerance) or check that the frame numbers are right")
    pairs = t_tree.sparse_distance_matrix(p_tree, radius, output_type="ndarray")
    rows, cols = t_ok[pairs["i"]], p_ok[pairs["j"]]
    order = np.lexsort((cols, rows))
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def _pair_frame_sparse(tx, ty, tz, px, py, pz, tol, ax_tol, method, frame=None):
    """``_pair_frame`` for dense frames: memory grows with the pairs within the tolerance, not
    with truth x predictions. The costs are computed as in the dense path; the Hungarian
    optimum splits into the connected components of the admissible pairs, solved one by one
    (a lone pair directly, small groups densely, large ones with a sparse solver)."""
    rows, cols = _candidate_pairs(tx, ty, px, py, tol, frame)
    if rows.size == 0:
        return rows, cols
    with np.errstate(invalid="ignore"):
        dz = pz[cols] - tz[rows] if ax_tol is not None else None
        admissible, cost = _admissible_cost(px[cols] - tx[rows], py[cols] - ty[rows], dz, tol,
                                            ax_tol)
    rows, cols, cost = rows[admissible], cols[admissible], cost[admissible]
    if rows.size == 0:
        return rows, cols
    if method == "greedy":
        return _greedy(rows, cols, cost, len(tx), len(px))
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    u_rows, r_local = np.unique(rows, return_inverse=True)
    u_cols, c_local = np.unique(cols, return_inverse=True)
    n_r, n_c = u_rows.size, u_cols.size
    graph = coo_matrix((np.ones(rows.size), (r_local, n_r + c_local)),
                       shape=(n_r + n_c, n_r + n_c))
    _, label = connected_components(graph, directed=False)
    edge_group = label[r_local]
    order = np.argsort(edge_group, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_group[order])) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [order.size]])
    single = (stops - starts) == 1  # a lone admissible pair is matched as it is
    out_r = [rows[order[starts[single]]]]
    out_c = [cols[order[starts[single]]]]
    for a, b in zip(starts[~single].tolist(), stops[~single].tolist()):
        edges = order[a:b]
        g_rows, g_r = np.unique(rows[edges], return_inverse=True)
        g_cols, g_c = np.unique(cols[edges], return_inverse=True)
        if g_rows.size * g_cols.size <= DENSE_MAX_CELLS:
            ok = np.zeros((g_rows.size, g_cols.size), bool)
            sub = np.zeros((g_rows.size, g_cols.size))
            ok[g_r, g_c] = True
            sub[g_r, g_c] = cost[edges]
            r, c = _hungarian_dense(ok, sub)
        else:
            r, c = _hungarian_sparse(g_r, g_c, cost[edges], g_rows.size, g_cols.size)
        out_r.append(g_rows[r])
        out_c.append(g_cols[c])
    return np.concatenate(out_r).astype(np.int64), np.concatenate(out_c).astype(np.int64)


def match(truth: Localizations, pred: Localizations, tolerance_nm: float = 250.0,
          axial_tolerance_nm: float | None = None, method: str = "hungarian",
          border_nm: float = 0.0, fov_nm: tuple[float, float] | None = None) -> Matching:
    """Pair predictions with ground truth frame by frame.

    A pair is admissible when its lateral distance is <= ``tolerance_nm`` and, if
    ``axial_tolerance_nm`` is given and both z are finite, ``|dz| <= axial_tolerance_nm``.
    The distance minimised is lateral, or 3D where the axial tolerance is given and both z known.

    Args:
        truth: Ground-truth localizations.
        pred: Predicted localizations.
        tolerance_nm: Lateral tolerance radius (nm).
        axial_tolerance_nm: Axial tolerance (nm); None for a 2D evaluation.
        method: "hungarian" (most pairs, then least total distance) or "greedy" (challenge
            GS-NN: repeatedly accept the globally nearest admissible pair).
        border_nm: Remove rows with x or y < border or > fov - border before matching (the 2016
            challenge uses 450 nm). 0 disables it.
        fov_nm: Field of view (height_nm, width_nm); required when ``border_nm > 0``.

    Returns:
        The :class:`Matching`; indices refer to the original tables.

    Frames with more than ``DENSE_MAX_CELLS`` truth x prediction cells are matched on the
    pairs within the tolerance only (KD-trees, then each connected group of pairs on its
    own), with the same result; a frame with more than ``MAX_CANDIDATE_PAIRS`` such pairs is
    refused with a ``LoczooError``.
    """
    if method not in METHODS:
        raise LoczooError(f"unknown matching method {method!r}; use one of {METHODS}")
    if not tolerance_nm > 0:
        raise LoczooError(f"tolerance_nm must be positive, got {tolerance_nm}")
    if axial_tolerance_nm is not None and not axial_tolerance_nm > 0:
        raise LoczooError(f"axial_tolerance_nm must be positive, got {axial_tolerance_nm}")
    t_keep = np.nonzero(_inside(truth, border_nm, fov_nm))[0]
    p_keep = np.nonzero(_inside(pred, border_nm, fov_nm))[0]
    t_idx = t_keep[np.argsort(truth.frame[t_keep], kind="stable")]
    p_idx = p_keep[np.argsort(pred.frame[p_keep], kind="stable")]
    t_frames, p_frames = truth.frame[t_idx], pred.frame[p_idx]
    common = np.intersect1d(t_frames, p_frames)
    t_start, t_stop = _frame_slices(t_frames, common)
    p_start, p_stop = _frame_slices(p_frames, common)
    tx, ty, tz = truth.x[t_idx], truth.y[t_idx], truth.z[t_idx]
    px, py, pz = pred.x[p_idx], pred.y[p_idx], pred.z[p_idx]
    rows, cols = [], []
    for f, a, b, c, d in zip(common.tolist(), t_start.tolist(), t_stop.tolist(),
                             p_start.tolist(), p_stop.tolist()):
        r, k = _pair_frame(tx[a:b], ty[a:b], tz[a:b], px[c:d], py[c:d], pz[c:d],
                           tolerance_nm, axial_tolerance_nm, method, f)
        rows.append(r + a)
        cols.append(k + c)
    ti = t_idx[np.concatenate(rows)] if rows else np.zeros(0, np.int64)
    pi = p_idx[np.concatenate(cols)] if cols else np.zeros(0, np.int64)
    order = np.argsort(ti, kind="stable")
    ti, pi = ti[order].astype(np.int64), pi[order].astype(np.int64)
    tp = int(ti.size)
    return Matching(truth_index=ti, pred_index=pi, tp=tp, fp=int(p_keep.size) - tp,
                    fn=int(t_keep.size) - tp, dx=pred.x[pi] - truth.x[ti],
                    dy=pred.y[pi] - truth.y[ti], dz=pred.z[pi] - truth.z[ti])


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else 0.0


def _efficiency(jaccard: float, rmse: float, alpha: float) -> float:
    return float(100.0 - np.sqrt((100.0 - 100.0 * jaccard) ** 2 + alpha**2 * rmse**2))


def evaluate(truth: Localizations, pred: Localizations, tolerance_nm: float = 250.0,
             axial_tolerance_nm: float | None = None, method: str = "hungarian",
             border_nm: float = 0.0, fov_nm: tuple[float, float] | None = None) -> dict:
    """Challenge scores of ``pred`` against ``truth`` (arguments as in :func:`match`).

    Keys: tp, fp, fn, precision, recall, f1, jaccard, rmse_lateral, rmse_axial, rmse_3d, rmse_x,
    rmse_y, bias_x, bias_y, bias_z, efficiency_lateral, efficiency_axial, efficiency_3d.

    * ``jaccard`` = TP / (TP + FP + FN) is a fraction in [0, 1]; the challenge reports it in
      percent (multiply by 100).
    * precision, recall, f1 and jaccard are 0 where their denominator is 0 (no predictions, no
      truth, or both empty), so the function never raises on empty input.
    * ``rmse_lateral`` = sqrt(sum(dx^2 + dy^2) / TP) is radial (about sqrt(2) x the per-axis
      error); ``rmse_x``/``rmse_y`` are per axis. ``rmse_axial`` = sqrt(mean dz^2) over the pairs
      with known z, ``rmse_3d`` = sqrt(mean(dx^2 + dy^2 + dz^2)) over those pairs. Biases are mean
      differences (prediction - truth). All are NaN when TP = 0 (axial ones also without z).
    * efficiency = 100 - sqrt((100 - 100 JI)^2 + alpha^2 RMSE^2) with alpha = 1 nm^-1 lateral and
      0.5 nm^-1 axial (Sage et al. 2019); it can be negative and is NaN when its RMSE is NaN.
      ``efficiency_3d`` is the mean of lateral and axial (NaN without z).
    """
    m = match(truth, pred, tolerance_nm, axial_tolerance_nm, method, border_nm, fov_nm)
    tp, fp, fn = m.tp, m.fp, m.fn
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    jaccard = _ratio(tp, tp + fp + fn)
    nan = float("nan")
    if tp:
        rmse_x = float(np.sqrt(np.mean(m.dx**2)))
        rmse_y = float(np.sqrt(np.mean(m.dy**2)))
        rmse_lat = float(np.sqrt(np.mean(m.dx**2 + m.dy**2)))
        bias_x, bias_y = float(np.mean(m.dx)), float(np.mean(m.dy))
    else:
        rmse_x = rmse_y = rmse_lat = bias_x = bias_y = nan
    z_known = np.isfinite(m.dz)
    if z_known.any():
        dz = m.dz[z_known]
        rmse_ax = float(np.sqrt(np.mean(dz**2)))
        rmse_3d = float(np.sqrt(np.mean(m.dx[z_known] ** 2 + m.dy[z_known] ** 2 + dz**2)))
        bias_z = float(np.mean(dz))
    else:
        rmse_ax = rmse_3d = bias_z = nan
    eff_lat = _efficiency(jaccard, rmse_lat, ALPHA_LATERAL)
    eff_ax = _efficiency(jaccard, rmse_ax, ALPHA_AXIAL)
    return {
        "tp": tp, "fp": fp, "fn": fn,
        "precision": precision, "recall": recall, "f1": f1, "jaccard": jaccard,
        "rmse_lateral": rmse_lat, "rmse_axial": rmse_ax, "rmse_3d": rmse_3d,
        "rmse_x": rmse_x, "rmse_y": rmse_y,
        "bias_x": bias_x, "bias_y": bias_y, "bias_z": bias_z,
        "efficiency_lateral": eff_lat, "efficiency_axial": eff_ax,
        "efficiency_3d": float((eff_lat + eff_ax) / 2.0),
    }


def rmsmd(estimates, emitters) -> float:
    """Root mean square minimum distance (Sun, Sci Rep 2018; methods.md 6.2) between the
    estimated positions of a whole movie (all frames pooled, [K, D] nm) and the distinct true
    emitter positions ([M, D] nm), D = 2 or 3 (z included):
    sqrt((sum_x d(x, S)^2 + sum_s d(s, X)^2) / (K + M)), d(a, B) the distance to B's nearest."""
    from scipy.spatial import cKDTree

    x, s = _points(estimates, "estimates"), _points(emitters, "emitters")
    if x.shape[1] != s.shape[1]:
        raise LoczooError(f"estimates have {x.shape[1]} coordinates, emitters {s.shape[1]}")
    to_truth, _ = cKDTree(s).query(x)
    to_estimates, _ = cKDTree(x).query(s)
    return float(np.sqrt((np.sum(to_truth ** 2) + np.sum(to_estimates ** 2))
                         / (len(x) + len(s))))


def rmsmd_p(estimates, emitters, activations=None) -> float:
    """RMSMD-P (the partitioned RMSMD of the NAIRR-SMLM leaderboard; methods.md 6.2): the
    estimates [K, D] are first shared out among the emitters [M, D]. Each emitter m gets a quota
    K_m = round(K * beta_m), beta_m = 1/M when K < 2M, else its share of the activations
    (``activations`` [M], the number of frames each emitter is on; default 1 each); estimates
    go to emitters greedily, globally nearest pair first, an emitter leaving the pool when its
    quota is full; estimates left over go one per emitter by the same rule (repeated until none
    is left); an emitter with no estimate gets its nearest one. Then
    sqrt((sum_m sum_{x in X_m} |x - s_m|^2 + sum_m min_{x in X_m} |x - s_m|^2) / (K' + M)),
    K' the number of assignments. All pairs are sorted, so K x M must fit in memory."""
    x, s = _points(estimates, "estimates"), _points(emitters, "emitters")
    k, m = len(x), len(s)
    if x.shape[1] != s.shape[1]:
        raise LoczooError(f"estimates have {x.shape[1]} coordinates, emitters {s.shape[1]}")
    if k * m > 20_000_000:
        raise LoczooError(f"RMSMD-P of {k} estimates and {m} emitters needs {k * m:,} pairs; "
                          "evaluate a smaller part of the movie")
    act = np.ones(m) if activations is None else np.asarray(activations, np.float64)
    beta = np.full(m, 1.0 / m) if k < 2 * m else act / act.sum()
    quota = np.rint(k * beta).astype(int)
    d2 = ((x[:, None, :] - s[None, :, :]) ** 2).sum(-1)  # [K, M]
    order = np.argsort(d2, axis=None, kind="stable")
    owner = np.full(k, -1)
    filled = np.zeros(m, int)

    def assign(limit):
        free, room = int((owner < 0).sum()), int(np.maximum(limit - filled, 0).sum())
        for flat in order:
            if free == 0 or room == 0:
                break
            i, j = divmod(int(flat), m)
            if owner[i] < 0 and filled[j] < limit[j]:
                owner[i] = j
                filled[j] += 1
                free, room = free - 1, room - 1

    assign(quota)
    while (owner < 0).any():  # leftovers: one more per emitter, same rule
        before = (owner < 0).sum()
        assign(filled + 1)
        if (owner < 0).sum() == before:
            break
    assigned = owner >= 0
    per_pair = d2[np.flatnonzero(assigned), owner[assigned]]
    total = per_pair.sum()
    nearest_of_own = np.full(m, np.inf)
    np.minimum.at(nearest_of_own, owner[assigned], per_pair)
    lonely = ~np.isfinite(nearest_of_own)
    # An emitter without an estimate gets its nearest one (counted as one more assignment).
    nearest_of_own[lonely] = d2[:, lonely].min(axis=0)
    total += nearest_of_own[lonely].sum()
    count = int(assigned.sum() + lonely.sum())
    return float(np.sqrt((total + nearest_of_own.sum()) / (count + m)))


def _points(values, what: str) -> np.ndarray:
    points = np.asarray(values, np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or len(points) == 0:
        raise LoczooError(f"{what} must be a non-empty [N, 2] or [N, 3] array of positions, got "
                          f"shape {points.shape}")
    if not np.isfinite(points).all():
        raise LoczooError(f"{what} contain NaN or infinite positions")
    return points


def chance_jaccard(truth: Localizations, pred: Localizations | Mapping[int, int] | int | None,
                   fov_nm: tuple[float, float], tolerance_nm: float = 250.0, repeats: int = 3,
                   seed: int = 0, method: str = "hungarian", border_nm: float = 0.0) -> float:
    """Expected Jaccard (fraction) of uniformly random positions: the chance level to report.

    Each repeat draws, per frame, as many uniform positions in [0, width) x [0, height) as
    ``pred`` has in that frame, matches them laterally against ``truth`` and computes the Jaccard;
    the mean over repeats is returned.

    Args:
        truth: Ground-truth localizations.
        pred: Per-frame counts taken from a prediction table, a mapping frame -> count, one count
            used for every truth frame, or None for the truth's own per-frame counts.
        fov_nm: Field of view (height_nm, width_nm).
        tolerance_nm: Lateral tolerance (nm).
        repeats: Monte-Carlo repeats.
        seed: Seed of the numpy random generator.
        method: Matching method, as in :func:`match`.
        border_nm: Border exclusion, as in :func:`match`.

    Returns:
        Mean Jaccard of the random localizations, in [0, 1].
    """
    if repeats < 1:
        raise LoczooError(f"repeats must be >= 1, got {repeats}")
    height, width = float(fov_nm[0]), float(fov_nm[1])
    if not (height > 0 and width > 0):
        raise LoczooError(f"fov_nm must be positive (height_nm, width_nm), got {fov_nm}")
    if pred is None:
        frames, counts = np.unique(truth.frame, return_counts=True)
    elif isinstance(pred, Localizations):
        frames, counts = np.unique(pred.frame, return_counts=True)
    elif isinstance(pred, Mapping):
        frames = np.fromiter((int(k) for k in pred.keys()), np.int64, len(pred))
        counts = np.fromiter((int(v) for v in pred.values()), np.int64, len(pred))
    else:
        frames = np.unique(truth.frame)
        counts = np.full(frames.size, int(pred), np.int64)
    if np.any(counts < 0):
        raise LoczooError("random localization counts must be >= 0")
    frame = np.repeat(frames, counts)
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(repeats):
        rand = Localizations(frame=frame, x=rng.uniform(0.0, width, frame.size),
                             y=rng.uniform(0.0, height, frame.size))
        m = match(truth, rand, tolerance_nm, None, method, border_nm, fov_nm)
        scores.append(_ratio(m.tp, m.tp + m.fp + m.fn))
    return float(np.mean(scores))


# --------------------------------------------------------------------------------------------
# Precision bounds (per axis, nm). b^2 = expected background photons per pixel.


def _sa2(sigma_nm, pixel_nm):
    s = np.asarray(sigma_nm, dtype=np.float64)
    a = np.asarray(pixel_nm, dtype=np.float64)
    return s**2 + a**2 / 12.0


def thompson_precision(photons, sigma_nm, pixel_nm, background_photons):
    """Thompson, Larson & Webb (2002) least-squares precision per axis (nm).

    Var = (s^2 + a^2/12)/N + 8 pi s^4 b^2 / (a^2 N^2).

    Args:
        photons: Signal photons N.
        sigma_nm: PSF standard deviation s (nm).
        pixel_nm: Pixel size a (nm).
        background_photons: Expected background photons per pixel b^2.

    Returns:
        sqrt(Var), broadcast over the inputs.
    """
    n = np.asarray(photons, dtype=np.float64)
    s = np.asarray(sigma_nm, dtype=np.float64)
    a = np.asarray(pixel_nm, dtype=np.float64)
    b2 = np.asarray(background_photons, dtype=np.float64)
    return np.sqrt(_sa2(s, a) / n + 8.0 * np.pi * s**4 * b2 / (a**2 * n**2))


def mortensen_lsq_precision(photons, sigma_nm, pixel_nm, background_photons,
                            excess_noise=1.0):
    """Mortensen et al. (2010, eq. 6) least-squares precision per axis (nm).

    Var = F (sa^2/N) (16/9 + 8 pi sa^2 b^2 / (N a^2)), sa^2 = s^2 + a^2/12.

    Args:
        photons: Signal photons N.
        sigma_nm: PSF standard deviation s (nm).
        pixel_nm: Pixel size a (nm).
        background_photons: Expected background photons per pixel b^2.
        excess_noise: Excess-noise factor F (2 for EMCCD, 1 otherwise).

    Returns:
        sqrt(Var), broadcast over the inputs.
    """
    n = np.asarray(photons, dtype=np.float64)
    a = np.asarray(pixel_nm, dtype=np.float64)
    b2 = np.asarray(background_photons, dtype=np.float64)
    sa2 = _sa2(sigma_nm, a)
    f = np.asarray(excess_noise, dtype=np.float64)
    return np.sqrt(f * sa2 / n * (16.0 / 9.0 + 8.0 * np.pi * sa2 * b2 / (n * a**2)))


def mortensen_integral(tau):
    """I1(tau) = 1 + int_0^1 ln t / (1 + t/tau) dt, with I1(0) = 1 (vectorised).

    The integral has the closed form tau * Li2(-1/tau) (substitute u = t/tau and integrate by
    parts), and Li2(-1/tau) = scipy.special.spence(1 + 1/tau); the tests check it against
    numerical quadrature.
    """
    tau = np.asarray(tau, dtype=np.float64)
    positive = tau > 0
    safe = np.where(positive, tau, 1.0)
    value = 1.0 + safe * spence(1.0 + 1.0 / safe)
    return np.where(positive, value, np.where(tau == 0, 1.0, np.nan))


def mortensen_mle_precision(photons, sigma_nm, pixel_nm, background_photons,
                            excess_noise=1.0):
    """Mortensen et al. (2010, SI eq. 54) maximum-likelihood precision per axis (nm).

    Var = F (sa^2/N) / I1(tau), tau = 2 pi sa^2 b^2 / (N a^2), see :func:`mortensen_integral`.
    As b -> 0 it tends to the shot-noise limit sqrt(F sa^2 / N).

    Args:
        photons: Signal photons N.
        sigma_nm: PSF standard deviation s (nm).
        pixel_nm: Pixel size a (nm).
        background_photons: Expected background photons per pixel b^2.
        excess_noise: Excess-noise factor F (2 for EMCCD, 1 otherwise).

    Returns:
        sqrt(Var), broadcast over the inputs.
    """
    n = np.asarray(photons, dtype=np.float64)
    a = np.asarray(pixel_nm, dtype=np.float64)
    b2 = np.asarray(background_photons, dtype=np.float64)
    sa2 = _sa2(sigma_nm, a)
    f = np.asarray(excess_noise, dtype=np.float64)
    tau = 2.0 * np.pi * sa2 * b2 / (n * a**2)
    return np.sqrt(f * sa2 / n / mortensen_integral(tau))


def crlb_gaussian_psf(photons, sigma_nm, pixel_nm, background_photons, roi_px: int = 11,
                      excess_noise=1.0):
    """Exact Cramér-Rao bound of x for a pixel-integrated 2D Gaussian on a Poisson camera.

    Parameters estimated: (x, y, N, b^2). The emitter sits at the centre of a square ROI of
    ``roi_px`` pixels; pixel k has mean mu_k = N Ex_k Ey_k + b^2 with Ex, Ey the Gaussian
    integrals over the pixel, and the Fisher information is I_ij = sum_k d_i mu_k d_j mu_k / mu_k.
    The x variance (I^-1)_00 is multiplied by the excess-noise factor F.

    Args:
        photons: Signal photons N.
        sigma_nm: PSF standard deviation s (nm).
        pixel_nm: Pixel size a (nm).
        background_photons: Expected background photons per pixel b^2.
        roi_px: ROI width in pixels.
        excess_noise: Excess-noise factor F (2 for EMCCD, 1 otherwise).

    Returns:
        sqrt(F (I^-1)_00) in nm, broadcast over the inputs.
    """
    if int(roi_px) < 1:
        raise LoczooError(f"roi_px must be >= 1, got {roi_px}")
    n, s, a, b2, f = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                           (photons, sigma_nm, pixel_nm, background_photons,
                                            excess_noise)))
    shape = n.shape
    n, s, a, b2, f = (v.reshape(-1, 1) for v in (n, s, a, b2, f))
    edges = np.arange(int(roi_px) + 1, dtype=np.float64) - roi_px / 2.0  # in pixels, emitter at 0
    u = edges[None, :] * a / (np.sqrt(2.0) * s)  # (P, R+1)
    e = 0.5 * np.diff(erf(u), axis=1)  # pixel integral of the 1D Gaussian, (P, R)
    g = np.exp(-(u**2)) / (np.sqrt(2.0 * np.pi) * s)
    de = g[:, :-1] - g[:, 1:]  # d e / d x0
    mu = n[:, :, None] * e[:, :, None] * e[:, None, :] + b2[:, :, None]  # (P, Ry, Rx)
    grads = np.stack([
        n[:, :, None] * e[:, :, None] * de[:, None, :],  # d/dx0 (x along the last axis)
        n[:, :, None] * de[:, :, None] * e[:, None, :],  # d/dy0
        e[:, :, None] * e[:, None, :],  # d/dN
        np.ones_like(mu),  # d/db^2
    ], axis=1)  # (P, 4, Ry, Rx)
    inv_mu = np.where(mu > 0, 1.0 / np.where(mu > 0, mu, 1.0), 0.0)
    fisher = np.einsum("pikl,pjkl,pkl->pij", grads, grads, inv_mu)
    var_x = np.linalg.inv(fisher)[:, 0, 0] * f[:, 0]
    return np.sqrt(var_x).reshape(shape)


def crlb_astigmatic_psf(photons, sigma_nm, pixel_nm, background_photons, z_nm=0.0,
                        astigmatism=None, roi_px: int | None = None, excess_noise=1.0,
                        step_nm: float = 0.01) -> dict:
    """Cramér-Rao bounds of all parameters of a pixel-integrated (astigmatic) Gaussian PSF on a
    Poisson camera: the 3D version of :func:`crlb_gaussian_psf`.

    Parameters estimated: x, y, z (with astigmatism only: without it the image does not depend
    on z), N, b^2. Pixel k of a square ROI with the emitter at its centre has mean
    mu_k = N Ex_k(sigma_x) Ey_k(sigma_y) + b^2, with sigma_x, sigma_y = ``astigmatism.sigmas(z,
    sigma)`` (``loczoo.smlm.simulate.AstigmatismConfig``; None: both sigma). The derivatives of
    mu are central differences (``step_nm`` for x, y and z; mu is linear in N and b^2, where
    they are exact), the Fisher information is I_ij = sum_k d_i mu_k d_j mu_k / mu_k, and the
    variances diag(I^-1) are multiplied by the excess-noise factor F. In 2D, x agrees with
    :func:`crlb_gaussian_psf`; z then is NaN.

    Args:
        photons: Signal photons N.
        sigma_nm: In-focus PSF standard deviation sigma0 (nm).
        pixel_nm: Pixel size a (nm).
        background_photons: Expected background photons per pixel b^2.
        z_nm: Axial position (nm).
        astigmatism: An object with ``sigmas(z_nm, sigma0_nm) -> (sigma_x, sigma_y)``, or None.
        roi_px: ROI width in pixels; None: odd, covering +/- 4 of the widest sigma.
        excess_noise: Excess-noise factor F (2 for EMCCD, 1 otherwise).
        step_nm: Finite-difference step for x, y and z.

    Returns:
        {"x", "y", "z", "photons", "background"}: sqrt(F (I^-1)_ii) (nm for x, y, z; photons
        and photons per pixel for the last two), each broadcast over the inputs.
    """
    n, s0, a, b2, z, f = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (
        photons, sigma_nm, pixel_nm, background_photons, z_nm, excess_noise)))
    shape = n.shape
    n, s0, a, b2, z, f = (v.reshape(-1, 1) for v in (n, s0, a, b2, z, f))
    if astigmatism is None:
        widths = lambda zz: (s0, s0)  # noqa: E731
    else:
        widths = lambda zz: astigmatism.sigmas(zz, s0)  # noqa: E731
    if roi_px is None:
        sx, sy = widths(z)
        roi_px = 2 * int(np.ceil(4.0 * np.max(np.maximum(sx, sy) / a))) + 1
    if int(roi_px) < 1:
        raise LoczooError(f"roi_px must be >= 1, got {roi_px}")
    edges = (np.arange(int(roi_px) + 1, dtype=np.float64) - roi_px / 2.0)[None, :] * a

    def mean(x, y, zz, nn, bb):  # expected photons per pixel, (P, R, R) with x along the last
        sx, sy = widths(zz)
        ex = 0.5 * np.diff(erf((edges - x) / (np.sqrt(2.0) * sx)), axis=1)
        ey = 0.5 * np.diff(erf((edges - y) / (np.sqrt(2.0) * sy)), axis=1)
        return nn[:, :, None] * ey[:, :, None] * ex[:, None, :] + bb[:, :, None]

    theta = {"x": np.zeros_like(n), "y": np.zeros_like(n), "z": z, "photons": n,
             "background": b2}
    names = ["x", "y"] + (["z"] if astigmatism is not None else []) + ["photons", "background"]
    steps = {"x": step_nm, "y": step_nm, "z": step_nm, "photons": 1.0, "background": 1.0}
    grads = []
    for name in names:
        up, down = dict(theta), dict(theta)
        up[name] = theta[name] + steps[name]
        down[name] = theta[name] - steps[name]
        grads.append((mean(*up.values()) - mean(*down.values())) / (2.0 * steps[name]))
    grads = np.stack(grads, axis=1)  # (P, K, R, R)
    mu = mean(*theta.values())
    inv_mu = np.where(mu > 0, 1.0 / np.where(mu > 0, mu, 1.0), 0.0)
    fisher = np.einsum("pikl,pjkl,pkl->pij", grads, grads, inv_mu)
    var = np.diagonal(np.linalg.inv(fisher), axis1=1, axis2=2) * f
    out = {name: np.sqrt(var[:, i]).reshape(shape) for i, name in enumerate(names)}
    out.setdefault("z", np.full(shape, np.nan))
    return out
