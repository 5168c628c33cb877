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


def test_2d_frames_are_unchanged_by_the_3d_and_blinking_options():
    """The frames the shipped presets were calibrated on (sha256 from before z, astigmatism,
    blinking and spurious charge existed): the new options at their defaults change nothing."""
    import hashlib

    imaging = S.dense_2d_imaging()
    explicit = replace(imaging, z_range_nm=(0.0, 0.0), astigmatism=None, on_time_frames=0.0,
                       camera=replace(imaging.camera, spurious_charge_e=0.0))
    for config in (imaging, explicit):
        frames = S.simulate(tf.constant([5, 7], tf.int64), 3, 24, 20, config)["frames"]
        assert hashlib.sha256(frames.numpy().tobytes()).hexdigest()[:16] == "37e1cda481b445da"
        stack, truth = S.simulate_stack(config, 10, 16, 16, seed=3, batch=4)
        assert hashlib.sha256(stack.tobytes()).hexdigest()[:16] == "8ca021838cd4266a"
        assert len(truth) == 127 and not truth.has("z")


def test_astigmatic_widths_follow_the_defocus_model():
    astig = S.AstigmatismConfig()  # foci -250 (x) and +250 (y) nm, depth 280 nm
    z = tf.constant([-250.0, 0.0, 250.0, 530.0])
    sx, sy = S.astigmatic_sigmas(z, tf.fill([4], 100.0), astig)
    np.testing.assert_allclose(sx, 100 * np.sqrt(1 + ((z.numpy() + 250) / 280) ** 2), rtol=1e-6)
    np.testing.assert_allclose(sy, 100 * np.sqrt(1 + ((z.numpy() - 250) / 280) ** 2), rtol=1e-6)
    assert float(sx[0]) == pytest.approx(100.0) and float(sy[2]) == pytest.approx(100.0)
    assert float(sx[1]) == pytest.approx(float(sy[1]))  # equal widths halfway between the foci
    # Higher-order terms; a negative width inside the z range is refused.
    cubic = S.AstigmatismConfig(a_x=0.5)
    u = (530.0 + 250.0) / 280.0
    assert float(S.astigmatic_sigmas(530.0, 100.0, cubic)[0]) == pytest.approx(
        100 * math.sqrt(1 + u**2 + 0.5 * u**3))
    with pytest.raises(LoczooError, match="negative PSF width"):
        S.ImagingConfig(z_range_nm=(-2000.0, 0.0), astigmatism=S.AstigmatismConfig(a_x=2.0))


def test_astigmatic_spot_is_elongated_along_the_defocused_axis():
    emitter = one_emitter(1000.0, 1000.0, 5000.0, 100.0)
    emitter["sigma_x"], emitter["sigma_y"] = S.astigmatic_sigmas(
        tf.constant([[400.0]]), emitter["sigma"], S.AstigmatismConfig())
    image = S.render_emitters(emitter, 20, 20, 100.0).numpy()[0]
    assert image.sum() == pytest.approx(5000.0, rel=1e-3)
    cols, rows = np.meshgrid(np.arange(20) + 0.5, np.arange(20) + 0.5)
    var_x = ((cols * 100 - 1000) ** 2 * image).sum() / image.sum()
    var_y = ((rows * 100 - 1000) ** 2 * image).sum() / image.sum()
    sx, sy = (float(v) for v in S.astigmatic_sigmas(400.0, 100.0, S.AstigmatismConfig()))
    # Pixel integration adds pixel^2 / 12 to each variance.
    assert var_x == pytest.approx(sx**2 + 100**2 / 12, rel=0.02)
    assert var_y == pytest.approx(sy**2 + 100**2 / 12, rel=0.02)
    assert var_x > 2 * var_y


