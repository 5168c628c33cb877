"""Requests too large for memory are refused in one line before any work (render, simulate),
wide render kernels and crowded evaluation frames stay cheap, and the memory estimates bound
what is actually used."""

from __future__ import annotations

import re
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from loczoo.smlm import io, metrics, render
from loczoo.smlm.localizations import Localizations


@pytest.fixture()
def locs_csv(tmp_path):
    """3000 localizations on 6.4 x 6.4 um with z ~ N(-30, 200) nm."""
    rng = np.random.default_rng(0)
    n = 3000
    locs = Localizations(frame=1 + np.arange(n) % 50, x=rng.uniform(0, 6400, n),
                         y=rng.uniform(0, 6400, n), z=rng.normal(-30.0, 200.0, n))
    path = tmp_path / "locs.csv"
    io.write_localizations(path, locs)
    return path


def _usage(run_cli, capsys, *argv):
    """``run_cli`` for a command that argparse refuses (it exits through SystemExit)."""
    try:
        return run_cli(*argv)
    except SystemExit as stop:
        captured = capsys.readouterr()
        return stop.code, captured.out, captured.err


def _refused(code, out, err, *patterns):
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for pattern in patterns:
        assert re.search(pattern, lines[0]), lines[0]


# ------------------------------------------------------------------------------ render


def test_render_over_the_memory_budget_is_refused_and_writes_nothing(locs_csv, tmp_path,
                                                                     run_cli):
    out = tmp_path / "x.png"
    _refused(*run_cli("render", locs_csv, "--out", out, "--fov", "1e7", "1e7",
                      "--pixel-size", "1"),
             r"^error: render would need 4\.8 PB \(image 10000000 x 10000000 px of 1 nm for "
             r"1e\+07 x 1e\+07 nm, 3000 localizations\), more than the [\d.]+ GB budget; use a "
             r"larger pixel size \(--pixel-size\) or a smaller field of view \(--fov\)$")
    _refused(*run_cli("render", locs_csv, "--out", out, "--color-by", "z", "--fov", "1e6",
                      "1e6", "--pixel-size", "1"),
             r"^error: colour-by-z render would need 72\.0 TB \(image 1000000 x 1000000 px")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locs.csv"]


def test_render_absurd_sigma_is_refused_and_a_large_one_is_rendered(locs_csv, tmp_path,
                                                                    run_cli):
    # The report: --sigma 1e9 was killed by the kernel at 18 GB (a 8e8-tap kernel).
    _refused(*run_cli("render", locs_csv, "--out", tmp_path / "x.png", "--sigma", "1e9"),
             r"^error: render sigma 1e\+09 nm is more than 10 x the field of view \(6400 x "
             r"6400 nm\)")
    assert not (tmp_path / "x.png").exists()
    # 5 um: wider than the 640 px image, clipped to it and applied by FFT.
    start = time.perf_counter()
    code, out, err = run_cli("render", locs_csv, "--out", tmp_path / "wide.tif", "--sigma",
                             "5000")
    elapsed = time.perf_counter() - start
    assert code == 0, err
    assert out.strip() == f"image: {tmp_path / 'wide.tif'} (640 x 640 px of 10 nm, 3000 " \
                          "localizations)"
    assert elapsed < 10
    image = io.read_stack(tmp_path / "wide.tif").frames[0]
    assert image.min() > 0 and image.max() < 2 * image.min()  # nearly flat, but finite


@pytest.mark.parametrize("method,sigma,color_by_z", [
    ("histogram", None, False), ("gaussian", 20.0, False), ("gaussian", None, False),
    ("gaussian", 3000.0, False), ("gaussian", 20.0, True), ("gaussian", 3000.0, True)])
