"""Localization metrics and precision bounds against hand-computed values."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.integrate import quad

from loczoo.errors import LoczooError
from loczoo.smlm import metrics as M
from loczoo.smlm.localizations import Localizations


def loc(frame, x, y, z=None) -> Localizations:
    return Localizations(frame=frame, x=x, y=y, z=z)


def test_two_pairs_hand_computed():
    # Truth (1000, 1000), (3000, 3000); predictions offset by (+30, +40) and (-60, +80).
    # dx = [30, -60], dy = [40, 80]; lateral errors 50 and 100 nm.
    truth = loc([1, 1], [1000, 3000], [1000, 3000])
    pred = loc([1, 1], [1030, 2940], [1040, 3080])
    m = M.match(truth, pred)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    np.testing.assert_array_equal(m.truth_index, [0, 1])
    np.testing.assert_array_equal(m.pred_index, [0, 1])
    np.testing.assert_allclose(m.dx, [30, -60])
    np.testing.assert_allclose(m.dy, [40, 80])
    assert np.isnan(m.dz).all()
    r = M.evaluate(truth, pred)
    assert r["precision"] == r["recall"] == r["f1"] == r["jaccard"] == 1.0
    # rmse_lateral = sqrt((50^2 + 100^2) / 2) = sqrt(6250) = 79.0569
    assert r["rmse_lateral"] == pytest.approx(math.sqrt(6250))
    # rmse_x = sqrt((900 + 3600) / 2) = sqrt(2250); rmse_y = sqrt((1600 + 6400) / 2) = sqrt(4000)
    assert r["rmse_x"] == pytest.approx(math.sqrt(2250))
    assert r["rmse_y"] == pytest.approx(math.sqrt(4000))
    # bias_x = (30 - 60) / 2 = -15; bias_y = (40 + 80) / 2 = 60
    assert r["bias_x"] == pytest.approx(-15.0)
    assert r["bias_y"] == pytest.approx(60.0)
    # JI = 100 %: efficiency = 100 - sqrt(0 + 1 * 6250) = 20.9431
    assert r["efficiency_lateral"] == pytest.approx(100 - math.sqrt(6250))
    assert math.isnan(r["rmse_axial"]) and math.isnan(r["efficiency_axial"])
    assert math.isnan(r["efficiency_3d"]) and math.isnan(r["bias_z"])


def test_fp_fn_jaccard_and_efficiency_by_hand():
    # One pair at 10 nm, one extra prediction far away, one missed truth.
    truth = loc([1, 1], [1000, 5000], [1000, 5000])
    pred = loc([1, 1], [1006, 3000], [1008, 1000])
    r = M.evaluate(truth, pred)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 1)
    assert r["precision"] == pytest.approx(0.5)
    assert r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(0.5)
    assert r["jaccard"] == pytest.approx(1 / 3)  # TP / (TP + FP + FN); 33.3 % in the challenge
    # E = 100 - sqrt((100 - 33.333)^2 + 10^2) = 100 - sqrt(4544.44) = 100 - 67.4125 = 32.5875
    assert r["efficiency_lateral"] == pytest.approx(100 - math.sqrt((200 / 3) ** 2 + 100))
    assert r["efficiency_lateral"] == pytest.approx(32.5875, abs=1e-4)


def test_greedy_and_hungarian_differ():
    # T0 = (0, 0), T1 = (400, 0), P0 = (210, 0), P1 = (650, 0), all on y = 0, tolerance 250:
    #           P0    P1
    #   T0     210   650 (out)
    #   T1     190   250
    # Greedy takes the nearest pair T1-P0 (190) first; T0's only partner is gone: 1 pair.
    # Hungarian: T0-P0 (210) + T1-P1 (250, exactly at tolerance): 2 pairs.
    truth = loc([1, 1], [0, 400], [0, 0])
    pred = loc([1, 1], [210, 650], [0, 0])
    g = M.match(truth, pred, method="greedy")
    assert (g.tp, g.fp, g.fn) == (1, 1, 1)
    np.testing.assert_array_equal(g.truth_index, [1])
    np.testing.assert_array_equal(g.pred_index, [0])
    np.testing.assert_allclose(g.dx, [-190])
    h = M.match(truth, pred, method="hungarian")
    assert (h.tp, h.fp, h.fn) == (2, 0, 0)
    np.testing.assert_array_equal(h.truth_index, [0, 1])
    np.testing.assert_array_equal(h.pred_index, [0, 1])
    np.testing.assert_allclose(h.dx, [210, 250])
    assert M.evaluate(truth, pred, method="greedy")["jaccard"] == pytest.approx(1 / 3)
    rmse = M.evaluate(truth, pred)["rmse_lateral"]
    assert rmse == pytest.approx(math.sqrt((210**2 + 250**2) / 2))


def test_hungarian_minimises_distance_among_maximum_matchings():
    # Both assignments match 2 pairs; the straight one (10 + 10) beats the crossed (≈ 100 + 100).
    truth = loc([1, 1], [0, 100], [0, 0])
    pred = loc([1, 1], [90, 10], [0, 0])
    h = M.match(truth, pred)
    np.testing.assert_array_equal(h.pred_index, [1, 0])
    np.testing.assert_allclose(h.dx, [10, -10])


def test_tolerance_boundary():
    # (150, 200) is exactly 250 nm (a 3-4-5 triangle, exact in floating point).
    truth = loc([1], [1000], [1000])
    assert M.match(truth, loc([1], [1150], [1200])).tp == 1
    assert M.match(truth, loc([1], [1150], [1200.001])).tp == 0
    assert M.match(truth, loc([1], [1150], [1200]), method="greedy").tp == 1
    assert M.match(truth, loc([1], [1150], [1200.001]), method="greedy").tp == 0
    assert M.match(truth, loc([1], [1100], [1000]), tolerance_nm=100).tp == 1
    assert M.match(truth, loc([1], [1100.01], [1000]), tolerance_nm=100).tp == 0


def test_axial_tolerance_and_axial_rmse():
    truth = loc([1, 1, 1], [1000, 3000, 5000], [1000, 1000, 1000], [0, 100, -200])
    # dz = +300, -400 (beyond 500? no: within), and +600 (excluded by the 500 nm axial tolerance).
    pred = loc([1, 1, 1], [1030, 3000, 5000], [1040, 1000, 1000], [300, -300, 400])
    r2d = M.evaluate(truth, pred)  # no axial tolerance: all three match laterally
    assert r2d["tp"] == 3
    r = M.evaluate(truth, pred, axial_tolerance_nm=500)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 1, 1)
    # dz = [300, -400]: rmse_axial = sqrt((90000 + 160000) / 2) = sqrt(125000) = 353.55
    assert r["rmse_axial"] == pytest.approx(math.sqrt(125000))
    assert r["bias_z"] == pytest.approx(-50.0)
    # lateral errors 50 and 0: rmse_lateral = sqrt(2500 / 2)
    assert r["rmse_lateral"] == pytest.approx(math.sqrt(1250))
    # rmse_3d = sqrt((2500 + 90000 + 160000) / 2)
    assert r["rmse_3d"] == pytest.approx(math.sqrt(252500 / 2))
    ji = 0.5
    e_lat = 100 - math.sqrt(50**2 + 1250)
    e_ax = 100 - math.sqrt(50**2 + 0.25 * 125000)
    assert r["jaccard"] == pytest.approx(ji)
    assert r["efficiency_lateral"] == pytest.approx(e_lat)
    assert r["efficiency_axial"] == pytest.approx(e_ax)
    assert r["efficiency_3d"] == pytest.approx((e_lat + e_ax) / 2)
    # Unknown z on one side: the axial test does not apply, dz is NaN.
    m = M.match(truth, loc([1], [5000], [1000]), axial_tolerance_nm=500)
    assert m.tp == 1 and np.isnan(m.dz).all()


def test_axial_tolerance_uses_3d_distance_for_cost():
    # P0 is laterally nearer T1 but far in z from it; with 3D cost greedy pairs it with T0.
    truth = loc([1, 1], [0, 100], [0, 0], [0, 400])
    pred = loc([1], [60], [0], [0])
    g2 = M.match(truth, pred, method="greedy")
    assert g2.truth_index.tolist() == [1]  # 2D: 40 nm to T1 beats 60 nm to T0
    g3 = M.match(truth, pred, method="greedy", axial_tolerance_nm=500)
    assert g3.truth_index.tolist() == [0]  # 3D: 60 nm to T0 beats sqrt(40^2 + 400^2)


def test_frames_are_separate():
    truth = loc([1, 2], [1000, 1000], [1000, 1000])
    # Frame 1 matches; the frame-3 prediction sits on frame 2's truth but is another frame.
    pred = loc([1, 3, 5], [1000, 1000, 2000], [1010, 1000, 2000])
    r = M.evaluate(truth, pred)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 2, 1)
    assert r["jaccard"] == pytest.approx(0.25)
    assert r["precision"] == pytest.approx(1 / 3) and r["recall"] == pytest.approx(0.5)
    # Unsorted input keeps the original indices.
    truth2 = loc([2, 1], [1000, 1000], [1000, 1000])
    pred2 = loc([3, 2, 1], [1000, 1005, 1000], [1000, 1000, 1010])
    m = M.match(truth2, pred2)
    np.testing.assert_array_equal(m.truth_index, [0, 1])
    np.testing.assert_array_equal(m.pred_index, [1, 2])
    np.testing.assert_allclose(m.dx, [5, 0])


def test_border_exclusion():
    fov = (6400.0, 3200.0)  # height, width
    # Truth: inside, x < 450, y > 6400 - 450, x > 3200 - 450 (excluded), x == 450 (kept).
    truth = loc([1] * 5, [1000, 300, 1000, 2900, 450], [1000, 1000, 6000, 1000, 3000])
    pred = loc([1] * 4, [1010, 300, 2900, 3100], [1000, 1000, 1000, 3000])
    r = M.evaluate(truth, pred, border_nm=450, fov_nm=fov)
    # Kept truth: rows 0 and 4; kept pred: row 0 only -> TP 1, FP 0, FN 1.
    assert (r["tp"], r["fp"], r["fn"]) == (1, 0, 1)
    assert r["rmse_lateral"] == pytest.approx(10.0)
    assert M.evaluate(truth, pred)["tp"] == 3
    with pytest.raises(LoczooError):
        M.match(truth, pred, border_nm=450)


def test_empty_tables():
    empty = Localizations.empty()
    some = loc([1, 2], [1000, 2000], [1000, 2000])
    r = M.evaluate(some, empty)
    assert (r["tp"], r["fp"], r["fn"]) == (0, 0, 2)
    assert r["precision"] == 0 and r["recall"] == 0 and r["f1"] == 0 and r["jaccard"] == 0
    assert math.isnan(r["rmse_lateral"]) and math.isnan(r["bias_x"])
    assert math.isnan(r["efficiency_lateral"])
    r = M.evaluate(empty, some)
    assert (r["tp"], r["fp"], r["fn"]) == (0, 2, 0)
    assert r["precision"] == 0 and r["recall"] == 0 and r["jaccard"] == 0
    r = M.evaluate(empty, empty, method="greedy")
    assert (r["tp"], r["fp"], r["fn"]) == (0, 0, 0) and r["jaccard"] == 0
    m = M.match(empty, empty)
    assert m.truth_index.shape == (0,) and m.dx.shape == (0,)
    # Zero TP with both non-empty.
    r = M.evaluate(some, loc([1], [4000], [4000]))
    assert (r["tp"], r["fp"], r["fn"]) == (0, 1, 2) and math.isnan(r["rmse_x"])


def test_bad_options():
    some = loc([1], [0], [0])
    with pytest.raises(LoczooError):
        M.match(some, some, method="nearest")
    with pytest.raises(LoczooError):
        M.match(some, some, tolerance_nm=0)


def random_table(rng, n_frames, per_frame, fov=(6400.0, 6400.0)):
    frame = np.repeat(np.arange(1, n_frames + 1), per_frame)
    return loc(frame, rng.uniform(0, fov[1], frame.size), rng.uniform(0, fov[0], frame.size))


def test_matching_speed_and_greedy_not_better():
    rng = np.random.default_rng(1)
    truth = random_table(rng, 1000, 65)
    pred = loc(truth.frame, truth.x + rng.normal(0, 80, len(truth)),
               truth.y + rng.normal(0, 80, len(truth)))
    t0 = time.perf_counter()
    h = M.match(truth, pred)
    elapsed = time.perf_counter() - t0
    print(f"hungarian 1000 x 65: {elapsed:.3f} s")
    assert elapsed < 1.5  # typically ~0.2 s
    g = M.match(truth, pred, method="greedy")
    assert h.tp >= g.tp
    assert len(np.unique(h.pred_index)) == h.tp and len(np.unique(h.truth_index)) == h.tp
    assert np.all(np.hypot(h.dx, h.dy) <= 250)


def test_chance_jaccard():
    rng = np.random.default_rng(2)
    fov = (6400.0, 6400.0)
    truth = random_table(rng, 50, 40, fov)
    j100 = M.chance_jaccard(truth, truth, fov, tolerance_nm=100)
    j250 = M.chance_jaccard(truth, truth, fov, tolerance_nm=250)
    j500 = M.chance_jaccard(truth, None, fov, tolerance_nm=500)
    print(f"chance Jaccard 40/frame in 6.4 um: {j100:.3f} {j250:.3f} {j500:.3f}")
    assert 0 < j100 < j250 < j500 < 1
    assert M.chance_jaccard(truth, truth, fov, seed=5) == M.chance_jaccard(truth, 40, fov, seed=5)
    assert M.chance_jaccard(truth, 0, fov) == 0.0


# ---------------------------------------------------------------------------- precision bounds

S, A, N, B2 = 110.0, 100.0, 2250.0, 20.0  # the worked example of methods.md 6.3


def test_worked_example():
    lsq = M.mortensen_lsq_precision(N, S, A, B2)
    mle = M.mortensen_mle_precision(N, S, A, B2)
    sa2 = S**2 + A**2 / 12  # 12933
    tau = 2 * math.pi * sa2 * B2 / (N * A**2)  # 0.0722
    assert tau == pytest.approx(0.0722, abs=1e-4)
    assert M.mortensen_integral(tau) == pytest.approx(0.637, abs=1e-3)
    assert lsq == pytest.approx(3.45, abs=0.01)
    assert mle == pytest.approx(3.00, abs=0.01)
    # Thompson by hand: sqrt(12933/2250 + 8 pi 110^4 20 / (100^2 2250^2)) = sqrt(5.748 + 1.454)
    assert M.thompson_precision(N, S, A, B2) == pytest.approx(
        math.sqrt(sa2 / N + 8 * math.pi * S**4 * B2 / (A**2 * N**2)))
    assert M.thompson_precision(N, S, A, B2) == pytest.approx(2.684, abs=1e-3)


def test_mortensen_integral_against_quadrature():
    taus = np.array([1e-4, 0.01, 0.0722, 0.5, 3.0, 100.0])
    closed = M.mortensen_integral(taus)
    for tau, value in zip(taus, closed):
        integral = quad(lambda t, tau=tau: math.log(t) / (1 + t / tau), 0, 1, limit=200)[0]
        assert value == pytest.approx(1 + integral, rel=1e-8, abs=1e-10)
    assert M.mortensen_integral(0.0) == 1.0
    assert np.all(np.diff(closed) < 0) and np.all(closed > 0)


def test_bound_limits_and_vectorisation():
    n = np.array([200.0, 1000.0, 5000.0])[:, None]
    b2 = np.array([0.0, 1.0, 20.0, 200.0])[None, :]
    lsq = M.mortensen_lsq_precision(n, S, A, b2)
    mle = M.mortensen_mle_precision(n, S, A, b2)
    assert lsq.shape == mle.shape == (3, 4)
    assert np.all(mle <= lsq)
    # b -> 0: the shot-noise limit sqrt(sa^2 / N); LSQ is then 4/3 of it.
    shot = np.sqrt((S**2 + A**2 / 12) / n[:, 0])
    np.testing.assert_allclose(mle[:, 0], shot, rtol=1e-12)
    np.testing.assert_allclose(M.mortensen_mle_precision(n[:, 0], S, A, 1e-9), shot, rtol=1e-6)
    np.testing.assert_allclose(lsq[:, 0], shot * 4 / 3, rtol=1e-12)
    # The EM excess-noise factor doubles the variance.
    for f in (M.mortensen_lsq_precision, M.mortensen_mle_precision):
        np.testing.assert_allclose(f(n, S, A, b2, excess_noise=2.0) ** 2, 2 * f(n, S, A, b2) ** 2)
    np.testing.assert_allclose(M.crlb_gaussian_psf(N, S, A, B2, excess_noise=2.0) ** 2,
                               2 * M.crlb_gaussian_psf(N, S, A, B2) ** 2)
    # More photons, less background -> better precision.
    assert np.all(np.diff(mle, axis=0) < 0) and np.all(np.diff(mle, axis=1) > 0)


def test_exact_crlb_close_to_mortensen_mle():
    mle = M.mortensen_mle_precision(N, S, A, B2)
    exact = {roi: float(M.crlb_gaussian_psf(N, S, A, B2, roi_px=roi)) for roi in (5, 11, 21)}
    print(f"worked example: MLE {mle:.4f} nm, exact CRLB {exact}")
    assert exact[21] == pytest.approx(mle, rel=0.01)  # measured: 3.0050 vs 3.0042 nm
    assert exact[11] == pytest.approx(exact[21], rel=1e-6)
    assert exact[5] >= exact[21]  # a small ROI loses information
    # Over a grid of conditions, a large ROI stays within 1 % of Mortensen's MLE bound
    # (measured deviation <= 0.1 %).
    n = np.array([300.0, 2250.0, 10000.0])[:, None, None]
    s = np.array([90.0, 110.0, 150.0])[None, :, None]
    b2 = np.array([0.0, 5.0, 20.0, 100.0])[None, None, :]
    ratio = M.crlb_gaussian_psf(n, s, A, b2, roi_px=25) / M.mortensen_mle_precision(n, s, A, b2)
    print(f"exact / Mortensen MLE: {ratio.min():.4f} .. {ratio.max():.4f}")
    assert ratio.shape == (3, 3, 4)
    assert np.all(np.abs(ratio - 1) < 0.01)


# ---------------------------------------------------------- block matching of dense frames


def _noisy_frames(rng, n_frames, per_frame, fov, with_z):
    """Truth and predictions: 85 % found with 80 nm (and 60 nm axial) noise, 20 % false
    positives, a few exact duplicates and a pair exactly at the tolerance."""
    truths, preds = [], []
    for f in range(1, n_frames + 1):
        n = int(rng.integers(per_frame // 2, per_frame))
        tx, ty, tz = (rng.uniform(0, fov, n), rng.uniform(0, fov, n),
                      rng.uniform(-500, 500, n))
        found = rng.random(n) < 0.85
        k, extra = int(found.sum()), int(0.2 * n)
        px = np.concatenate([tx[found] + rng.normal(0, 80, k), rng.uniform(0, fov, extra)])
        py = np.concatenate([ty[found] + rng.normal(0, 80, k), rng.uniform(0, fov, extra)])
        pz = np.concatenate([tz[found] + rng.normal(0, 60, k), rng.uniform(-500, 500, extra)])
        px[:3], py[:3] = tx[:3], ty[:3]  # distance exactly 0
        px[3], py[3] = tx[4] + 250.0, ty[4]  # exactly at the tolerance
        truths.append(loc(np.full(n, f), tx, ty, tz if with_z else None))
        preds.append(loc(np.full(px.size, f), px, py, pz if with_z else None))
    return Localizations.concatenate(truths), Localizations.concatenate(preds)


@pytest.mark.parametrize("method", ["hungarian", "greedy"])
@pytest.mark.parametrize("with_z", [False, True])
def test_block_matching_equals_dense_matching(method, with_z, monkeypatch):
    rng = np.random.default_rng(11 + with_z)
    truth, pred = _noisy_frames(rng, 8, 400, 6400.0, with_z)
    kwargs = dict(tolerance_nm=250.0, method=method,
                  axial_tolerance_nm=300.0 if with_z else None)
    dense = M.match(truth, pred, **kwargs)
    dense_scores = M.evaluate(truth, pred, **kwargs)
    monkeypatch.setattr(M, "DENSE_MAX_CELLS", 0)  # every frame, every group: the block path
    block = M.match(truth, pred, **kwargs)
    block_scores = M.evaluate(truth, pred, **kwargs)
    assert dense.tp > 1500
    np.testing.assert_array_equal(block.truth_index, dense.truth_index)
    np.testing.assert_array_equal(block.pred_index, dense.pred_index)
    for key in ("tp", "fp", "fn", "jaccard", "rmse_lateral", "rmse_axial", "rmse_3d"):
        np.testing.assert_equal(block_scores[key], dense_scores[key])


def test_block_matching_of_one_crowded_group_uses_the_sparse_solver(monkeypatch):
    # 300 emitters within 800 nm: one connected group of about 300 x 330 candidate pairs.
    rng = np.random.default_rng(7)
    truth, pred = _noisy_frames(rng, 1, 600, 800.0, False)
    dense = M.match(truth, pred, tolerance_nm=250.0)
    monkeypatch.setattr(M, "DENSE_MAX_CELLS", 100)
    block = M.match(truth, pred, tolerance_nm=250.0)
    assert block.tp == dense.tp > 250
    assert np.hypot(block.dx, block.dy).sum() == pytest.approx(np.hypot(dense.dx,
                                                                         dense.dy).sum(),
                                                               rel=1e-12)
    np.testing.assert_array_equal(block.pred_index, dense.pred_index)


def test_frame_with_too_many_candidate_pairs_is_refused(monkeypatch):
    monkeypatch.setattr(M, "DENSE_MAX_CELLS", 0)
    monkeypatch.setattr(M, "MAX_CANDIDATE_PAIRS", 1000)
    rng = np.random.default_rng(3)
    crowd = loc(np.full(50, 4), rng.uniform(0, 100, 50), rng.uniform(0, 100, 50))
    with pytest.raises(LoczooError) as err:
        M.match(crowd, crowd, tolerance_nm=250.0)
    assert str(err.value) == (
        "frame 4 has 2500 prediction / ground-truth pairs within 250 nm (50 localizations vs 50 "
        "ground-truth emitters), more than the 1000 that matching handles; use a smaller "
        "tolerance (--tolerance) or check that the frame numbers are right")


def test_block_matching_skips_non_finite_positions(monkeypatch):
    truth = loc([1, 1, 1], [100.0, np.nan, 500.0], [100.0, 200.0, np.inf])
    pred = loc([1, 1, 1], [110.0, np.nan, 500.0], [100.0, 200.0, np.inf])
    dense = M.match(truth, pred)
    monkeypatch.setattr(M, "DENSE_MAX_CELLS", 0)
    block = M.match(truth, pred)
    assert dense.tp == block.tp == 1
    assert block.truth_index.tolist() == block.pred_index.tolist() == [0]


def test_rmsmd_on_a_hand_computed_case():
    from loczoo.smlm.metrics import rmsmd

    emitters = [[0.0, 0.0], [100.0, 0.0]]
    estimates = [[3.0, 4.0], [100.0, 0.0], [100.0, 10.0]]
    # estimates -> nearest emitter: 5, 0, 10; emitters -> nearest estimate: 5, 0
    expected = np.sqrt((25 + 0 + 100 + 25 + 0) / 5)
    assert rmsmd(estimates, emitters) == pytest.approx(expected)
    assert rmsmd(emitters, emitters) == 0.0
    with pytest.raises(LoczooError, match="non-empty"):
        rmsmd(np.zeros((0, 2)), emitters)


def test_rmsmd_p_partitions_estimates_among_emitters():
    from loczoo.smlm.metrics import rmsmd_p

    emitters = [[0.0, 0.0, 0.0], [1000.0, 0.0, 0.0]]
    # K = 4 >= 2M, equal activations: quota 2 each. Three estimates sit near emitter 0, one
    # near emitter 1: the farthest of the three near 0 is forced onto emitter 1.
    estimates = [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [3.0, 0.0, 0.0], [1000.0, 0.0, 4.0]]
    own = 1 + 4 + (997 ** 2) + 16  # 1, 2 -> emitter 0; 3 and the last -> emitter 1
    minimum = 1 + 16
    assert rmsmd_p(estimates, emitters) == pytest.approx(np.sqrt((own + minimum) / (4 + 2)))
    # A missed emitter borrows its nearest estimate (K < 2M: quota round(1 / 2) = 0 each, then
    # one per emitter).
    value = rmsmd_p([[1.0, 0.0, 0.0]], emitters)
    assert value == pytest.approx(np.sqrt((1 + 999 ** 2 + 1 + 999 ** 2) / (2 + 2)))
