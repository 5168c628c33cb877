"""DeepCEL0: the CEL0 penalty and the L2 + CEL0 loss on hand-computed cases, the ReLU output."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import convolve2d

from loczoo.deepcel0.config import DeepCEL0Config, zerocost_l2_factor
from loczoo.deepcel0.loss import CEL0L2Loss, cel0_l2_loss, cel0_penalty
from loczoo.deepcel0.model import build_model
from loczoo.errors import LoczooError
from loczoo.smlm.targets import gaussian_kernel

A = 0.2822767  # ||G||_2 of the 7 x 7, sigma-1, sum-1 kernel (methods.md: 0.28228)


def test_operator_norm_of_the_kernel():
    assert np.sqrt((gaussian_kernel(7, 1.0) ** 2).sum()) == pytest.approx(A, abs=1e-6)


def test_cel0_penalty_both_branches():
    # lambda = 1: threshold sqrt(2)/a = 5.0100. Inside: 1 - (a^2/2)(|x| - 5.0100)^2.
    x = np.array([0.0, 2.5, -2.5, 4.0, 5.0100257, 10.0, -10.0], np.float32)
    got = np.asarray(cel0_penalty(x, 1.0, A))
    # By hand: a^2/2 = 0.039840; (2.5 - 5.0100)^2 = 6.30013 -> 1 - 0.25100 = 0.74900;
    # (4 - 5.0100)^2 = 1.02015 -> 1 - 0.04064 = 0.95936; at and beyond the threshold: lambda.
    np.testing.assert_allclose(got, [0.0, 0.74900, 0.74900, 0.95936, 1.0, 1.0, 1.0], atol=2e-5)
    # lambda = 100: threshold 50.10; x = 30 -> 100 - 0.039840 * 20.10^2 = 83.9038.
    assert float(cel0_penalty(np.float32(30.0), 100.0, A)) == pytest.approx(83.9038, abs=1e-3)


def test_l2_cel0_loss_on_a_small_array():
    kernel = gaussian_kernel(7, 1.0).astype(np.float32)
    pred = np.zeros((1, 9, 9, 1), np.float32)
    pred[0, 4, 4, 0] = 30.0  # below the lambda = 100 threshold (50.10): quadratic branch
    pred[0, 1, 7, 0] = 60.0  # above it: constant branch
    target = np.zeros_like(pred)
    target[0, 4, 4, 0] = 5.0
    blurred = convolve2d(pred[0, :, :, 0], kernel, mode="same")
    data = ((blurred - target[0, :, :, 0]) ** 2).mean()
    penalty = (83.9038 + 100.0) / 81  # the other 79 pixels are 0 and cost nothing
    got = float(cel0_l2_loss(target, pred, kernel, 100.0)[0])
    assert got == pytest.approx(data + penalty, rel=1e-5)
    loss = CEL0L2Loss()
    assert float(loss(target, pred)) == pytest.approx(data + penalty, rel=1e-5)
    assert CEL0L2Loss.from_config(loss.get_config()).get_config() == loss.get_config()


def test_defaults_follow_the_notebook():
    config = DeepCEL0Config()
    assert config.upsampling == 4 and config.cel0_lambda == 100.0
    assert zerocost_l2_factor(8) == pytest.approx(170.2, abs=0.1)  # methods.md: about 170
    assert config.target_scale == pytest.approx(zerocost_l2_factor(4), abs=0.01)
    with pytest.raises(LoczooError, match="cel0_lambda"):
        replace(config, cel0_lambda=-1.0)


def test_output_is_non_negative():
    model = build_model(DeepCEL0Config.tiny())
    assert model.get_layer("prediction").activation.__name__ == "relu"
    out = np.asarray(model(np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("f4")))
    assert out.shape == (2, 16, 16, 1) and out.min() >= 0
