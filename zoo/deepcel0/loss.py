"""The L2 + CEL0 loss of DeepCEL0.

    L(x) = mean((G * x - y)^2) + mean_p Phi(x_p; lambda, a)
    Phi(x; lambda, a) = lambda - (a^2 / 2) (|x| - sqrt(2 lambda) / a)^2  if |x| <= sqrt(2 lambda)/a
                        lambda                                          otherwise

Phi is the CEL0 relaxation of lambda ||x||_0 (Soubies, Blanc-Feraud, Aubert 2015) with a the
column norm of the blur operator G. For a circular convolution every column has the same norm,
the Frobenius norm of the kernel, so a is one number: 0.28228 for the 7 x 7, sigma-1, sum-1 kernel.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from loczoo.smlm.targets import gaussian_kernel


def cel0_penalty(x, lam: float, a: float):
    """Elementwise CEL0 penalty: 0 at x = 0, quadratic up to |x| = sqrt(2 lam)/a, then lam."""
    threshold = np.sqrt(2.0 * lam) / a
    ax = ops.abs(x)
    inside = lam - 0.5 * a**2 * ops.square(ax - threshold)
    return ops.where(ax <= threshold, inside, lam)


def cel0_l2_loss(y_true, y_pred, kernel, lam: float):
    """Per-sample loss for [B, H, W, 1] maps."""
    a = float(np.sqrt(np.sum(np.square(kernel))))
    k = ops.reshape(ops.convert_to_tensor(kernel, "float32"), (*kernel.shape, 1, 1))
    blurred = ops.conv(y_pred, k, strides=1, padding="same")
    data = ops.mean(ops.square(blurred - y_true), axis=(1, 2, 3))
    return data + ops.mean(cel0_penalty(y_pred, lam, a), axis=(1, 2, 3))


@keras.saving.register_keras_serializable(package="loczoo")
class CEL0L2Loss(keras.losses.Loss):
    def __init__(self, kernel_size: int = 7, sigma: float = 1.0, cel0_lambda: float = 100.0,
                 name: str = "cel0_l2_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.kernel_size, self.sigma, self.cel0_lambda = kernel_size, sigma, cel0_lambda
        self.kernel = gaussian_kernel(kernel_size, sigma).astype("float32")

    def call(self, y_true, y_pred):
        return cel0_l2_loss(y_true, y_pred, self.kernel, self.cel0_lambda)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "sigma": self.sigma,
                "cel0_lambda": self.cel0_lambda}


def make_loss(config) -> CEL0L2Loss:
    return CEL0L2Loss(kernel_size=config.kernel_size, sigma=config.heatmap_sigma,
                      cel0_lambda=config.cel0_lambda)