def test_3d_simulation_draws_z_in_range_and_reports_it():
    imaging = S.smlm2016_3d_imaging()
    sim = S.simulate(tf.constant([1, 2], tf.int64), 16, 32, 32, imaging)
    z = sim["z"].numpy()[sim["mask"].numpy()]
    assert z.min() >= -750 and z.max() <= 750 and z.std() > 300
    np.testing.assert_allclose(sim["sigma_x"], S.astigmatic_sigmas(
        sim["z"], sim["sigma"], imaging.astigmatism)[0], rtol=1e-6)
    table = S.emitters_to_table(sim)
    np.testing.assert_array_equal(np.sort(table.z), np.sort(z))


def test_smlm2016_camera_mean_matches_the_expected_adu():
    camera = S.CameraConfig.smlm2016()
    assert (camera.em_gain, camera.e_per_adu, camera.baseline_adu, camera.read_noise_e) == (
        300.0, 45.0, 100.0, 74.4)
    photons = tf.fill([200_000], 20.0)
    adu = S.apply_camera(tf.constant([0, 1], tf.int64), photons, camera).numpy()
    expected = S.expected_adu(20.0, camera)
    assert expected == pytest.approx(100 + (20 + 0.002) * 300 / 45)
    assert adu.mean() == pytest.approx(expected, rel=2e-3)
    # Spurious charge alone: dark frames get occasional amplified electrons.
    dark = S.apply_camera(tf.constant([0, 2], tf.int64), tf.zeros([200_000]),
                          replace(camera, read_noise_e=0.0, quantize=False)).numpy()
    # One electron leaves the EM register as Exponential(mean 300 e-): above 0.5 ADU (22.5 e-)
    # with probability exp(-22.5 / 300).
    assert np.mean(dark > 100.5) == pytest.approx(
        (1 - math.exp(-0.002)) * math.exp(-0.5 * 45 / 300), rel=0.1)


@pytest.mark.parametrize("on_time", [0.0, 1.0, 3.0])
def test_blinking_sequences_keep_the_density_per_frame(on_time):
    imaging = replace(S.dense_2d_imaging(), on_time_frames=on_time, density_per_um2=(2.0, 2.0))
    sim = S.simulate_sequence(tf.constant([1, 2], tf.int64), 256, 5, 32, 32, imaging)
    on_per_um2 = sim["mask"].numpy().sum(-1).mean() / (3.2 * 3.2)
    # 256 sequences of 5 frames of 10.24 um^2 at 2 / um^2: frames of a sequence share emitters,
    # so the standard error is about 1.2 % at on-time 3 (2.3 % with 64 sequences); the first
    # frames lack up to tau e^-3 / (tau + 1) = 3.7 % (see simulate_sequence).
    assert on_per_um2 == pytest.approx(2.0, rel=0.06)


def test_blinking_photons_follow_the_time_on():
    imaging = replace(S.dense_2d_imaging(), on_time_frames=2.0,
                      photon_params=(1000.0, 1000.0))  # every flux is 1000 per frame
    sim = S.simulate_sequence(tf.constant([3, 4], tf.int64), 16, 6, 32, 32, imaging)
    photons = sim["photons"].numpy()  # [B, T, M]
    assert photons.max() == pytest.approx(1000.0)  # on for a whole frame: the flux
    assert np.any((photons > 0) & (photons < 999))  # partly on: a fraction
    # Positions, z and widths stay with the emitter; ids are shared across frames.
    for key in ("x", "y", "sigma_x"):
        values = sim[key].numpy()
        np.testing.assert_array_equal(values, np.broadcast_to(values[:, :1], values.shape))
    on_frames = (photons > 0).sum(axis=1)
    real = sim["id"].numpy() > 0
    # Most emitters stay on for more than one frame (mean on-time 2 frames).
    assert np.mean(on_frames[real & (on_frames > 0)] > 1) > 0.5
    # Consecutive frames share emitters: frame-to-frame correlation of the mean images.
    frames = sim["frames"].numpy()
    a = frames[:, 2] - frames[:, 2].mean(axis=(1, 2), keepdims=True)
    b = frames[:, 3] - frames[:, 3].mean(axis=(1, 2), keepdims=True)
    assert np.mean(a * b) / np.sqrt(np.mean(a * a) * np.mean(b * b)) > 0.3


