"""DECODE: loss on hand-computed cases, output activations, post-processing, the fast stack
forward and the 3-frame training windows."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from loczoo.decode.config import CHANNELS, DECODEConfig, autoset_scaling
from loczoo.decode.loss import DECODELoss, gmm_negative_log_likelihood, pack_targets, unpack_targets
from loczoo.decode.model import build_model, consecutive_windows_forward
from loczoo.decode.pipeline import make_dataset, preprocess
from loczoo.decode.postprocess import outputs_to_localizations, spatial_integration


def _outputs(p, photons, dx, dy, sigma, background=0.0, z=0.0, sigma_z=0.1):
    """Network outputs [1, 1, W, 10] for one row of W pixels (values per pixel)."""
    w = len(p)
    out = np.zeros((1, 1, w, 10), np.float32)
    out[0, 0, :, 0] = p
    out[0, 0, :, 1] = photons
    out[0, 0, :, 2] = dx
    out[0, 0, :, 3] = dy
    out[0, 0, :, 4] = z
    out[0, 0, :, 5:8] = np.asarray(sigma, np.float32).reshape(w, 3)
    out[0, 0, :, 8] = sigma_z
    out[0, 0, :, 9] = background
    return out


def _normal_logpdf(x, mean, sigma):
    return -0.5 * ((x - mean) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def test_gmm_loss_one_emitter_by_hand():
    # Two pixels; pixel 0 (centre x 0.5, y 0.5) predicts the emitter, pixel 1 barely anything.
    p, phot, dx, dy = [0.9, 0.1], [0.5, 0.2], [0.1, -0.3], [0.0, 0.2]
    sig = [[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]]
    out = _outputs(p, phot, dx, dy, sig)
    target = np.array([[[1.0, 0.45, 0.7, 0.4, 0.0]]], np.float32)  # mask, phot, x, y, z
    loss = float(gmm_negative_log_likelihood(out, target, predict_z=False)[0])

    p_mean, p_var = 1.0, 0.9 * 0.1 + 0.1 * 0.9
    count = _normal_logpdf(1.0, p_mean, math.sqrt(p_var)) * 1.0
    comps = []
    for k in range(2):
        mu = (phot[k], k + 0.5 + dx[k], 0.5 + dy[k])
        lp = sum(_normal_logpdf(t, m, s) for t, m, s in zip((0.45, 0.7, 0.4), mu, sig[k]))
        comps.append(math.log(p[k] / p_mean) + lp)
    mixture = np.logaddexp(*comps)
    assert loss == pytest.approx(-(count + mixture), rel=1e-5)


def test_gmm_loss_two_emitters_and_z_by_hand():
    p, phot, dx, dy = [0.6, 0.7, 0.2], [0.3, 0.6, 0.1], [0.0, 0.2, 0.0], [0.1, -0.1, 0.0]
    sig = [[0.2, 0.3, 0.3], [0.2, 0.2, 0.4], [1.0, 1.0, 1.0]]
    z, sz = [0.5, -0.2, 0.0], [0.3, 0.2, 1.0]
    out = _outputs(p, phot, dx, dy, sig)
    out[0, 0, :, 4], out[0, 0, :, 8] = z, sz
    targets = np.array([[[1, 0.35, 0.4, 0.6, 0.4], [1, 0.5, 1.8, 0.3, -0.1],
                         [0, 9.0, 9.0, 9.0, 9.0]]], np.float32)  # the third row is padding
    loss = float(gmm_negative_log_likelihood(out, targets, predict_z=True)[0])

    p_mean = sum(p)
    p_var = sum(q * (1 - q) for q in p)
    count = _normal_logpdf(2.0, p_mean, math.sqrt(p_var)) * 2.0
    total = 0.0
    for t in targets[0, :2, 1:]:
        comps = []
        for k in range(3):
            mu = (phot[k], k + 0.5 + dx[k], 0.5 + dy[k], z[k])
            sd = (*sig[k], sz[k])
            comps.append(math.log(p[k] / p_mean)
                         + sum(_normal_logpdf(a, m, s) for a, m, s in zip(t, mu, sd)))
        total += np.logaddexp.reduce(comps)
    assert loss == pytest.approx(-(count + total), rel=1e-5)


def test_empty_frame_costs_only_the_background_error():
    out = _outputs([0.3, 0.2], [0.5, 0.5], [0, 0], [0, 0], [[0.2] * 3] * 2, background=0.4)
    empty = np.zeros((1, 4, 5), np.float32)
    assert float(gmm_negative_log_likelihood(out, empty, predict_z=False)[0]) == 0.0
    background = np.array([[[0.1, 0.4]]], np.float32)
    loss = DECODELoss()(pack_targets(empty, background), out)
    assert float(loss) == pytest.approx((0.4 - 0.1) ** 2, rel=1e-6)
    unknown = -np.ones_like(background)
    assert float(DECODELoss()(pack_targets(empty, unknown), out)) == 0.0


def test_unknown_photons_drop_that_dimension():
    out = _outputs([0.9], [0.5], [0.0], [0.0], [[0.1, 0.2, 0.2]])
    with_phot = np.array([[[1, 0.5, 0.5, 0.5, 0]]], np.float32)
    without = with_phot.copy()
    without[0, 0, 1] = np.nan
    a = float(gmm_negative_log_likelihood(out, with_phot, predict_z=False)[0])
    b = float(gmm_negative_log_likelihood(out, without, predict_z=False)[0])
    assert a - b == pytest.approx(-_normal_logpdf(0.5, 0.5, 0.1), rel=1e-5)


def test_pack_and_unpack_round_trip():
    emitters = np.random.default_rng(0).normal(size=(2, 7, 5)).astype(np.float32)
    background = np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32)
    e, b = unpack_targets(pack_targets(emitters, background), 3, 4)
    np.testing.assert_array_equal(e, emitters)
    np.testing.assert_array_equal(b, background)


@pytest.fixture(scope="module")
def tiny():
    import keras

    keras.utils.set_random_seed(0)
    config = autoset_scaling(DECODEConfig.tiny())
    return config, build_model(config)


def test_output_ranges_and_initial_p(tiny):
    config, model = tiny
    frames = np.random.default_rng(0).poisson(120, (3, 16, 16)).astype(np.float32)
    out = np.asarray(model(preprocess(frames), training=False))
    assert out.shape == (3, 16, 16, len(CHANNELS))
    p = out[..., 0]
    # The p head's bias of -6: the prior detection probability is small.
    bias = model.get_layer("heads").get_layer("head_p_out").bias
    np.testing.assert_array_equal(bias, [-6.0])
    assert 0 < np.median(p) < 0.02
    assert np.all(np.abs(out[..., 2:4]) <= 1)
    sigmas = out[..., 5:8]
    assert np.all((sigmas >= 0.001) & (sigmas <= 3.001))
    # 2D mode: z and its sigma are the disabled-attribute constants.
    np.testing.assert_array_equal(out[..., 4], 0.0)
    np.testing.assert_allclose(out[..., 8], config.sigma_z_fixed)


def test_stack_forward_equals_the_window_model(tiny):
    """The shared U-Net run once per frame gives the same outputs as per window."""
    config, model = tiny
    frames = np.random.default_rng(1).poisson(150, (5, 16, 16)).astype(np.float32)
    windows = preprocess(frames)
    fast = consecutive_windows_forward(model, config)
    np.testing.assert_allclose(fast(windows), model(windows, training=False), atol=1e-4)
    np.testing.assert_allclose(fast(windows[:1]), model(windows[:1], training=False),
                               atol=1e-4)


def test_another_camera_gives_the_same_outputs_for_the_same_photons(tiny):
    """``with_camera`` rebuilds the ADU -> photons step: frames of the same photons from an
    sCMOS at 1 ADU per photon, offset 500, give the outputs of the training camera's frames."""
    from loczoo.bundle import ModelBundle
    from loczoo.registry import get_entry

    config, model = tiny
    bundle = ModelBundle(entry=get_entry("decode"), config=config, model=model, metadata={},
                         source="tiny")
    cam = config.imaging.camera
    photons = np.random.default_rng(2).gamma(2.0, 60.0, (4, 16, 16)).astype(np.float32)
    training_adu = photons / cam.photons_per_adu + cam.baseline_adu
    other = bundle.with_camera(["qe=1", "e_per_adu=1", "em_gain=null", "baseline_adu=500"])
    assert other.config.imaging.camera.baseline_adu == 500 and other.model is not model
    expected = np.concatenate([o for _, o in bundle.predict_batches(training_adu, 4)])
    got = np.concatenate([o for _, o in other.predict_batches(photons + 500, 4)])
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # Without the camera the same frames read as a very different signal.
    wrong = np.concatenate([o for _, o in bundle.predict_batches(photons + 500, 4)])
    assert np.abs(wrong - expected).max() > 0.01


