"""DSIR loss: mean squared error between prediction and target, both blurred by a Gaussian."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import losses


def peak_one_gaussian(width: int, fwhm: float) -> np.ndarray:
    """exp(-4 ln 2 r^2 / FWHM^2) on a ``width`` x ``width`` grid centred on its middle pixel:
    the reference's unnormalised kernel (peak 1, not sum 1)."""
    r = np.arange(width) - (width - 1) / 2.0
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    return np.exp(-4.0 * np.log(2.0) * r2 / fwhm**2)


def gaussian_blur(images, kernel: np.ndarray):
    """[B, H, W, 1] convolved with ``kernel``, zero 'same' padding (the reference's padding 2
    for width 5)."""
    k = tf.constant(kernel[:, :, None, None], images.dtype)
    return tf.nn.conv2d(images, k, strides=1, padding="SAME")


class DSIRLoss(losses.Loss):
    """mean((g * prediction - g * target)^2) with g the peak-1 Gaussian. The reference README's
    extra 1e-5 |x|^2 term is, in its code, Adam's weight decay on the weights (see the
    entry's optimizer), not part of this loss."""

    def __init__(self, kernel_width: int = 5, kernel_fwhm: float = 3.0, name="dsir_loss"):
        super().__init__(name=name)
        self.kernel_width = kernel_width
        self.kernel_fwhm = kernel_fwhm
        self._kernel = peak_one_gaussian(kernel_width, kernel_fwhm).astype(np.float32)

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, y_pred.dtype)
        diff = gaussian_blur(y_pred, self._kernel) - gaussian_blur(y_true, self._kernel)
        return tf.reduce_mean(tf.square(diff), axis=[1, 2, 3])

    def get_config(self):
        return {"name": self.name, "kernel_width": self.kernel_width,
                "kernel_fwhm": self.kernel_fwhm}


def make_loss(config) -> DSIRLoss:
    return DSIRLoss(config.kernel_width, config.kernel_fwhm)