def test_blinking_sequences_are_reproducible_and_tables_number_frames():
    imaging = replace(S.smlm2016_3d_imaging(), on_time_frames=1.0)
    a = S.simulate_sequence(tf.constant([9, 9], tf.int64), 2, 3, 16, 16, imaging)
    b = S.simulate_sequence(tf.constant([9, 9], tf.int64), 2, 3, 16, 16, imaging)
    np.testing.assert_array_equal(a["frames"], b["frames"])
    table = S.sequence_to_table(a, first_frame=11)
    mask = a["mask"].numpy()
    assert len(table) == mask.sum()
    counts = np.bincount(table.frame - 11, minlength=6)
    np.testing.assert_array_equal(counts, mask.reshape(6, -1).sum(axis=1))
    assert table.has("z")
    stack, truth = S.simulate_stack(imaging, 10, 16, 16, seed=1, batch=4)
    assert stack.shape == (10, 16, 16) and truth.frame.max() <= 10


def test_3d_and_blinking_options_round_trip_through_json_and_overrides():
    from loczoo.config import from_dict, to_dict, with_overrides

    imaging = replace(S.smlm2016_3d_imaging(), on_time_frames=1.5)
    assert from_dict(S.ImagingConfig, to_dict(imaging)) == imaging
    changed = with_overrides(S.dense_2d_imaging(), ["z_range_nm=[-500,500]",
                                                    "astigmatism={}", "on_time_frames=2"])
    assert changed.z_range_nm == (-500, 500) and changed.astigmatism == S.AstigmatismConfig()
    assert changed.on_time_frames == 2


# ------------------------------------------------------------------------------------------
# 3D, spurious charge and blinking: more paths pinned, exact photon split, CRLB in 3D.


def _digest(out, keys=("frames", "x", "y", "photons", "sigma", "mask", "background")):
    import hashlib

    h = hashlib.sha256()
    for k in keys:
        h.update(np.ascontiguousarray(np.asarray(out[k])).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("name,digest,frame_sum", [
    ("default", "3b357362be20df63", 634474.0),
    ("dense_2d", "6060a0b8f4fa0192", 692274.0),
    ("emccd_lognormal_mask", "2538ec404b5d54e3", 2850068.0),
])
def test_2d_draws_and_frames_are_pinned_on_every_path(name, digest, frame_sum):
    """Digests computed with the simulator before 3D and blinking existed (default camera,
    dense 2D preset, EMCCD + log-normal photons + density mask): emitters, background and
    frames of 2D single frames must not change."""
    mask = np.zeros((8, 8), np.float32)
    mask[2:6, 1:7] = 1.0
    imaging, density_mask = {
        "default": (S.ImagingConfig(), None),
        "dense_2d": (S.dense_2d_imaging(), None),
        "emccd_lognormal_mask": (S.ImagingConfig(
            photon_distribution="lognormal", photon_params=(2000.0, 0.4),
            camera=S.CameraConfig.emccd(300.0)), mask),
    }[name]
    out = S.simulate(tf.constant([11, 4], tf.int64), 3, 16, 20, imaging,
                     density_mask=density_mask)
    assert set(out) == {"frames", "mean_photons", "background", "x", "y", "photons", "sigma",
                        "mask"}  # no 3D keys in 2D
    assert float(out["frames"].numpy().sum()) == frame_sum
    assert _digest(out) == digest


def test_spurious_charge_adds_electrons_before_the_gain():
    cam = S.CameraConfig(qe=0.5, read_noise_e=0.0, e_per_adu=0.25, baseline_adu=100.0,
                         quantize=False, spurious_charge_e=3.0)
    mean, var = noise_stats(cam, photons=10.0)
    # Poisson mean and variance 0.5 x 10 + 3 = 8 electrons.
    assert mean == pytest.approx(8 / 0.25 + 100, rel=2e-3)
    assert var == pytest.approx(8 / 0.25**2, rel=0.02)
    assert float(S.expected_adu(10.0, cam)) == pytest.approx(8 / 0.25 + 100)
    with pytest.raises(LoczooError, match="spurious_charge_e"):
        S.CameraConfig(spurious_charge_e=-1.0)


def test_2d_psf_in_a_z_range_and_fixed_astigmatism():
    # A z range without astigmatism: z labels, round PSF of the in-focus width.
    flat = S.ImagingConfig(z_range_nm=(-400.0, 400.0))
    out = S.simulate(tf.constant([2, 2], tf.int64), 4, 16, 16, flat)
    np.testing.assert_array_equal(out["sigma_x"], out["sigma"])
    z = out["z"].numpy()[out["mask"].numpy()]
    assert z.min() >= -400 and z.max() <= 400 and z.std() > 150
    # Astigmatism with z fixed at 0: 3D outputs, z = 0, widths sigma0 sqrt(1 + (250/280)^2).
    fixed = S.ImagingConfig(astigmatism=S.AstigmatismConfig())
    assert fixed.is_3d
    out = S.simulate(tf.constant([2, 2], tf.int64), 4, 16, 16, fixed)
    m = out["mask"].numpy()
    assert np.all(out["z"].numpy()[m] == 0)
    np.testing.assert_allclose(out["sigma_x"].numpy()[m], out["sigma"].numpy()[m] * math.sqrt(
        1 + (250 / 280) ** 2), rtol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"z_range_nm": (500.0, -500.0)}, "z_range_nm"),
    ({"on_time_frames": -1.0}, "on_time_frames"),
    ({"z_range_nm": (-800.0, 800.0), "astigmatism": S.AstigmatismConfig(b_y=-0.5)},
     "sigma_y"),
])
def test_bad_3d_and_blinking_options_are_refused(kwargs, match):
    with pytest.raises(LoczooError, match=match):
        S.ImagingConfig(**kwargs)
    with pytest.raises(LoczooError, match="depth_nm"):
        S.AstigmatismConfig(depth_nm=0.0)


