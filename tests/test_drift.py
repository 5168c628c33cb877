"""Drift correction without fiducials (loczoo.smlm.drift, loczoo drift): RCC and AIM recover a
known smooth drift of a simulated filament table, laterally and in z."""

from __future__ import annotations

import numpy as np
import pytest

from loczoo.errors import LoczooError
from loczoo.smlm.drift import (
    DriftTrace,
    apply_drift,
    estimate_drift,
    read_trace,
    write_trace,
)
from loczoo.smlm.localizations import Localizations


def filaments(**kwargs):
    from loczoo.smlm.structures import drifting_filaments

    return drifting_filaments(**kwargs)


def rms_error(trace, truth, axis):
    """RMS of trace minus truth after their mean difference (a constant shift of the whole
    image is not drift)."""
    got = getattr(trace, axis)
    want = truth["xyz".index(axis)][trace.frame - 1]
    diff = got - want
    return float(np.sqrt(np.mean((diff - diff.mean()) ** 2)))


@pytest.fixture(scope="module")
def table_3d():
    return filaments()


@pytest.mark.parametrize("method", ["rcc", "aim"])
def test_recovers_a_known_drift(method, table_3d):
    table, truth = table_3d
    trace = estimate_drift(table, method=method)
    assert trace.frame[0] == 1 and trace.frame[-1] == 2000
    assert trace.x[0] == trace.y[0] == trace.z[0] == 0.0
    assert rms_error(trace, truth, "x") < 5.0 and rms_error(trace, truth, "y") < 5.0
    assert rms_error(trace, truth, "z") < 15.0
    corrected = apply_drift(table, trace)
    # The corrected table's points lie on the drift-free filaments: frames far apart agree.
    early, late = corrected.frame < 200, corrected.frame > 1800
    assert abs(np.median(corrected.z[early]) - np.median(corrected.z[late])) < 25.0


def test_2d_tables_and_lateral_only(table_3d):
    table, truth = filaments(with_z=False, n_frames=1000, seed=2)
    trace = estimate_drift(table)
    assert trace.z is None and rms_error(trace, truth, "x") < 5.0
    trace = estimate_drift(table_3d[0], use_z=False)
    assert trace.z is None


def test_trace_round_trip_and_apply(tmp_path):
    trace = DriftTrace(np.arange(3, 8), np.linspace(0, 4, 5), np.linspace(0, -2, 5),
                       np.linspace(1, 2, 5))
    path = write_trace(tmp_path / "t.csv", trace)
    back = read_trace(path)
    np.testing.assert_array_equal(back.frame, trace.frame)
    np.testing.assert_allclose(back.x, trace.x, atol=1e-3)
    np.testing.assert_allclose(back.z, trace.z, atol=1e-3)
    locs = Localizations(frame=[1, 5, 9], x=[10.0, 10.0, 10.0], y=[0.0, 0.0, 0.0],
                         z=[0.0, 0.0, 0.0], photons=[1.0, 2.0, 3.0])
    moved = apply_drift(locs, back)
    # Frames before and after the trace take its ends.
    np.testing.assert_allclose(moved.x, [10.0, 8.0, 6.0], atol=1e-3)
    np.testing.assert_allclose(moved.z, [-1.0, -1.5, -2.0], atol=1e-3)
    np.testing.assert_array_equal(moved.photons, locs.photons)
    bad = tmp_path / "bad.csv"
    bad.write_text("frame,x,y\n1,2,3\n")
    with pytest.raises(LoczooError, match="not a drift trace"):
        read_trace(bad)


def test_too_few_frames_for_segments():
    table = Localizations(frame=np.ones(500, int), x=np.arange(500.0), y=np.arange(500.0))
    with pytest.raises(LoczooError, match="too few frames or localizations for drift segments"):
        estimate_drift(table)


def test_cli(tmp_path, run_cli, table_3d):
    from loczoo.smlm.io import read_localizations, write_localizations

    table, truth = table_3d
    src = tmp_path / "locs.csv"
    write_localizations(src, table)
    out, plot = tmp_path / "corrected.csv", tmp_path / "drift.png"
    code, stdout, err = run_cli("drift", src, "--out", out, "--plot", plot, "--method", "aim")
    assert code == 0, err
    assert "drift over frames 1-2000 (aim" in stdout
    trace = read_trace(tmp_path / "corrected_drift.csv")
    assert rms_error(trace, truth, "x") < 5.0
    from PIL import Image

    assert Image.open(plot).size == (720, 420)
    # --apply reproduces the correction from the saved trace.
    again = tmp_path / "again.csv"
    code, _, err = run_cli("drift", src, "--out", again, "--apply",
                           tmp_path / "corrected_drift.csv")
    assert code == 0, err
    np.testing.assert_allclose(read_localizations(again).x, read_localizations(out).x,
                               atol=2e-3)
    # Bad input: one line, nothing written or touched.
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, needle in (
            ((src, "--out", src), "input"),
            ((src, "--out", out), "exists"),
            ((src, "--out", tmp_path / "n.csv", "--segment", "5000"), "too few frames"),
            ((tmp_path / "none.csv", "--out", tmp_path / "n.csv"), "does not exist"),
            ((src, "--out", tmp_path / "n.csv", "--bin", "nan"), "--bin"),
    ):
        code, _, err = run_cli("drift", *args)
        assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
