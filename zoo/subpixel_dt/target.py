"""The distance-transform target of Yee, Hagen and Ventura, built in TensorFlow so that it runs
inside the tf.data pipeline."""

from __future__ import annotations

import math

import tensorflow as tf

_FAR = 1e12  # squared distance given to padding entries of the emitter list


def nearest_emitter_distance(x_nm, y_nm, mask, height: int, width: int, pixel_size_nm: float):
    """Distance (in pixels of ``pixel_size_nm``) from each pixel centre to the nearest emitter,
    [B, height, width]. Pixel (i, j) has its centre at ((j + 0.5), (i + 0.5)) x pixel size, the
    convention of ``loczoo.smlm.localizations``. Frames without emitters get a huge distance."""
    x = tf.convert_to_tensor(x_nm, tf.float32) / pixel_size_nm
    y = tf.convert_to_tensor(y_nm, tf.float32) / pixel_size_nm
    cols = tf.range(width, dtype=tf.float32) + 0.5
    rows = tf.range(height, dtype=tf.float32) + 0.5
    dx2 = tf.where(mask[:, :, None], tf.square(cols[None, None, :] - x[:, :, None]), _FAR)
    dy2 = tf.where(mask[:, :, None], tf.square(rows[None, None, :] - y[:, :, None]), _FAR)
    # A running minimum over emitters keeps memory at one [B, H, W] map instead of
    # [B, M, H, W] (M is about a hundred for dense 32 px patches).
    best = tf.fill(tf.stack([tf.shape(x)[0], height, width]), _FAR)
    count = tf.shape(x)[1]

    def step(m, best):
        return m + 1, tf.minimum(best, dy2[:, m, :, None] + dx2[:, m, None, :])

    _, best = tf.while_loop(lambda m, _: m < count, step, (tf.constant(0), best))
    return tf.sqrt(best)


def distance_transform_target(x_nm, y_nm, mask, config, height: int, width: int):
    """f(d) = exp(alpha (1 - d / d_max)) - 1 for d < d_max, else 0, on the grid
    ``config.upsampling`` times finer than the camera frame [B, H * r, W * r, 1]; divided by
    exp(alpha) - 1 when ``config.normalize_target``."""
    r = config.upsampling
    d = nearest_emitter_distance(x_nm, y_nm, mask, height * r, width * r, config.output_pixel_nm)
    f = tf.where(d < config.d_max, tf.math.expm1(config.alpha * (1.0 - d / config.d_max)), 0.0)
    if config.normalize_target:
        f = f / math.expm1(config.alpha)
    return f[..., None]