def test_smlm2016_3d_preset():
    imaging = S.smlm2016_3d_imaging()
    assert imaging.is_3d and imaging.z_range_nm == (-750.0, 750.0)
    assert imaging.astigmatism == S.AstigmatismConfig()
    cam = imaging.camera
    assert (cam.qe, cam.em_gain, cam.e_per_adu, cam.baseline_adu, cam.read_noise_e,
            cam.spurious_charge_e) == (1.0, 300.0, 45.0, 100.0, 74.4, 0.002)
    # 1.75 emitters / um^2 on average: about 72 in a 64 x 64 px frame.
    assert 64 * 64 * 0.01 * np.mean(imaging.density_per_um2) == pytest.approx(71.7, abs=0.1)


def test_blinking_photons_are_flux_times_time_on():
    imaging = replace(S.ImagingConfig(density_per_um2=(3.0, 3.0)), on_time_frames=1.5)
    T = 6
    sim = S.simulate_sequence(tf.constant([4, 1], tf.int64), 32, T, 16, 16, imaging)
    photons, flux = sim["photons"].numpy(), sim["flux"].numpy()  # [B, T, M], [B, M]
    t0, dur, exists = sim["t_start"].numpy(), sim["t_on"].numpy(), sim["exists"].numpy()
    # Frame t gets flux x |[t0, t0 + D] within [t, t + 1]|.
    t = np.arange(T)[None, :, None]
    overlap = np.clip(np.minimum(t0[:, None] + dur[:, None], t + 1)
                      - np.maximum(t0[:, None], t), 0, None)
    np.testing.assert_allclose(photons, flux[:, None] * overlap * exists[:, None], rtol=1e-5,
                               atol=1e-3)
    # On for a whole frame: exactly the flux.
    whole = (t0[:, None] <= t) & (t0[:, None] + dur[:, None] >= t + 1) & exists[:, None]
    assert whole.sum() > 100
    np.testing.assert_array_equal(photons[whole], np.broadcast_to(flux[:, None], whole.shape)[
        whole])
    # Inside the window: the frames together get flux x on-time.
    within = exists & (t0 >= 0) & (t0 + dur <= T)
    assert within.sum() > 100
    np.testing.assert_allclose((photons.sum(axis=1) / np.maximum(flux, 1))[within], dur[within],
                               atol=1e-5)
    # Emitters keep x, y, z and their id in every frame; mask = on, real and inside.
    for key in ("x", "y", "z", "sigma_y"):
        v = sim[key].numpy()
        np.testing.assert_array_equal(v, np.broadcast_to(v[:, :1], v.shape))
    ids = sim["id"].numpy()
    assert np.all((ids > 0) == exists) and np.all(ids[exists] == np.nonzero(exists)[1] + 1)
    x, y, mask = sim["x"].numpy(), sim["y"].numpy(), sim["mask"].numpy()
    inside = (x >= 0) & (x < 1600) & (y >= 0) & (y < 1600)
    np.testing.assert_array_equal(mask, (photons > 0) & inside & exists[:, None])


