"""The TensorFlow simulator against analytic expectations."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import erf

from loczoo.errors import LoczooError
from loczoo.smlm import simulate as S


def one_emitter(x, y, photons, sigma):
    t = lambda v: tf.constant([[v]], tf.float32)  # noqa: E731
    return {"x": t(x), "y": t(y), "photons": t(photons), "sigma": t(sigma),
            "exists": tf.constant([[True]])}


def test_integrated_psf_sums_to_photons_and_matches_erf():
    px, h, w = 100.0, 20, 24
    em = one_emitter(1234.0, 987.0, 2000.0, 110.0)
    image = S.render_emitters(em, h, w, px).numpy()[0]
    assert image.sum() == pytest.approx(2000.0, rel=1e-4)
    # Independent float64 computation of the same pixel integrals.
    edges_x, edges_y = np.arange(w + 1) * px, np.arange(h + 1) * px
    s = 110.0 * math.sqrt(2)
    fx = np.diff(0.5 * erf((edges_x - 1234.0) / s))
    fy = np.diff(0.5 * erf((edges_y - 987.0) / s))
    np.testing.assert_allclose(image, 2000.0 * np.outer(fy, fx), atol=2e-3)
    # The centroid is the emitter position under the pixel-centre convention (i + 0.5) * px.
    cols, rows = np.meshgrid(np.arange(w), np.arange(h))
    assert ((cols + 0.5) * px * image).sum() / image.sum() == pytest.approx(1234.0, abs=0.05)
    assert ((rows + 0.5) * px * image).sum() / image.sum() == pytest.approx(987.0, abs=0.05)


def test_emitters_beyond_the_border_add_only_their_tail():
    em = one_emitter(-150.0, 500.0, 1000.0, 100.0)  # 1.5 sigma left of the frame
    total = S.render_emitters(em, 10, 10, 100.0).numpy().sum()
    assert total == pytest.approx(1000.0 * 0.5 * (1 - erf(1.5 / math.sqrt(2))), rel=1e-3)


def test_noiseless_mean_image_is_signal_plus_background():
    imaging = S.ImagingConfig(density_per_um2=(3, 3), background_photons=(25, 25))
    out = S.simulate(tf.constant([1, 2], tf.int64), 4, 16, 16, imaging)
    em = {k: out[k] for k in ("x", "y", "photons", "sigma")}
    em["exists"] = out["photons"] > 0
    expected = S.render_emitters(em, 16, 16, 100.0).numpy() + 25.0
    np.testing.assert_allclose(out["mean_photons"].numpy(), expected, rtol=1e-5, atol=1e-3)


def noise_stats(camera, photons=50.0, n=400_000):
    adu = S.apply_camera(tf.constant([3, 4], tf.int64), tf.fill([n], photons), camera).numpy()
    return adu.mean(), adu.var()


def test_scmos_noise_mean_and_variance():
    cam = S.CameraConfig(qe=0.8, read_noise_e=2.0, e_per_adu=0.5, baseline_adu=100.0,
                         quantize=False)
    mean, var = noise_stats(cam)
    assert mean == pytest.approx(0.8 * 50 / 0.5 + 100, rel=2e-3)
    assert var == pytest.approx((0.8 * 50 + 2.0**2) / 0.5**2, rel=0.02)


def test_emccd_excess_noise_factor_is_two():
    gain, e_per_adu = 100.0, 10.0
    cam = S.CameraConfig(qe=0.9, em_gain=gain, read_noise_e=30.0, e_per_adu=e_per_adu,
                         baseline_adu=100.0, quantize=False)
    mean, var = noise_stats(cam)
    signal = 0.9 * 50
    assert mean == pytest.approx(signal * gain / e_per_adu + 100, rel=5e-3)
    excess = (var * e_per_adu**2 - 30.0**2) / (gain**2 * signal)
    assert excess == pytest.approx(2.0, rel=0.03)


def test_quantisation_and_saturation():
    cam = S.CameraConfig(e_per_adu=0.1, saturation_adu=1000.0)
    adu = S.apply_camera(tf.constant([0, 0], tf.int64), tf.constant([0.0, 5.0, 1e4]), cam)
    adu = adu.numpy()
    np.testing.assert_array_equal(adu, np.round(adu))
    assert adu[2] == 1000.0 and adu.max() <= 1000.0


def test_same_seed_same_frames_also_inside_tf_data():
    imaging = S.ImagingConfig()
    a = S.simulate(tf.constant([7, 0], tf.int64), 3, 16, 16, imaging)
    b = S.simulate(tf.constant([7, 0], tf.int64), 3, 16, 16, imaging)
    c = S.simulate(tf.constant([7, 1], tf.int64), 3, 16, 16, imaging)
    np.testing.assert_array_equal(a["frames"], b["frames"])
    assert not np.array_equal(a["frames"], c["frames"])
    ds = S.simulated_dataset(imaging, 16, 16, batch=3, seed=7)
    first, second = list(ds.take(2))
    np.testing.assert_array_equal(first["frames"], a["frames"])
    np.testing.assert_array_equal(second["frames"], c["frames"])
    np.testing.assert_array_equal(second["x"], c["x"])


def test_emitter_count_follows_density():
    imaging = S.ImagingConfig(density_per_um2=(6, 6), margin_px=0)
    out = S.simulate(tf.constant([5, 5], tf.int64), 400, 32, 32, imaging)
    counts = out["mask"].numpy().sum(axis=1)
    expected = 6 * (3.2 * 3.2)  # 61.44 per frame
    assert counts.mean() == pytest.approx(expected, rel=0.03)
    assert counts.var() == pytest.approx(expected, rel=0.2)  # Poisson


def test_margin_emitters_render_but_are_not_ground_truth():
    imaging = S.ImagingConfig(density_per_um2=(8, 8), margin_px=3)
    out = S.simulate(tf.constant([0, 9], tf.int64), 8, 16, 16, imaging)
    x, y, mask = out["x"].numpy(), out["y"].numpy(), out["mask"].numpy()
    inside = (x >= 0) & (x < 1600) & (y >= 0) & (y < 1600)
    assert mask.sum() > 0 and np.all(inside[mask])
    assert (out["photons"].numpy()[~mask] > 0).any()  # some exist in the margin


def test_density_mask_places_emitters_only_where_allowed():
    mask = np.zeros((8, 8), np.float32)
    mask[2:4, 5:7] = 1.0
    emitters = S.sample_emitters(tf.constant([1, 1], tf.int64), 50, 16, 16, S.ImagingConfig(
        density_per_um2=(20, 20)), 64, density_mask=mask)
    ex = emitters["exists"].numpy()
    x, y = emitters["x"].numpy()[ex], emitters["y"].numpy()[ex]
    assert ex.sum() > 100
    # Mask cells are 2 x 2 px (200 nm): rows 2-3 -> y in [400, 800), cols 5-6 -> x in [1000, 1400).
    assert np.all((y >= 400) & (y < 800) & (x >= 1000) & (x < 1400))
    # Expected count: 20 / um^2 x 4 cells x 0.04 um^2 = 3.2 per frame.
    assert ex.sum(axis=1).mean() == pytest.approx(3.2, rel=0.2)


@pytest.mark.parametrize("kind,params,mean", [("uniform", (1000, 3000), 2000),
                                              ("normal", (2250, 250), 2250),
                                              ("exponential", (1500,), 1500)])
def test_photon_distributions(kind, params, mean):
    imaging = S.ImagingConfig(photon_distribution=kind, photon_params=params)
    n = S.sample_photons([200_000], tf.constant([2, 2], tf.int64), imaging).numpy()
    assert n.mean() == pytest.approx(mean, rel=0.01)
    assert n.min() >= 1.0


def test_ground_truth_table_from_simulation():
    imaging = S.ImagingConfig(density_per_um2=(4, 4))
    out = S.simulate(tf.constant([0, 3], tf.int64), 5, 16, 16, imaging)
    table = S.emitters_to_table(out, first_frame=11)
    mask = out["mask"].numpy()
    assert len(table) == mask.sum()
    np.testing.assert_array_equal(np.bincount(table.frame - 11, minlength=5), mask.sum(axis=1))
    assert np.all(np.isfinite(table.photons))


def test_background_field_is_smooth_and_bounded():
    imaging = replace(S.ImagingConfig(), background_photons=(50, 50),
                      background_field_fraction=0.5)
    bg = S.sample_background(tf.constant([1, 2], tf.int64), 2, 32, 32, imaging).numpy()
    assert bg.min() >= 25 - 1e-3 and bg.max() <= 75 + 1e-3
    # Smooth: 4 x 4 grid values in [25, 75] interpolated over 8 px cells, so neighbouring
    # pixels differ by at most 50 / 8 photons.
    assert np.abs(np.diff(bg, axis=-1)).max() <= 50 / 8 + 1e-3


@pytest.mark.parametrize("kwargs", [{"density_per_um2": (5, 1)}, {"photon_distribution": "x"},
                                    {"psf_sigma_nm": (0, 10)}, {"pixel_size_nm": -1},
                                    {"photon_params": (1, 2, 3)}])
def test_bad_imaging_config_is_refused(kwargs):
    with pytest.raises(LoczooError):
        S.ImagingConfig(**kwargs)


def test_bad_camera_is_refused():
    with pytest.raises(LoczooError, match="em_gain"):
        S.CameraConfig(em_gain=0.5)


def test_filament_mask_is_thin_reproducible_and_usable():
    from loczoo.smlm.structures import filament_mask

    mask = filament_mask(32, 32, n_filaments=4, seed=3)
    assert mask.shape == (256, 256)
    assert 0.005 < mask.mean() < 0.05  # thin lines, not a filled area
    np.testing.assert_array_equal(mask, filament_mask(32, 32, n_filaments=4, seed=3))
    emitters = S.sample_emitters(tf.constant([0, 1], tf.int64), 4, 32, 32,
                                 S.ImagingConfig(density_per_um2=(100, 100)), 256,
                                 density_mask=mask)
    ex = emitters["exists"].numpy()
    rows = (emitters["y"].numpy()[ex] / 12.5).astype(int)
    cols = (emitters["x"].numpy()[ex] / 12.5).astype(int)
    assert ex.sum() > 20 and np.all(mask[rows, cols] == 1)