def test_domain_notes_flag_a_background_outside_the_training_range(tiny):
    from loczoo.bundle import ModelBundle
    from loczoo.registry import get_entry

    config, model = tiny
    bundle = ModelBundle(entry=get_entry("decode"), config=config, model=model, metadata={},
                         source="tiny")
    cam = config.imaging.camera
    low, high = config.imaging.background_photons
    rng = np.random.default_rng(3)

    def stack(background_photons):
        return rng.poisson(background_photons, (3, 16, 16)) / cam.photons_per_adu + cam.baseline_adu

    assert bundle.domain_notes(stack((low + high) / 2)) == []
    notes = bundle.domain_notes(stack(20 * high))
    assert len(notes) == 1 and "outside its training range" in notes[0]
    estimate = float(notes[0].split("about ")[1].split(" photons/pixel")[0])
    assert estimate == pytest.approx(20 * high, rel=0.02)
    # The same frames read with their own camera (ten times more photons per ADU) are bright.
    brighter = bundle.with_camera([f"e_per_adu={10 * cam.e_per_adu}"])
    assert brighter.domain_notes(stack((low + high) / 2)) != []


def test_windows_repeat_the_stack_ends():
    frames = np.arange(3)[:, None, None] * np.ones((3, 4, 4), np.float32)
    w = np.asarray(preprocess(frames))
    np.testing.assert_array_equal(w[:, 0, 0], [[0, 0, 1], [0, 1, 2], [1, 2, 2]])