def test_blinking_density_per_frame_within_statistical_tolerance():
    """Mean emitters on per frame and um^2 in the frames away from the start (the first frames
    lack a little: emitters on longer than 3 tau + t cannot reach frame t from the padding)."""
    imaging = replace(S.ImagingConfig(density_per_um2=(5.0, 5.0)), on_time_frames=1.0)
    sim = S.simulate_sequence(tf.constant([8, 8], tf.int64), 300, 8, 16, 16, imaging)
    per_frame = sim["mask"].numpy().sum(axis=-1)  # [B, T]
    late = per_frame[:, 2:].mean() / 2.56
    first = per_frame[:, 0].mean() / 2.56
    print(f"emitters on per um^2: frames 2-7 {late:.3f}, frame 0 {first:.3f} (target 5)")
    # 300 independent sequences of about 12.8 on per frame: standard error about 1.2 %.
    assert late == pytest.approx(5.0, rel=0.04)
    assert first == pytest.approx(5.0 * (1 - math.exp(-3) / 2), rel=0.05)


def test_without_blinking_every_emitter_is_on_for_one_whole_frame():
    imaging = S.ImagingConfig(density_per_um2=(4.0, 4.0), margin_px=0.0)
    sim = S.simulate_sequence(tf.constant([1, 5], tf.int64), 100, 4, 16, 16, imaging)
    photons, flux, exists = sim["photons"].numpy(), sim["flux"].numpy(), sim["exists"].numpy()
    on = photons > 0
    np.testing.assert_array_equal(on.sum(axis=1), exists.astype(int))
    np.testing.assert_array_equal(photons.sum(axis=1), flux)
    counts = sim["mask"].numpy().sum(axis=-1)
    assert counts.mean() == pytest.approx(4 * 2.56, rel=0.05)
    assert counts.var() == pytest.approx(4 * 2.56, rel=0.25)  # independent Poisson frames


def test_sequence_frames_render_the_emitters_on_in_each_frame():
    imaging = replace(S.smlm2016_3d_imaging(), on_time_frames=2.0, margin_px=1.0)
    sim = S.simulate_sequence(tf.constant([6, 6], tf.int64), 2, 3, 12, 12, imaging)
    for b in range(2):
        for t in range(3):
            em = {k: sim[k][b:b + 1, t] for k in ("x", "y", "photons", "sigma_x", "sigma_y")}
            em["exists"] = em["photons"] > 0
            em["sigma"] = em["sigma_x"]
            expected = S.render_emitters(em, 12, 12, 100.0)[0] + sim["background"][b, t]
            np.testing.assert_allclose(sim["mean_photons"][b, t], expected, rtol=1e-4,
                                       atol=1e-2)
    # One background per sequence; noise independent per frame.
    np.testing.assert_array_equal(sim["background"][:, 0], sim["background"][:, 2])
    assert not np.array_equal(sim["frames"][:, 0], sim["frames"][:, 1])