def test_render_memory_estimate_bounds_the_measured_peak(method, sigma, color_by_z, tmp_path):
    rng = np.random.default_rng(1)
    n = 20_000
    locs = Localizations(frame=np.ones(n, np.int64), x=rng.uniform(0, 8000, n),
                         y=rng.uniform(0, 8000, n), z=rng.normal(0, 200, n),
                         sigma_x=rng.uniform(5, 30, n), sigma_y=rng.uniform(5, 30, n))
    tracemalloc.start()
    if color_by_z:
        image = render.render_colored_by_z(locs, (8000.0, 8000.0), method, 10.0, sigma)
        image = render.with_colour_bar(image, -1.0, 1.0)
    else:
        image = render.render(locs, (8000.0, 8000.0), method, 10.0, sigma)
    render.save_image(tmp_path / "r.png", image, 10.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    estimate = render.render_memory_bytes((800, 800), n, method, color_by_z)
    assert peak <= estimate, (peak, estimate)


def test_render_colour_by_z_prints_the_range_and_draws_a_colour_bar(locs_csv, tmp_path,
                                                                    run_cli):
    out = tmp_path / "z.png"
    code, stdout, err = run_cli("render", locs_csv, "--out", out, "--color-by", "z",
                                "--sigma", "20")
    assert code == 0, err
    lines = stdout.strip().splitlines()
    match = re.fullmatch(r"colour: z from (-?[\d.]+) to (-?[\d.]+) nm \(1st to 99th "
                         r"percentile\), blue to red", lines[0])
    assert match, lines[0]
    z = io.read_localizations(locs_csv).z
    low, high = np.percentile(z, [1, 99])
    assert float(match[1]) == pytest.approx(low, abs=0.05)
    assert float(match[2]) == pytest.approx(high, abs=0.05)
    assert lines[1] == (f"image: {out} (640 x 640 px of 10 nm, 3000 localizations; colour bar "
                        f"in the {render.COLOUR_BAR_HEIGHT} rows below)")
    picture = np.asarray(Image.open(out))
    assert picture.shape == (640 + render.COLOUR_BAR_HEIGHT, 640, 3)
    locs = io.read_localizations(locs_csv)
    expected = render.render_colored_by_z(locs, (6400.0, 6400.0), "gaussian", 10.0, 20.0,
                                          (low, high))
    np.testing.assert_array_equal(picture[:640], expected)  # the image itself is unchanged
    bar = picture[640 + 10]
    assert bar[4].tolist() == [0, 0, 128] and bar[635].tolist() == [128, 0, 0]
    assert picture[640 + 16:, :60].max() > 200  # the low label is written

    # An explicit range is reported as such; --no-color-bar leaves the strip out.
    code, stdout, _ = run_cli("render", locs_csv, "--out", tmp_path / "z.tif", "--color-by",
                              "z", "--z-range", "-300", "300", "--no-color-bar")
    assert code == 0
    assert stdout.splitlines()[0] == "colour: z from -300.0 to 300.0 nm (--z-range), blue to red"
    assert io.tifffile.imread(tmp_path / "z.tif").shape == (640, 640, 3)


@pytest.mark.parametrize("flags,message", [
    (("--pixel-size", "0"), "argument --pixel-size: must be > 0, got 0"),
    (("--pixel-size", "nan"), "argument --pixel-size: must be a finite number"),
    (("--sigma", "-1"), "argument --sigma: must be > 0, got -1"),
    (("--fov", "100", "inf"), "argument --fov: must be a finite number"),
    (("--color-by", "z", "--z-range", "5", "-5"),
     "--z-range takes LOW HIGH with LOW <= HIGH, got 5 -5"),
])
def test_render_numeric_flags_are_checked(flags, message, locs_csv, tmp_path, run_cli, capsys):
    _refused(*_usage(run_cli, capsys, "render", locs_csv, "--out", tmp_path / "x.png", *flags),
             re.escape(message))
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------------------- simulate


def test_simulate_absurd_size_is_refused_and_writes_nothing(tmp_path, run_cli):
    _refused(*run_cli("simulate", tmp_path / "x.tif", "--size", "100000", "100000"),
             r"^error: simulation would need [\d.]+ PB \(20 frames of 100000 x 100000 px: the "
             r"stack and its ground truth 4\.3 TB, working memory [\d.]+ PB for 20 frames at a "
             r"time\), more than the [\d.]+ [GT]B budget \(80% of this machine's memory\); use "
             r"fewer frames \(--frames\) or smaller frames \(--size\)$")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags,message", [
    (("--frames", "0"), "argument --frames: must be >= 1, got 0"),
    (("--size", "64", "0"), "argument --size: must be >= 1, got 0"),
    (("--pixel-size", "0"), "argument --pixel-size: must be > 0"),
    (("--density", "-1", "2"), "argument --density: must be >= 0"),
    (("--density", "5", "1"), "--density takes LOW HIGH with LOW <= HIGH, got 5 1"),
    (("--photons", "-5", "10"), "argument --photons: must be >= 0"),
    (("--sigma", "0", "100"), "argument --sigma: must be > 0"),
    (("--background", "nan", "1"), "argument --background: must be a finite number"),
    (("--em-gain", "0.5"), "argument --em-gain: must be >= 1"),
    (("--qe", "0"), "argument --qe: must be > 0"),
    (("--qe", "1.2"), "argument --qe: must be <= 1"),
    (("--read-noise", "-1"), "argument --read-noise: must be >= 0"),
    (("--e-per-adu", "0"), "argument --e-per-adu: must be > 0"),
    (("--baseline", "inf"), "argument --baseline: must be a finite number"),
    (("--z-range", "500", "-500"), "--z-range takes LOW HIGH with LOW <= HIGH"),
    (("--on-time", "-1"), "argument --on-time: must be >= 0"),
])
def test_simulate_numeric_flags_are_checked(flags, message, tmp_path, run_cli, capsys):
    _refused(*_usage(run_cli, capsys, "simulate", tmp_path / "x.tif", *flags),
             re.escape(message))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- evaluate