def test_spatial_integration_by_hand():
    p = np.zeros((1, 5, 6), np.float32)
    p[0, 1, 1], p[0, 1, 2] = 0.5, 0.3      # one emitter spread over two pixels
    p[0, 3, 4], p[0, 3, 5] = 0.7, 0.65     # two emitters in adjacent pixels
    p[0, 4, 0] = 0.05                      # below threshold
    agg = np.asarray(spatial_integration(p, 0.1, 0.6))
    assert agg[0, 1, 1] == pytest.approx(0.8)
    assert agg[0, 1, 2] == 0  # not a maximum, below the split threshold
    assert agg[0, 3, 4] == pytest.approx(1.0)  # 0.7 + 0.65 clamped
    assert agg[0, 3, 5] == pytest.approx(1.0)  # kept by the split threshold
    assert np.count_nonzero(agg) == 3


def test_postprocess_reads_every_channel(tiny):
    config, _ = tiny
    config = replace(config, predict_z=True, z_max=900.0,
                     imaging=replace(config.imaging, z_range_nm=(-750.0, 750.0)))
    out = np.zeros((1, 8, 8, 10), np.float32)
    out[..., 0] = 0.001
    out[0, 2, 5] = [0.95, 0.25, 0.2, -0.4, 0.5, 0.01, 0.1, 0.2, 0.05, 0.3]
    locs = outputs_to_localizations(out, config, pixel_size_nm=100.0, height=8, width=8)
    assert len(locs) == 1
    assert locs.x[0] == pytest.approx((5 + 0.5 + 0.2) * 100)
    assert locs.y[0] == pytest.approx((2 + 0.5 - 0.4) * 100)
    assert locs.z[0] == pytest.approx(450.0)
    assert locs.photons[0] == pytest.approx(0.25 * config.photon_max)
    assert locs.sigma_x[0] == pytest.approx(10.0)
    assert locs.sigma_y[0] == pytest.approx(20.0)
    assert locs.sigma_z[0] == pytest.approx(45.0)
    assert locs.prob[0] == pytest.approx(0.95 + 4 * 0.001)
    # A detection in the padding beyond the frame is dropped.
    assert len(outputs_to_localizations(out, config, pixel_size_nm=100.0, height=2,
                                        width=8)) == 0


def test_simulated_windows_share_emitters_and_targets_match(tiny):
    """The centre frame's targets sit on its bright spots, in pixel units."""
    config, _ = tiny
    config = replace(config, batch_size=4, patch_size=16)
    windows, packed = next(iter(make_dataset(config, "train", seed=3)))
    assert windows.shape == (4, 16, 16, 3)
    emitters, background = unpack_targets(packed, 16, 16)
    emitters = np.asarray(emitters)
    assert emitters[..., 0].sum() > 0
    real = emitters[emitters[..., 0] > 0.5]
    assert np.all((real[:, 2] >= 0) & (real[:, 2] < 16) & (real[:, 3] >= 0) & (real[:, 3] < 16))
    assert np.all(real[:, 1] * config.photon_max >= config.photon_min)
    assert np.all((np.asarray(background) > 0) & (np.asarray(background) < 1))
    # Blinking: consecutive frames are correlated more than frames of different windows.
    w = np.asarray(windows) - np.asarray(windows).mean(axis=(1, 2), keepdims=True)
    same = np.mean([np.corrcoef(w[i, ..., 0].ravel(), w[i, ..., 1].ravel())[0, 1]
                    for i in range(4)])
    other = np.mean([np.corrcoef(w[i, ..., 1].ravel(), w[(i + 1) % 4, ..., 1].ravel())[0, 1]
                     for i in range(4)])
    assert same > other + 0.1