def test_sequences_are_reproducible_inside_tf_data():
    imaging = replace(S.smlm2016_3d_imaging(), on_time_frames=1.0)
    eager = S.simulate_sequence(tf.constant([3, 0], tf.int64), 2, 3, 16, 16, imaging)
    other = S.simulate_sequence(tf.constant([3, 1], tf.int64), 2, 3, 16, 16, imaging)
    ds = tf.data.Dataset.range(2).map(lambda i: S.simulate_sequence(
        tf.stack([tf.constant(3, tf.int64), i]), 2, 3, 16, 16, imaging))
    first, second = list(ds)
    for key in ("frames", "x", "z", "photons", "mask", "id"):
        np.testing.assert_array_equal(first[key], eager[key])
        np.testing.assert_array_equal(second[key], other[key])
    assert not np.array_equal(other["frames"], eager["frames"])
    table = S.sequence_to_table(eager)
    np.testing.assert_array_equal(np.sort(table.z), np.sort(eager["z"].numpy()[
        eager["mask"].numpy()]))


def test_astigmatism_json_files_and_nested_overrides(tmp_path):
    from dataclasses import dataclass, field

    from loczoo.config import load_json, save_json, with_overrides

    @dataclass(frozen=True, kw_only=True)
    class Entry:
        imaging: S.ImagingConfig = field(default_factory=S.dense_2d_imaging)

    for imaging in (S.dense_2d_imaging(), S.smlm2016_3d_imaging(), S.ImagingConfig(
            astigmatism=S.AstigmatismConfig(focus_x_nm=-300.0, a_y=0.1))):
        save_json(Entry(imaging=imaging), tmp_path / "c.json")
        loaded = load_json(Entry, tmp_path / "c.json")
        assert loaded == Entry(imaging=imaging)
        assert isinstance(loaded.imaging.camera, S.CameraConfig)
    entry = with_overrides(Entry(), ["imaging.z_range_nm=[-500,500]",
                                     'imaging.astigmatism={"depth_nm": 300}',
                                     "imaging.camera.spurious_charge_e=0.01"])
    assert entry.imaging.z_range_nm == (-500, 500)
    assert entry.imaging.astigmatism == S.AstigmatismConfig(depth_nm=300.0)
    assert entry.imaging.camera.spurious_charge_e == 0.01
    back = with_overrides(entry, ["imaging.astigmatism=null", "imaging.z_range_nm=[0,0]",
                                  "imaging.camera.spurious_charge_e=0"])
    assert back == Entry() and not back.imaging.is_3d
    with pytest.raises(LoczooError, match="negative PSF width"):
        with_overrides(entry, ['imaging.astigmatism={"a_x": -1}'])


def test_crlb_3d_reduces_to_the_2d_bound_and_is_symmetric_in_z():
    from loczoo.smlm import metrics as M

    # Without astigmatism: the existing exact 2D bound (worked example, section 6.3).
    flat = M.crlb_astigmatic_psf(2250, 110, 100, 20, roi_px=11)
    assert float(flat["x"]) == pytest.approx(float(M.crlb_gaussian_psf(2250, 110, 100, 20)),
                                             rel=1e-7)
    assert float(flat["y"]) == pytest.approx(float(flat["x"]), rel=1e-7)
    assert np.isnan(flat["z"])
    astig = S.AstigmatismConfig()
    # At z = 0 the spot is round with sigma0 sqrt(1 + (250/280)^2), and z is orthogonal to x.
    z0 = M.crlb_astigmatic_psf(5000, 110, 100, 50, z_nm=0.0, astigmatism=astig, roi_px=21)
    round_sigma = 110 * math.sqrt(1 + (250 / 280) ** 2)
    assert float(z0["x"]) == pytest.approx(
        float(M.crlb_gaussian_psf(5000, round_sigma, 100, 50, roi_px=21)), rel=1e-6)
    # The foci mirror each other: x at z is y at -z, and the z bound is even in z.
    z = np.array([-600.0, -300.0, 300.0, 600.0])
    b = M.crlb_astigmatic_psf(5000, 110, 100, 50, z_nm=z, astigmatism=astig)
    np.testing.assert_allclose(b["x"], b["y"][::-1], rtol=1e-6)
    np.testing.assert_allclose(b["z"], b["z"][::-1], rtol=1e-6)
    print("z CRLB (nm) at z = 0, +/-300, +/-600 for 5000 photons, 50 bg:",
          float(z0["z"]), b["z"][2:])
    assert 3 < float(z0["z"]) < 30 and np.all(b["z"] > 3) and np.all(b["z"] < 60)
    # EMCCD: variances double.
    emccd = M.crlb_astigmatic_psf(5000, 110, 100, 50, z_nm=z, astigmatism=astig,
                                  excess_noise=2.0)
    np.testing.assert_allclose(emccd["z"] ** 2, 2 * b["z"] ** 2, rtol=1e-9)


