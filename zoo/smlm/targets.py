"""Training targets built from padded emitter lists, in TensorFlow (usable in tf.data)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', [size size], sigma)``: normalised to sum 1, with values
    below eps * max set to zero (float64 [size, size])."""
    half = (size - 1) / 2.0
    r = np.arange(size) - half
    k = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * sigma**2))
    k[k < np.finfo(np.float64).eps * k.max()] = 0.0
    return k / k.sum()


def spike_map(x_nm, y_nm, mask, height: int, width: int, pixel_size_nm: float):
    """Count of emitters per (high-resolution) pixel, [B, height, width, 1] float32.

    An emitter at x nm falls in pixel floor(x / pixel_size) (pixel i covers [i, i+1) * size),
    the convention of ``loczoo.smlm.localizations``. Entries outside the grid or with
    ``mask`` False are dropped.
    """
    col = tf.cast(tf.floor(x_nm / pixel_size_nm), tf.int32)
    row = tf.cast(tf.floor(y_nm / pixel_size_nm), tf.int32)
    keep = mask & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    batch = tf.broadcast_to(tf.range(tf.shape(x_nm)[0])[:, None], tf.shape(col))
    index = tf.boolean_mask(tf.stack([batch, row, col], axis=-1), keep)
    updates = tf.ones(tf.shape(index)[:1], tf.float32)
    shape = tf.stack([tf.shape(x_nm)[0], height, width])
    return tf.scatter_nd(index, updates, shape)[..., None]


def blur(images, kernel: np.ndarray):
    """Convolve [B, H, W, 1] images with a 2D kernel, same padding with zeros."""
    k = tf.constant(kernel[:, :, None, None], tf.float32)
    return tf.nn.conv2d(images, k, strides=1, padding="SAME")
