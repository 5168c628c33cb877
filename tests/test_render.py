"""Histogram and Gaussian renders, and saving them as PNG and TIFF."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import tifffile
from PIL import Image

from loczoo.errors import LoczooError
from loczoo.smlm import io, render
from loczoo.smlm.localizations import Localizations


def _locs(x, y, **optional) -> Localizations:
    return Localizations(frame=np.ones(len(x), np.int64), x=x, y=y, **optional)


def test_histogram_counts_in_the_expected_pixels():
    # 100 x 80 nm at 10 nm: 10 rows, 8 columns; pixel i covers [10 i, 10 i + 10).
    locs = _locs(x=[0.0, 9.999, 10.0, 15.0, 79.9, 80.0, -0.1, 35.0, np.nan],
                 y=[0.0, 0.0, 0.0, 25.0, 99.9, 5.0, 5.0, 100.0, 5.0])
    image = render.render_histogram(locs, (100.0, 80.0), pixel_size_nm=10.0)
    assert image.shape == (10, 8) and image.dtype == np.float32
    expected = np.zeros((10, 8), np.float32)
    expected[0, 0] = 2  # x = 0 and x = 9.999
    expected[0, 1] = 1  # x = 10.0 exactly starts pixel 1
    expected[2, 1] = 1
    expected[9, 7] = 1
    np.testing.assert_array_equal(image, expected)  # x = 80, x < 0, y = 100, NaN dropped


def test_histogram_size_rounds_up_partial_pixels():
    image = render.render_histogram(_locs([104.0], [5.0]), (20.0, 105.0), pixel_size_nm=10.0)
    assert image.shape == (2, 11) and image[0, 10] == 1


def test_gaussian_conserves_count_and_centroid():
    x = np.array([203.7, 611.2, 388.8])
    y = np.array([157.3, 402.9, 598.4])
    image = render.render_gaussian(_locs(x, y), (800.0, 800.0), pixel_size_nm=10.0,
                                   sigma_nm=25.0)
    assert image.shape == (80, 80) and image.dtype == np.float32
    assert image.sum() == pytest.approx(3.0, rel=1e-3)
    centres = (np.arange(80) + 0.5) * 10.0
    for xi, yi in zip(x, y):
        rows = slice(int(yi / 10) - 15, int(yi / 10) + 16)
        cols = slice(int(xi / 10) - 15, int(xi / 10) + 16)
        patch = image[rows, cols].astype(np.float64)
        assert patch.sum() == pytest.approx(1.0, rel=1e-3)
        assert (patch.sum(axis=0) * centres[cols]).sum() / patch.sum() == pytest.approx(xi,
                                                                                      abs=0.5)
        assert (patch.sum(axis=1) * centres[rows]).sum() / patch.sum() == pytest.approx(yi,
                                                                                      abs=0.5)


def test_gaussian_width_follows_sigma():
    locs = _locs([500.0], [500.0])
    centres = (np.arange(100) + 0.5) * 10.0
    for sigma in (15.0, 40.0):
        profile = render.render_gaussian(locs, (1000.0, 1000.0), 10.0, sigma).sum(axis=0)
        spread = np.sqrt((profile * (centres - 500.0) ** 2).sum() / profile.sum())
        # Bilinear spreading adds at most a quarter pixel of variance.
        assert sigma <= spread <= np.sqrt(sigma ** 2 + 25.0) + 1e-6


def test_gaussian_uses_per_localization_uncertainty_and_default():
    x = np.array([200.0, 600.0, 200.0])
    y = np.array([200.0, 200.0, 600.0])
    locs = _locs(x, y, sigma_x=[10.0, 40.0, np.nan], sigma_y=[10.0, 60.0, np.nan])
    image = render.render_gaussian(locs, (800.0, 800.0), pixel_size_nm=10.0).astype(float)
    assert image.sum() == pytest.approx(3.0, rel=1e-3)
    centres = (np.arange(80) + 0.5) * 10.0

    def spread(rows, cols):
        profile = image[rows, cols].sum(axis=0)
        mean = (profile * centres[cols]).sum() / profile.sum()
        return np.sqrt((profile * (centres[cols] - mean) ** 2).sum() / profile.sum())

    assert 10.0 <= spread(slice(0, 40), slice(0, 40)) <= 11.3   # sigma 10
    assert 50.0 <= spread(slice(0, 40), slice(40, 80)) <= 50.3  # mean of 40 and 60
    assert 20.0 <= spread(slice(40, 80), slice(0, 40)) <= 20.7  # default 20 nm


def test_many_sigmas_are_grouped_without_losing_counts():
    rng = np.random.default_rng(1)
    n = 500
    locs = _locs(rng.uniform(300, 700, n), rng.uniform(300, 700, n),
                 sigma_x=rng.uniform(5, 50, n), sigma_y=rng.uniform(5, 50, n))
    image = render.render_gaussian(locs, (1000.0, 1000.0), pixel_size_nm=10.0)
    assert image.sum() == pytest.approx(n, rel=1e-3)


def test_render_dispatches_and_rejects_unknown_method():
    locs = _locs([150.0], [250.0])
    np.testing.assert_array_equal(render.render(locs, (400.0, 400.0), "histogram"),
                                  render.render_histogram(locs, (400.0, 400.0)))
    np.testing.assert_array_equal(render.render(locs, (400.0, 400.0)),
                                  render.render_gaussian(locs, (400.0, 400.0), sigma_nm=20.0))
    with pytest.raises(LoczooError, match="unknown render method 'splat'"):
        render.render(locs, (400.0, 400.0), "splat")


def test_bad_render_parameters():
    locs = _locs([15.0], [25.0])
    with pytest.raises(LoczooError, match="pixel size"):
        render.render_histogram(locs, (40.0, 40.0), pixel_size_nm=0)
    with pytest.raises(LoczooError, match="image size"):
        render.render_histogram(locs, (-1.0, 40.0))
    with pytest.raises(LoczooError, match=r"render would need 2.4 PB \(image 10000000 x "
                       r"10000000 px of 1 nm .*use a larger pixel size \(--pixel-size\)"):
        render.render_histogram(locs, (1e7, 1e7), pixel_size_nm=1.0)
    with pytest.raises(LoczooError, match="too many pixels to count"):
        render.render_histogram(locs, (1e300, 1e300), pixel_size_nm=1e-300)


def test_save_png_and_tiff(tmp_path):
    image = render.render_gaussian(_locs([100.0, 300.0], [200.0, 200.0]), (400.0, 500.0),
                                   pixel_size_nm=10.0, sigma_nm=20.0)
    png = render.save_image(tmp_path / "r.png", image, pixel_size_nm=10.0)
    with Image.open(png) as picture:
        assert picture.mode == "RGB" and picture.size == (50, 40)
        pixels = np.asarray(picture)
    assert pixels[0, 0].tolist() == [0, 0, 0]
    assert pixels[20, 10].tolist() == [255, 255, 255]  # the peak saturates to white

    tif = render.save_image(tmp_path / "r.tif", image, pixel_size_nm=10.0)
    back = tifffile.imread(tif)
    assert back.shape == (40, 50) and back.dtype == np.float32
    np.testing.assert_array_equal(back, image)
    assert io.read_stack(tif).pixel_size_nm == 10.0


def test_save_blank_png(tmp_path):
    render.save_image(tmp_path / "blank.png", np.zeros((3, 4)), pixel_size_nm=None)
    with Image.open(tmp_path / "blank.png") as picture:
        assert np.asarray(picture).max() == 0


def test_hot_colormap_ends():
    assert render.hot_colormap(np.array([0.0, 1 / 3, 2 / 3, 1.0])).tolist() == [
        [0, 0, 0], [255, 0, 0], [255, 255, 0], [255, 255, 255]]


def test_save_refuses_existing_and_unknown_suffix(tmp_path):
    target = tmp_path / "r.png"
    target.write_bytes(b"keep me")
    with pytest.raises(LoczooError, match="r.png exists; pass --overwrite"):
        render.save_image(target, np.ones((4, 4)), pixel_size_nm=10.0)
    assert target.read_bytes() == b"keep me"
    render.save_image(target, np.ones((4, 4)), pixel_size_nm=10.0, overwrite=True)
    with Image.open(target) as picture:
        assert picture.size == (4, 4)
    with pytest.raises(LoczooError, match="unknown suffix '.jpg'"):
        render.save_image(tmp_path / "r.jpg", np.ones((4, 4)), pixel_size_nm=10.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.png"]


def test_colour_by_z_puts_low_z_blue_and_high_z_red(tmp_path):
    locs = _locs(x=[150.0, 650.0], y=[400.0, 400.0], z=[-500.0, 500.0])
    rgb = render.render_colored_by_z(locs, (800.0, 800.0), pixel_size_nm=10.0, sigma_nm=20.0,
                                     z_range_nm=(-500.0, 500.0))
    assert rgb.shape == (80, 80, 3) and rgb.dtype == np.uint8
    low, high = rgb[40, 15].astype(int), rgb[40, 65].astype(int)
    assert low[2] > 100 and low[0] == 0  # blue
    assert high[0] > 100 and high[2] == 0  # red
    assert rgb[5, 40].max() == 0  # nothing there: black
    path = render.save_image(tmp_path / "z.png", rgb, 10.0)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), rgb)
    tif = render.save_image(tmp_path / "z.tif", rgb, 10.0)
    np.testing.assert_array_equal(tifffile.imread(tif), rgb)


def test_colour_by_z_needs_z():
    with pytest.raises(LoczooError, match="no z values"):
        render.render_colored_by_z(_locs(x=[1.0], y=[1.0]), (100.0, 100.0))


def test_weighted_renders_sum_the_weights():
    locs = _locs(x=[55.0, 55.0], y=[25.0, 25.0])
    hist = render.render_histogram(locs, (100.0, 100.0), 10.0, weights=[2.0, 3.5])
    assert hist[2, 5] == pytest.approx(5.5)
    gauss = render.render_gaussian(_locs(x=[105.0, 95.0], y=[105.0, 95.0]), (200.0, 200.0),
                                   10.0, 10.0, weights=[2.0, 3.5])
    assert gauss.sum() == pytest.approx(5.5, rel=1e-3)


# ---------------------------------------------------------------- memory budget, wide kernels


def test_memory_estimate_and_refusal_before_allocating(monkeypatch):
    # Gaussian: 48 bytes per pixel, 320 per localization, the FFT blocks and clipped kernels.
    assert render.render_memory_bytes((1000, 2000), 10, "gaussian") == (
        48 * 2_000_000 + 320 * 10 + 64 * 2**20 + 16 * 3000)
    assert render.render_memory_bytes((1000, 2000), 10, "histogram") == 24 * 2_000_000 + 3200
    assert render.render_memory_bytes((1000, 2000), 0, "histogram", color_by_z=True) == (
        48 * 2_000_000)
    monkeypatch.setattr(render, "MEMORY_BUDGET_BYTES", 10_000_000)
    locs = _locs([15.0], [25.0], z=[1.0])
    render.render_histogram(locs, (6000.0, 6000.0), pixel_size_nm=10.0)  # 8.6 MB: fits
    message = ("render would need 24.0 MB (image 1000 x 1000 px of 10 nm for 10000 x 10000 "
               "nm, 1 localizations), more than the 10.0 MB budget; use a larger pixel size "
               "(--pixel-size) or a smaller field of view (--fov)")
    with pytest.raises(LoczooError) as err:
        render.render_histogram(locs, (10000.0, 10000.0), pixel_size_nm=10.0)
    assert str(err.value) == message
    for call in (lambda: render.render_gaussian(locs, (10000.0, 10000.0), 10.0, 20.0),
                 lambda: render.render_colored_by_z(locs, (10000.0, 10000.0), "histogram")):
        with pytest.raises(LoczooError, match="render would need .* budget"):
            call()


@pytest.mark.parametrize("sigma_px", [9.0, 40.0, 500.0, 3000.0])
def test_wide_kernels_are_clipped_and_equal_scipy(sigma_px):
    # Radius > 32 px goes through the FFT with the kernel clipped to the image; scipy applies
    # the whole kernel (24 001 taps at 3000 px). Same values, same zero pixels.
    from scipy import ndimage

    rng = np.random.default_rng(4)
    image = np.zeros((120, 90))
    image[rng.integers(0, 120, 40), rng.integers(0, 90, 40)] = rng.uniform(0.5, 2.0, 40)
    ours = render._gaussian_blur(image, sigma_px)
    scipy_result = ndimage.gaussian_filter(image, sigma_px, mode="constant")
    assert np.abs(ours - scipy_result).max() <= 1e-12 * scipy_result.max()
    np.testing.assert_array_equal(ours == 0, scipy_result == 0)


def test_kernel_normalisation_beyond_100000_px_matches_the_exact_sum():
    for sigma in (25_000.0, 24_999.9):
        radius = int(4 * sigma + 0.5)
        k = np.arange(-radius, radius + 1, dtype=np.float64)
        exact = np.exp(-0.5 * (k / sigma) ** 2).sum()
        assert render._kernel_sum(sigma, radius) == pytest.approx(exact, rel=1e-13)
    # Euler-Maclaurin branch (radius > 100 000) against the exact sum at 100 003 px.
    sigma, radius = 25_000.8, 100_003
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    assert render._kernel_sum(sigma, radius) == pytest.approx(
        np.exp(-0.5 * (k / sigma) ** 2).sum(), rel=1e-13)


def test_large_sigma_renders_fast_and_keeps_the_count():
    # 2 um sigma on a 6.4 um field at 10 nm: kernel radius 800 px > the 640 px image.
    rng = np.random.default_rng(2)
    locs = _locs(rng.uniform(3000, 3400, 100), rng.uniform(3000, 3400, 100))
    start = time.perf_counter()
    image = render.render_gaussian(locs, (6400.0, 6400.0), 10.0, sigma_nm=2000.0)
    assert time.perf_counter() - start < 5.0
    assert image.shape == (640, 640) and image.min() >= 0
    # Fraction of a 2D Gaussian (sigma 2000 nm, centred at 3200 nm) inside the 6400 nm
    # square: erf(3200 / (2000 sqrt 2))^2 = 0.7941 (truncation at 4 sigma removes nothing
    # inside the field).
    inside = math.erf(3200 / (2000 * math.sqrt(2))) ** 2
    assert image.sum() == pytest.approx(100 * inside, rel=5e-3)


def test_absurd_sigma_is_refused_but_per_localization_outliers_are_rendered():
    locs = _locs([150.0, 250.0], [250.0, 250.0], sigma_x=[10.0, 1e9], sigma_y=[10.0, 1e9])
    with pytest.raises(LoczooError, match=r"render sigma 1e\+09 nm is more than 10 x the "
                                          r"field of view \(400 x 400 nm\)"):
        render.render_gaussian(locs, (400.0, 400.0), 10.0, sigma_nm=1e9)
    image = render.render_gaussian(locs, (400.0, 400.0), 10.0)  # one fit with sigma 1 m
    assert np.isfinite(image).all() and image.sum() == pytest.approx(1.0, rel=1e-3)


# ---------------------------------------------------------------- colour by z: range and bar


def test_z_colour_range_is_the_1st_to_99th_percentile():
    rng = np.random.default_rng(5)
    z = rng.normal(-30.0, 200.0, 1000)
    z[:3] = np.nan
    locs = _locs(rng.uniform(0, 100, 1000), rng.uniform(0, 100, 1000), z=z)
    low, high = render.z_colour_range(locs)
    np.testing.assert_allclose((low, high), np.percentile(z[3:], [1, 99]))
    assert render.z_colour_range(locs, (-5, 5)) == (-5.0, 5.0)
    assert render.z_colour_range(locs, (7, 7)) == (7.0, 8.0)  # an empty range is widened


def test_colour_bar_is_attached_below_without_touching_the_image():
    locs = _locs(x=[150.0, 650.0], y=[400.0, 400.0], z=[-500.0, 500.0])
    rgb = render.render_colored_by_z(locs, (800.0, 800.0), pixel_size_nm=10.0, sigma_nm=20.0,
                                     z_range_nm=(-500.0, 500.0))
    out = render.with_colour_bar(rgb, -500.0, 500.0)
    bar_h, min_w = render.COLOUR_BAR_HEIGHT, render.COLOUR_BAR_MIN_WIDTH
    assert out.shape == (80 + bar_h, min_w, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:80, :80], rgb)  # pixel for pixel
    assert out[:80, 80:].max() == 0  # black padding to fit the labels
    bar_row = out[80 + 4 + 6]
    assert bar_row[4].tolist() == [0, 0, 128]  # rainbow(0): dark blue
    assert bar_row[min_w - 5].tolist() == [128, 0, 0]  # rainbow(1): dark red
    assert bar_row[min_w // 2][1] == 255  # green in the middle
    labels = out[80 + 16:]
    assert labels[:, :40].max() > 200 and labels[:, -40:].max() > 200  # "-500 nm", "500 nm"
    wide = render.with_colour_bar(np.zeros((10, 300, 3), np.uint8), 0.0, 1.0)
    assert wide.shape == (10 + bar_h, 300, 3)
    with pytest.raises(LoczooError, match="RGB uint8"):
        render.with_colour_bar(np.zeros((10, 10)), 0.0, 1.0)


def test_check_render_size_before_the_localizations_exist():
    # loczoo localize --render checks the image alone before localizing.
    assert render.check_render_size((6400.0, 3200.0), 10.0) == (640, 320)
    with pytest.raises(LoczooError, match=r"^render would need 4\.8 PB \(image 10000000 x "
                                          r"10000000 px of 1 nm for 1e\+07 x 1e\+07 nm, 0 "
                                          r".*budget; use a larger render pixel size "
                                          r"\(--render-pixel\)$"):
        render.check_render_size((1e7, 1e7), 1.0)
    assert render.IMAGE_SUFFIXES == (".png", ".tif", ".tiff")