# ---------------------------------------------------------------- memory estimate and refusal


def test_memory_estimate_numbers():
    imaging = S.ImagingConfig(density_per_um2=(1.0, 5.0))
    # 2 frames of 10 x 12 px with 8 padded emitters: profiles 4 copies x 4 bytes x 2 x 8 x
    # (10 + 12 + 2), 48 bytes per pixel, 64 per emitter; a 16-cell mask 4 x 16 x (2 + 2 x 2).
    assert S.simulation_memory_bytes(imaging, 2, 10, 12, max_emitters=8) == (
        16 * 2 * 8 * 24 + 48 * 2 * 120 + 64 * 2 * 8)
    assert S.simulation_memory_bytes(imaging, 2, 10, 12, max_emitters=8,
                                     density_mask_cells=16) == (
        16 * 2 * 8 * 24 + 48 * 2 * 120 + 64 * 2 * 8 + 4 * 16 * 6)
    # A stack: float32 frames (+ 8 bytes per pixel to write them), 160 bytes per expected
    # ground-truth row (5 / um^2 on 1 x 1.2 um), and one batch of min(64, frames) frames.
    total, stack, working = S.stack_memory_bytes(imaging, 100, 10, 12, write=True)
    assert stack == 100 * 120 * 12 + int(100 * 5.0 * 1.2 * 160)
    assert working == S.simulation_memory_bytes(imaging, 64, 10, 12)
    assert total == stack + working


def test_absurd_simulations_are_refused_before_any_work(monkeypatch):
    imaging = S.ImagingConfig()
    for call in (lambda: S.simulate_stack(imaging, 20, 100_000, 100_000),
                 lambda: S.simulate([0, 1], 64, 100_000, 100_000, imaging),
                 lambda: S.simulate_sequence([0, 1], 1, 16, 100_000, 100_000, imaging)):
        with pytest.raises(LoczooError, match=r"^simulation would need [\d.]+ PB \(.*100000 x "
                                              r"100000 px.*\), more than the .* budget"):
            call()
    with pytest.raises(LoczooError, match="frames and frame size must be >= 1"):
        S.simulate_stack(imaging, 0, 16, 16)
    monkeypatch.setattr(S, "MEMORY_BUDGET_BYTES", 50_000_000)
    S.simulate_stack(imaging, 2, 16, 16)  # small: fine
    need, stack, working = S.stack_memory_bytes(imaging, 1000, 256, 256)
    with pytest.raises(LoczooError) as err:
        S.simulate_stack(imaging, 1000, 256, 256)
    assert str(err.value) == (
        f"simulation would need {S.format_bytes(need)} (1000 frames of 256 x 256 px: the "
        f"stack and its ground truth {S.format_bytes(stack)}, working memory "
        f"{S.format_bytes(working)} for 64 frames at a time), more than the 50.0 MB budget "
        "(80% of this machine's memory); use fewer frames (--frames) or smaller frames "
        "(--size)")


