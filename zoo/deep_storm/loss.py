"""Deep-STORM loss: MSE between the Gaussian-blurred prediction and the blurred target, plus
an L1 penalty on the prediction (``L1L2loss`` of the reference code)."""

from __future__ import annotations

import keras
from keras import ops

from loczoo.smlm.targets import gaussian_kernel


def deep_storm_loss(y_true, y_pred, kernel, l1_weight: float = 1.0):
    """Per-sample loss for [B, H, W, 1] maps: mean((k * y_pred - y_true)^2) + l1 mean|y_pred|,
    where ``kernel`` [k, k] already includes the prediction blur scale (2 in the reference)."""
    k = ops.reshape(ops.convert_to_tensor(kernel, "float32"), (*kernel.shape, 1, 1))
    blurred = ops.conv(y_pred, k, strides=1, padding="same")
    mse = ops.mean(ops.square(blurred - y_true), axis=(1, 2, 3))
    l1 = ops.mean(ops.abs(y_pred), axis=(1, 2, 3))
    return mse + l1_weight * l1


@keras.saving.register_keras_serializable(package="loczoo")
class DeepSTORMLoss(keras.losses.Loss):
    def __init__(self, kernel_size: int = 7, sigma: float = 1.0, blur_scale: float = 2.0,
                 l1_weight: float = 1.0, name: str = "deep_storm_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.kernel_size, self.sigma = kernel_size, sigma
        self.blur_scale, self.l1_weight = blur_scale, l1_weight
        self.kernel = (gaussian_kernel(kernel_size, sigma) * blur_scale).astype("float32")

    def call(self, y_true, y_pred):
        return deep_storm_loss(y_true, y_pred, self.kernel, self.l1_weight)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "sigma": self.sigma,
                "blur_scale": self.blur_scale, "l1_weight": self.l1_weight}


def make_loss(config) -> DeepSTORMLoss:
    return DeepSTORMLoss(kernel_size=config.kernel_size, sigma=config.heatmap_sigma,
                         blur_scale=config.prediction_blur_scale, l1_weight=config.l1_weight)