def test_optimizer_is_the_reference_adamw(tiny):
    from loczoo.decode.pipeline import make_optimizer

    config, _ = tiny
    opt = make_optimizer(config)
    assert type(opt).__name__ == "AdamW"
    assert opt.weight_decay == pytest.approx(0.1)
    assert opt.global_clipnorm == pytest.approx(0.03)
    steps = config.lr_decay_samples // config.batch_size
    schedule = opt._learning_rate
    assert float(schedule(steps - 1)) == pytest.approx(2e-4)
    assert float(schedule(steps)) == pytest.approx(2e-4 * 0.9)


def test_gradients_reach_every_weight(tiny):
    config, model = tiny
    x, y = next(iter(make_dataset(config, "train", seed=0)))
    with tf.GradientTape() as tape:
        loss = DECODELoss()(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss))
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_3d_windows_carry_z_targets_and_train():
    config = DECODEConfig.variants()["3d"]
    tiny = DECODEConfig.tiny()
    config = autoset_scaling(replace(config, features=8, inter_features=8, patch_size=16,
                                     batch_size=2))
    assert config.z_max == pytest.approx(1.2 * 750)
    assert tiny.imaging.camera != config.imaging.camera  # the SMLM 2016 EMCCD
    x, y = next(iter(make_dataset(config, "train", seed=1)))
    emitters, _ = unpack_targets(y, 16, 16)
    real = np.asarray(emitters)[np.asarray(emitters)[..., 0] > 0.5]
    assert len(real) > 0
    assert np.all(np.abs(real[:, 4]) <= 750 / config.z_max + 1e-6)
    assert np.std(real[:, 4]) > 0.1  # z varies
    model = build_model(config)
    out = model(x, training=False)
    assert float(tf.reduce_max(tf.abs(out[..., 4]))) > 0  # z is predicted in 3D
    assert np.isfinite(float(DECODELoss(predict_z=True)(y, out)))


def test_bundle_batches_give_each_frame_its_neighbours(tiny, tmp_path):
    """Localizing in batches of 2 gives the same outputs as the whole stack at once: every
    batch gets the frames on either side of it from the stack."""
    from loczoo.bundle import ModelBundle
    from loczoo.registry import get_entry

    config, _ = tiny
    # p starts near 0.5 (no -6 prior), so that the untrained network detects something.
    config = replace(config, p_bias=0.0)
    model = build_model(config)
    bundle = ModelBundle(entry=get_entry("decode"), config=config, model=model, metadata={},
                         source="test")
    frames = np.random.default_rng(2).poisson(150, (5, 16, 16)).astype(np.float32)
    whole = np.asarray(model(preprocess(frames), training=False))
    parts = np.concatenate([out for _, out in bundle.predict_batches(frames, batch_size=2)])
    np.testing.assert_allclose(parts, whole, atol=1e-4)
    # Frames that are not a multiple of 4 are padded and the padding is cut from the results.
    # Offsets are below one pixel, so a detection in column 13 lies below (13.5 + 1) x 100 nm.
    locs = bundle.localize(frames[:, :15, :14], pixel_size_nm=100.0, batch_size=2)
    assert len(locs) > 0
    assert np.all(locs.x < 1450) and np.all(locs.y < 1550)


def test_reference_width_costs_about_five_gflop_per_frame():
    """The issue's figure: about 4-5 GFLOP per 64 x 64 frame with the shared U-Net run once per
    frame; the window model runs it three times."""
    from loczoo.flops import conv_flops

    config = autoset_scaling(DECODEConfig())
    model = build_model(config)
    f = config.inter_features
    part = {name: conv_flops(model.get_layer(name), shape) for name, shape in (
        ("shared_unet", (64, 64, 1)), ("union_unet", (64, 64, 3 * f)), ("heads", (64, 64, f)))}
    per_frame = sum(part.values())
    assert 4e9 < per_frame < 5e9
    window = conv_flops(model, (64, 64, 3))
    assert window == pytest.approx(per_frame + 2 * part["shared_unet"])
