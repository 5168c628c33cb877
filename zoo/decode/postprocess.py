"""DECODE post-processing (the reference's ``SpatialIntegration``) in TensorFlow: detection
probabilities per pixel -> one localization per emitter with its photons, z and uncertainties."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from loczoo.smlm.localizations import Localizations

# Centre plus its 4 neighbours (the reference's cross-shaped aggregation kernel).
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.float32)[:, :, None, None]


@tf.function(reduce_retracing=True)
def spatial_integration(p, threshold, split_threshold):
    """p [B, H, W] -> aggregated p [B, H, W], non-zero only at detections.

    1. p below ``threshold`` is set to 0; local maxima of the rest (3 x 3) are candidates.
    2. A candidate's p becomes the sum of p over itself and its 4 neighbours: an emitter
       between pixels spreads its probability over them.
    3. Pixels that are not maxima but have p above ``split_threshold`` keep the same sum
       (two emitters in adjacent pixels).
    4. Sums are clamped to [0, 1] and kept where they reach ``threshold``."""
    p = tf.cast(p, tf.float32)[..., None]
    clipped = tf.where(p > threshold, p, 0.0)
    is_max = (clipped > 0) & (clipped >= tf.nn.max_pool2d(clipped, 3, 1, "SAME"))
    summed = tf.nn.conv2d(p, tf.constant(_CROSS), 1, "SAME")
    split = ~is_max & (p > split_threshold)
    aggregated = tf.where(is_max | split, tf.clip_by_value(summed, 0.0, 1.0), 0.0)
    return tf.where(aggregated >= threshold, aggregated, 0.0)[..., 0]


def outputs_to_localizations(outputs, config, *, pixel_size_nm: float, height: int,
                             width: int) -> Localizations:
    """Network outputs [B, H', W', 10] (network units) -> Localizations in nm, frames
    numbered from 1 within the batch. Detections at or beyond row ``height`` / column
    ``width`` (padding) are dropped."""
    outputs = tf.convert_to_tensor(outputs, tf.float32)
    prob = spatial_integration(outputs[..., 0], tf.constant(config.threshold, tf.float32),
                               tf.constant(config.split_threshold, tf.float32))
    index = tf.where(prob > 0)
    values = np.asarray(tf.gather_nd(outputs, index))
    prob = np.asarray(tf.gather_nd(prob, index))
    index = np.asarray(index)
    frame, row, col = index[:, 0], index[:, 1], index[:, 2]
    keep = (row < height) & (col < width)
    v = values[keep]
    z_known = config.predict_z
    scale_x, scale_y, scale_z = config.sigma_scale
    return Localizations(
        frame=frame[keep] + 1,
        x=(col[keep] + 0.5 + v[:, 2]) * pixel_size_nm,
        y=(row[keep] + 0.5 + v[:, 3]) * pixel_size_nm,
        z=v[:, 4] * config.z_max if z_known else None,
        photons=v[:, 1] * config.photon_max,
        prob=prob[keep],
        sigma_x=v[:, 6] * pixel_size_nm * scale_x,
        sigma_y=v[:, 7] * pixel_size_nm * scale_y,
        sigma_z=v[:, 8] * config.z_max * scale_z if z_known else None)
