"""Deep-STORM: architecture, loss on hand-computed cases, targets, post-processing, bias."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from loczoo.deep_storm.config import DeepSTORMConfig
from loczoo.deep_storm.loss import DeepSTORMLoss, deep_storm_loss
from loczoo.deep_storm.model import build_model
from loczoo.errors import LoczooError
from loczoo.smlm.heatmaps import heatmap_target, postprocess
from loczoo.smlm.targets import gaussian_kernel, spike_map


def test_gaussian_kernel_is_matlab_fspecial():
    k = gaussian_kernel(7, 1.0)
    assert k.sum() == pytest.approx(1.0)
    assert k[3, 3] == pytest.approx(0.159241, abs=1e-6)  # fspecial('gaussian',[7 7],1)
    assert (2 * k)[3, 3] == pytest.approx(0.318, abs=1e-3)  # methods.md: peak about 0.318
    np.testing.assert_allclose(k, k.T)


def test_reference_architecture_and_parameter_count():
    model = build_model(DeepSTORMConfig())
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 64, 128, 512, 128, 64, 32, 1]
    assert all(not c.use_bias for c in convs)
    assert convs[-1].kernel_size == (1, 1)
    # Conv weights 3x3 (no bias) + 1x1 head, plus 4 BatchNorm values per channel.
    conv = 9 * (1 * 32 + 32 * 64 + 64 * 128 + 128 * 512 + 512 * 128 + 128 * 64 + 64 * 32) + 32
    bn = 4 * (32 + 64 + 128 + 512 + 128 + 64 + 32)
    assert model.count_params() == conv + bn == 1_368_128


def test_output_is_upsampled_by_the_configured_factor():
    for up in (2, 4, 8):
        model = build_model(replace(DeepSTORMConfig.tiny(), upsampling=up))
        assert model(np.zeros((1, 8, 16, 1), np.float32)).shape == (1, 8 * up, 16 * up, 1)
    # The input is upsampled by nearest neighbour (each camera pixel -> up x up block).
    model = build_model(DeepSTORMConfig.tiny())
    up_layer = model.get_layer("upsample")
    x = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(np.asarray(up_layer(x))[0, :, :, 0],
                                  np.kron(x[0, :, :, 0], np.ones((2, 2))))


def test_loss_on_hand_computed_cases():
    kernel = (2.0 * gaussian_kernel(7, 1.0)).astype(np.float32)
    n = 15 * 15
    # Zero prediction: the loss is the mean square of the target.
    target = np.zeros((1, 15, 15, 1), np.float32)
    target[0, 7, 7, 0] = 3.0
    zero = np.zeros_like(target)
    assert float(deep_storm_loss(target, zero, kernel)[0]) == pytest.approx(9.0 / n, rel=1e-6)
    # A single spike of height a and no target: sum((2 k a)^2) / n + |a| / n.
    a = 5.0
    spike = np.zeros_like(target)
    spike[0, 7, 7, 0] = a
    expected = ((kernel * a) ** 2).sum() / n + a / n
    assert float(deep_storm_loss(zero, spike, kernel)[0]) == pytest.approx(expected, rel=1e-5)
    # The L1 weight scales only the second term.
    expected_w = ((kernel * a) ** 2).sum() / n + 0.5 * a / n
    got = float(deep_storm_loss(zero, spike, kernel, l1_weight=0.5)[0])
    assert got == pytest.approx(expected_w, rel=1e-5)
    # The Keras loss averages the per-sample values over the batch.
    loss = DeepSTORMLoss()
    batch_t = np.concatenate([target, zero])
    batch_p = np.concatenate([zero, spike])
    assert float(loss(batch_t, batch_p)) == pytest.approx((9.0 / n + expected) / 2, rel=1e-5)
    assert DeepSTORMLoss.from_config(loss.get_config()).get_config() == loss.get_config()


def test_spike_map_follows_the_pixel_convention():
    x = tf.constant([[10.0, 12.5, 99.9]])
    y = tf.constant([[0.0, 30.0, 99.9]])
    mask = tf.constant([[True, True, False]])
    spikes = spike_map(x, y, mask, 8, 8, 12.5).numpy()[0, :, :, 0]
    # pixel i covers [i, i+1) * 12.5 nm: x=10 -> col 0, x=12.5 -> col 1, y=30 -> row 2.
    assert spikes[0, 0] == 1 and spikes[2, 1] == 1 and spikes.sum() == 2


def test_heatmap_target_scaling():
    config = DeepSTORMConfig.tiny()  # 2x upsampling, target scale 100
    x = tf.constant([[375.0]])  # camera px 3.75 -> fine pixel 7 of 16
    y = tf.constant([[425.0]])
    target = heatmap_target(x, y, tf.constant([[True]]), config, 8, 8).numpy()[0, :, :, 0]
    assert target.sum() == pytest.approx(100.0, rel=1e-5)
    assert np.unravel_index(target.argmax(), target.shape) == (8, 7)
    assert target.max() == pytest.approx(100 * 0.159241, rel=1e-4)


def test_postprocess_recovers_emitters_without_bias():
    # Ideal network output: spikes of height target_scale / 2 at the emitters, since the loss
    # blurs the prediction with twice the kernel that made the target.
    config = replace(DeepSTORMConfig.tiny(), upsampling=8)
    rng = np.random.default_rng(0)
    n = 400
    x = rng.uniform(300, 2900, (n, 1)).astype(np.float32)  # one emitter per frame
    y = rng.uniform(300, 2900, (n, 1)).astype(np.float32)
    spikes = spike_map(tf.constant(x), tf.constant(y), tf.ones((n, 1), bool), 256, 256, 12.5)
    locs = postprocess(50.0 * spikes, config, pixel_size_nm=100.0, height=32, width=32)
    assert len(locs) == n and np.array_equal(locs.frame, np.arange(1, n + 1))
    dx, dy = locs.x - x[:, 0], locs.y - y[:, 0]
    # Spikes sit at the centre of their 12.5 nm pixel: errors are within half a pixel and the
    # mean error over uniformly placed emitters vanishes.
    assert np.abs(dx).max() <= 6.25 + 1e-3 and np.abs(dy).max() <= 6.25 + 1e-3
    assert abs(dx.mean()) < 0.6 and abs(dy.mean()) < 0.6
    assert np.allclose(locs.prob, 0.5)


def test_postprocess_threshold_and_crop():
    config = DeepSTORMConfig.tiny()
    out = np.zeros((1, 16, 16, 1), np.float32)
    out[0, 3, 4, 0] = 20.0   # above 0.1 x 100
    out[0, 10, 10, 0] = 5.0  # below threshold
    out[0, 14, 2, 0] = 50.0  # in the padding rows (height 6 camera px = 12 fine px)
    locs = postprocess(out, config, pixel_size_nm=100.0, height=6, width=8)
    assert len(locs) == 1
    assert locs.x[0] == pytest.approx(4.5 * 50) and locs.y[0] == pytest.approx(3.5 * 50)
    assert locs.prob[0] == pytest.approx(0.2)


@pytest.mark.parametrize("kwargs", [{"upsampling": 3, "patch_size": 26}, {"filters": (1, 2)},
                                    {"kernel_size": 6}, {"refine": "gauss"}])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(LoczooError):
        replace(DeepSTORMConfig(), **kwargs)


def test_input_multiple():
    assert replace(DeepSTORMConfig(), upsampling=8).input_multiple == 1
    assert replace(DeepSTORMConfig(), upsampling=4).input_multiple == 2
    assert replace(DeepSTORMConfig(), upsampling=2, patch_size=8).input_multiple == 4


def test_flop_count_of_the_reference_network():
    from loczoo.flops import conv_flops

    s = 64 * 8  # a 64 x 64 frame upsampled 8 times
    expected = 2 * (9 * (1 * 32 * s**2 + 32 * 64 * (s / 2) ** 2 + 64 * 128 * (s / 4) ** 2
                         + 128 * 512 * (s / 8) ** 2 + 512 * 128 * (s / 4) ** 2
                         + 128 * 64 * (s / 2) ** 2 + 64 * 32 * s**2) + 32 * s**2)
    flops = conv_flops(build_model(DeepSTORMConfig()), (64, 64, 1))
    assert flops == pytest.approx(expected)
    assert flops == pytest.approx(48.5e9, rel=0.01)  # "about 48 GFLOP per 64 x 64 frame"


def test_flop_count_includes_transposed_convolutions():
    """A Conv2DTranspose (stride 2, 3 x 3, 4 -> 2 channels) on 8 x 8 -> 16 x 16: 2 x 9 x 4 x 2
    x 16 x 16 FLOPs counted on its output grid, plus the 1 x 1 conv after it."""
    import keras

    from loczoo.flops import conv_flops

    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same")(inputs)
    x = keras.layers.Conv2D(1, 1)(x)
    model = keras.Model(inputs, x)
    assert conv_flops(model, (8, 8, 4)) == pytest.approx(2 * 9 * 4 * 2 * 256 + 2 * 2 * 256)
