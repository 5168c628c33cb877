"""DECODE loss: Gaussian-mixture negative log-likelihood of the true emitters under the
network's per-pixel predictions, with a count term, plus the background squared error.

Keras passes one target tensor per sample, so the targets travel packed: ``pack_targets``
concatenates the padded emitter table [B, M, 5] (mask, photons / photon_max, x px, y px,
z / z_max; x and y in camera pixels from the frame corner, pixel i covering [i, i + 1)) and the
background map [B, H, W] (photons / background_max; negative = unknown) into [B, 5M + HW].
"""

from __future__ import annotations

import math

import tensorflow as tf
from keras import losses

TARGET_FIELDS = ("mask", "photons", "x", "y", "z")


def pack_targets(emitters, background):
    """emitters [B, M, 5] (``TARGET_FIELDS``), background [B, H, W] -> [B, 5M + HW]."""
    b = tf.shape(emitters)[0]
    return tf.concat([tf.reshape(emitters, [b, -1]), tf.reshape(background, [b, -1])], axis=1)


def unpack_targets(packed, height, width):
    """The inverse of ``pack_targets`` for frames of ``height`` x ``width`` pixels."""
    b = tf.shape(packed)[0]
    emitters = tf.reshape(packed[:, :-height * width], [b, -1, len(TARGET_FIELDS)])
    background = tf.reshape(packed[:, -height * width:], [b, height, width])
    return emitters, background


def gmm_negative_log_likelihood(outputs, emitters, predict_z: bool):
    """Per sample: -(count term + localization term) (the reference's ``GaussianMMLoss``).

    outputs [B, H, W, 10] (``CHANNELS`` order, network units); emitters [B, M, 5]. The count
    term is log N(n; sum p, sqrt(sum p (1 - p))) times n, the number of true emitters (as the
    reference computes it; it vanishes on empty frames). The localization term sums, over the
    true emitters, the log density of a mixture with one component per pixel k: weight
    p_k / sum p, mean (photons, x = col + 0.5 + dx, y = row + 0.5 + dy[, z]), diagonal sigmas.
    A photon target that is NaN (unknown, e.g. real data without intensities) drops the photon
    dimension for that emitter."""
    outputs = tf.cast(outputs, tf.float32)
    shape = tf.shape(outputs)
    b, h, w = shape[0], shape[1], shape[2]
    flat = tf.reshape(outputs, [b, h * w, outputs.shape[-1]])
    p = flat[..., 0]
    rows, cols = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32),
                             indexing="ij")
    centres = {"x": tf.reshape(cols, [-1]) + 0.5, "y": tf.reshape(rows, [-1]) + 0.5}
    mask = tf.cast(emitters[..., 0] > 0.5, tf.float32)
    n_true = tf.reduce_sum(mask, axis=1)

    p_mean = tf.reduce_sum(p, axis=1)
    p_var = tf.reduce_sum(p * (1.0 - p), axis=1)
    count = -0.5 * tf.square(n_true - p_mean) / p_var - 0.5 * tf.math.log(
        2.0 * math.pi * p_var)
    count *= n_true

    # log N(target_d; mean_kd, sigma_kd) summed over dimensions d, for every (emitter, pixel)
    # pair [B, M, HW]; one dimension at a time keeps the memory at B x M x HW.
    dims = [("photons", 1, 5), ("x", 2, 6), ("y", 3, 7)] + ([("z", 4, 8)] if predict_z else [])
    log_density = 0.0
    for name, mean_channel, sigma_channel in dims:
        target = emitters[..., TARGET_FIELDS.index(name)]
        mean = flat[..., mean_channel] + centres.get(name, 0.0)
        sigma = flat[..., sigma_channel]
        known = tf.math.is_finite(target)
        z = (tf.where(known, target, 0.0)[:, :, None] - mean[:, None, :]) / sigma[:, None, :]
        term = -0.5 * tf.square(z) - tf.math.log(sigma)[:, None, :] - 0.5 * math.log(
            2.0 * math.pi)
        log_density += tf.where(known[:, :, None], term, 0.0)
    log_weight = tf.math.log(p) - tf.math.log(p_mean)[:, None]
    mixture = tf.reduce_logsumexp(log_weight[:, None, :] + log_density, axis=2)
    localization = tf.reduce_sum(mask * mixture, axis=1)
    return -(count + localization)


def background_squared_error(outputs, background):
    """Per sample: sum over pixels of (predicted - true background)^2, skipping pixels whose
    target is negative (unknown)."""
    known = background >= 0
    diff = tf.cast(outputs[..., 9], tf.float32) - background
    return tf.reduce_sum(tf.where(known, tf.square(diff), 0.0), axis=[1, 2])


class DECODELoss(losses.Loss):
    """gmm_weight x mixture NLL + background_weight x background squared error, per sample.
    (The reference stacks the two terms, multiplies by 2 and by channel weights [1, 1], and
    averages over both terms and the batch: the same as their sum averaged over the batch.)"""

    def __init__(self, predict_z: bool = False, gmm_weight: float = 1.0,
                 background_weight: float = 1.0, name="decode_loss"):
        super().__init__(name=name)
        self.predict_z = predict_z
        self.gmm_weight = gmm_weight
        self.background_weight = background_weight

    def call(self, y_true, y_pred):
        shape = tf.shape(y_pred)
        emitters, background = unpack_targets(tf.cast(y_true, tf.float32), shape[1], shape[2])
        return (self.gmm_weight * gmm_negative_log_likelihood(y_pred, emitters, self.predict_z)
                + self.background_weight * background_squared_error(y_pred, background))

    def get_config(self):
        return {"name": self.name, "predict_z": self.predict_z, "gmm_weight": self.gmm_weight,
                "background_weight": self.background_weight}


def make_loss(config) -> DECODELoss:
    return DECODELoss(config.predict_z)