@pytest.mark.parametrize("on_time", [0.0, 2.0])
def test_stack_is_its_batches_in_order(on_time):
    # simulate_stack fills one preallocated array: the frames are those of the batches.
    imaging = S.ImagingConfig(on_time_frames=on_time)
    frames, truth = S.simulate_stack(imaging, 5, 12, 14, seed=3, batch=2)
    assert frames.shape == (5, 12, 14) and frames.dtype == np.float32
    parts = []
    for start in (0, 2, 4):
        size = min(2, 5 - start)
        seed = tf.constant([3, start], tf.int64)
        if on_time:
            parts.append(S.simulate_sequence(seed, 1, size, 12, 14, imaging)["frames"][0])
        else:
            parts.append(S.simulate(seed, size, 12, 14, imaging)["frames"])
    np.testing.assert_array_equal(frames, np.concatenate(parts))


def test_astigmatism_spread_draws_one_psf_per_frame_from_the_family():
    """With astigmatism_spread 0.3 each frame's foci and depth are the astigmatism's times
    factors in 0.7..1.3, one draw per frame (all emitters of a frame share it); 0 is the
    astigmatism itself."""
    from dataclasses import replace

    from scipy.optimize import least_squares

    from loczoo.errors import LoczooError
    from loczoo.smlm.simulate import AstigmatismConfig, ImagingConfig, sample_emitters

    astig = AstigmatismConfig()
    imaging = ImagingConfig(z_range_nm=(-600.0, 600.0), astigmatism=astig,
                            psf_sigma_nm=(100.0, 100.0), density_per_um2=(5.0, 5.0),
                            astigmatism_spread=0.3)
    e = sample_emitters([4, 2], 64, 32, 32, imaging, 60)
    z, sx, sy, exists = (np.asarray(e[k]) for k in ("z", "sigma_x", "sigma_y", "exists"))
    fits = []
    for f in range(64):
        keep = exists[f]
        assert keep.sum() >= 3
        # sigma^2 / sigma0^2 - 1 = ((z - c f) / (d g))^2: solve each frame's focus and depth
        # factors from its emitters and check they are shared and in range.
        def residual(v, zf=z[f][keep], sf=sx[f][keep]):
            return 100.0 * np.sqrt(astig.widening_squared(zf, "x", v[0], v[1])) - sf

        fit = least_squares(residual, [1.0, 1.0], bounds=([0.5, 0.5], [1.5, 1.5]))
        assert np.abs(fit.fun).max() < 0.05   # nm: one (focus, depth) pair explains the frame
        fits.append(fit.x)
    fits = np.array(fits)
    assert fits.min() >= 0.7 and fits.max() <= 1.3
    assert fits[:, 0].std() > 0.1 and fits[:, 1].std() > 0.1   # they vary between frames
    plain = sample_emitters([4, 2], 4, 32, 32, replace(imaging, astigmatism_spread=0.0), 60)
    want = astig.sigmas(np.asarray(plain["z"]), 100.0)[0]
    np.testing.assert_allclose(np.asarray(plain["sigma_x"])[np.asarray(plain["exists"])],
                               want[np.asarray(plain["exists"])], rtol=1e-5)
    with pytest.raises(LoczooError, match="astigmatism_spread must be in"):
        replace(imaging, astigmatism_spread=1.0)
    with pytest.raises(LoczooError, match="needs an astigmatism"):
        ImagingConfig(astigmatism_spread=0.2)
    # Every member is checked: with b_x = -0.04, sigma_x^2 turns negative beyond |u| = 5.1;
    # over -600..600 nm |u| reaches 3.0 (focus 250 nm, depth 280 nm), but 5.7 for the member
    # with focus 1.4 x 250 nm and depth 0.6 x 280 nm.
    negative = AstigmatismConfig(b_x=-0.04)
    ImagingConfig(z_range_nm=(-600.0, 600.0), astigmatism=negative)
    with pytest.raises(LoczooError, match="negative PSF width"):
        ImagingConfig(z_range_nm=(-600.0, 600.0), astigmatism=negative, astigmatism_spread=0.4)