def _crowded_frame(n=20_000, seed=0):
    """n emitters in one frame of 204.8 x 204.8 um (a 2048 px camera) and predictions: all
    found with 30 nm noise, plus 2000 false positives."""
    rng = np.random.default_rng(seed)
    tx, ty = rng.uniform(0, 204_800, n), rng.uniform(0, 204_800, n)
    truth = Localizations(frame=np.ones(n, np.int64), x=tx, y=ty)
    px = np.concatenate([tx + rng.normal(0, 30, n), rng.uniform(0, 204_800, 2000)])
    py = np.concatenate([ty + rng.normal(0, 30, n), rng.uniform(0, 204_800, 2000)])
    return truth, Localizations(frame=np.ones(px.size, np.int64), x=px, y=py)


def test_evaluate_20000_localizations_in_one_frame_is_fast_and_small():
    # The dense path would hold 20 000 x 22 000 float64 matrices (3.5 GB each).
    truth, pred = _crowded_frame()
    tracemalloc.start()
    start = time.perf_counter()
    scores = metrics.evaluate(truth, pred, tolerance_nm=250.0)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 5.0 and peak < 100e6, (elapsed, peak)
    # 30 nm noise per axis: every emitter is found; a few false positives land within 250 nm
    # of an emitter but the emitter's own prediction is nearer.
    assert scores["tp"] == 20_000 and scores["fn"] == 0 and scores["fp"] == 2000
    assert scores["rmse_lateral"] == pytest.approx(30.0 * np.sqrt(2.0), rel=0.03)
    greedy = metrics.evaluate(truth, pred, tolerance_nm=250.0, method="greedy")
    assert greedy["tp"] <= scores["tp"]


def test_evaluate_cli_with_a_crowded_frame(tmp_path, run_cli):
    truth, pred = _crowded_frame(seed=1)
    io.write_localizations(tmp_path / "gt.csv", truth)
    io.write_localizations(tmp_path / "pred.csv", pred)
    code, out, err = run_cli("evaluate", tmp_path / "pred.csv", tmp_path / "gt.csv",
                             "--tolerance", "250")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "22000 localizations vs 20000 ground-truth emitters (hungarian matching)"
    assert [line.split() for line in lines if line.split()[0] in ("TP", "FP", "FN")] == [
        ["TP", "20000"], ["FP", "2000"], ["FN", "0"]]
