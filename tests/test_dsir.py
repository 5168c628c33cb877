"""DSIR: loss values by hand, the auto-encoder's layout, input normalisation, post-processing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from loczoo.dsir.config import DSIRConfig
from loczoo.dsir.loss import DSIRLoss, peak_one_gaussian
from loczoo.dsir.model import build_model
from loczoo.dsir.pipeline import postprocess
from loczoo.errors import LoczooError


def test_kernel_is_peak_one():
    # FWHM 2: exp(-4 ln2 r^2 / 4) = 2^(-r^2).
    np.testing.assert_allclose(peak_one_gaussian(3, 2.0),
                               [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    k = peak_one_gaussian(5, 3.0)
    assert k[2, 2] == 1.0 and k[2, 0] == pytest.approx(np.exp(-4 * np.log(2) * 4 / 9))


def test_loss_by_hand():
    loss = DSIRLoss(kernel_width=3, kernel_fwhm=2.0)
    truth = np.zeros((1, 3, 3, 1), np.float32)
    truth[0, 1, 1, 0] = 1.0
    # Zero prediction: the blurred truth is the kernel, mean of its squares = 2.25 / 9.
    assert float(loss(truth, np.zeros_like(truth))) == pytest.approx(0.25)
    # A spike of 2 in the corner: blurred [[2, 1, 0], [1, .5, 0], [0, 0, 0]] minus the kernel;
    # squared differences sum to 4.5 over 9 pixels.
    pred = np.zeros_like(truth)
    pred[0, 0, 0, 0] = 2.0
    assert float(loss(truth, pred)) == pytest.approx(0.5)
    assert float(loss(truth, truth)) == 0.0


def test_reference_layout_and_parameter_count():
    model = build_model(replace(DSIRConfig(), share_batchnorm=True))
    # conv1 160, conv2 1160, conv3 584, convT 264 + 528 + 520, conv4 73, BN 64 + 32 + 4.
    assert model.count_params() == 3389
    bn = [layer.name for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert sorted(bn) == ["bn1", "bn2", "bn_out"]
    unshared = build_model(DSIRConfig())  # the default
    # One more BN(16) (convT2, 4 x 16 values) and three more BN(8) (conv3, convT1, convT3).
    assert unshared.count_params() == 3389 + 64 + 3 * 32
    out = model(np.random.default_rng(0).poisson(100, (2, 26, 26, 1)).astype(np.float32))
    assert out.shape == (2, 208, 208, 1) and float(np.min(out)) >= 0.0


def test_input_is_resized_bilinearly_then_z_scored_per_frame():
    import keras

    model = build_model(DSIRConfig())
    probe = keras.Model(model.input, model.get_layer("standardize").output)
    frames = np.stack([np.random.default_rng(i).normal(100 * (i + 1), 5 * (i + 1), (26, 26, 1))
                       for i in range(2)]).astype(np.float32)
    out = np.asarray(probe(frames))
    assert out.shape == (2, 208, 208, 1)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1.0, atol=1e-3)
    # Bilinear with half-pixel centres: fine pixel 4 maps to camera coordinate 4.5 / 8 - 0.5
    # = 1/16, fine pixel 3 to -1/16, clamped to the edge.
    f = frames[0, :2, :2, 0]
    resized = np.asarray(model.get_layer("resize")(frames))[0, :, :, 0]
    assert resized[3, 4] == pytest.approx(f[0, 0] * 15 / 16 + f[0, 1] / 16, rel=1e-5)
    w = np.array([15 / 16, 1 / 16])
    assert resized[4, 4] == pytest.approx(w @ f @ w, rel=1e-5)


def test_postprocess_finds_spikes_after_the_loss_blur():
    config = DSIRConfig()
    out = np.zeros((1, 32, 32, 1), np.float32)  # a 4 x 4 camera frame at 8x
    out[0, 10, 20, 0] = 1.0   # one emitter's spike: blurred peak 1
    out[0, 25, 5, 0] = 0.2    # below the threshold after blurring
    locs = postprocess(out, config, pixel_size_nm=100.0, height=4, width=4)
    assert len(locs) == 1
    assert locs.x[0] == pytest.approx(20.5 * 12.5) and locs.y[0] == pytest.approx(10.5 * 12.5)


@pytest.mark.parametrize("kwargs", [{"kernel_width": 4}, {"kernel_fwhm": 0.0},
                                    {"filters": (16, 8, 8)}, {"upsampling": 3, "patch_size": 26}])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(LoczooError):
        replace(DSIRConfig(), **kwargs)
