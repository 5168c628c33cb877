"""DSIR loss: mean squared error between prediction and target, both blurred by a Gaussian."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def peak_one_gaussian(width: int, fwhm: float) -> np.ndarray:
    """exp(-4 ln 2 r^2 / FWHM^2) on a ``width`` x ``width`` grid centred on its middle pixel:
    the reference's unnormalised kernel (peak 1, not sum 1)."""
    r = np.arange(width) - (width - 1) / 2.0
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    return np.exp(-4.0 * np.log(2.0) * r2 / fwhm**2)


def gaussian_blur(images, kernel: np.ndarray):
    """[B, H, W, 1] convolved with ``kernel``, zero 'same' padding (the reference's padding 2
    for width 5)."""
    images = ops.convert_to_tensor(images)
    k = ops.convert_to_tensor(kernel[:, :, None, None], images.dtype)
    return ops.conv(images, k, strides=1, padding="same")


def dsir_loss(y_true, y_pred, kernel: np.ndarray):
    """Per-sample mean((g * y_pred - g * y_true)^2) for [B, H, W, 1] maps, g = ``kernel``."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    diff = gaussian_blur(y_pred, kernel) - gaussian_blur(y_true, kernel)
    return ops.mean(ops.square(diff), axis=(1, 2, 3))


@keras.saving.register_keras_serializable(package="loczoo")
class DSIRLoss(keras.losses.Loss):
    """``dsir_loss`` with g the peak-1 Gaussian. The reference README's extra 1e-5 |x|^2 term
    is, in its code, Adam's weight decay on the weights (see the entry's optimizer), not part
    of this loss."""

    def __init__(self, kernel_width: int = 5, kernel_fwhm: float = 3.0, name: str = "dsir_loss",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.kernel_width = kernel_width
        self.kernel_fwhm = kernel_fwhm
        self._kernel = peak_one_gaussian(kernel_width, kernel_fwhm).astype(np.float32)

    def call(self, y_true, y_pred):
        return dsir_loss(y_true, y_pred, self._kernel)

    def get_config(self):
        return {**super().get_config(), "kernel_width": self.kernel_width,
                "kernel_fwhm": self.kernel_fwhm}


def make_loss(config) -> DSIRLoss:
    return DSIRLoss(config.kernel_width, config.kernel_fwhm)
