"""DECODE loss: Gaussian-mixture negative log-likelihood of the true emitters under the
network's per-pixel predictions, with a count term, plus the background squared error.

Keras passes one target tensor per sample, so the targets travel packed: ``pack_targets``
concatenates the padded emitter table [B, M, 5] (mask, photons / photon_max, x px, y px,
z / z_max; x and y in camera pixels from the frame corner, pixel i covering [i, i + 1)) and the
background map [B, H, W] (photons / background_max; negative = unknown) into [B, 5M + HW].
"""

from __future__ import annotations

import math

import keras
from keras import ops

TARGET_FIELDS = ("mask", "photons", "x", "y", "z")


def pack_targets(emitters, background):
    """emitters [B, M, 5] (``TARGET_FIELDS``), background [B, H, W] -> [B, 5M + HW]."""
    emitters, background = ops.convert_to_tensor(emitters), ops.convert_to_tensor(background)
    b = ops.shape(emitters)[0]
    return ops.concatenate([ops.reshape(emitters, (b, -1)), ops.reshape(background, (b, -1))],
                           axis=1)


def unpack_targets(packed, height, width):
    """The inverse of ``pack_targets`` for frames of ``height`` x ``width`` pixels."""
    packed = ops.convert_to_tensor(packed)
    b = ops.shape(packed)[0]
    emitters = ops.reshape(packed[:, :-height * width], (b, -1, len(TARGET_FIELDS)))
    background = ops.reshape(packed[:, -height * width:], (b, height, width))
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
    outputs = ops.cast(outputs, "float32")
    emitters = ops.cast(emitters, "float32")
    shape = ops.shape(outputs)
    b, h, w = shape[0], shape[1], shape[2]
    flat = ops.reshape(outputs, (b, h * w, outputs.shape[-1]))
    p = flat[..., 0]
    rows, cols = ops.meshgrid(ops.arange(h, dtype="float32"), ops.arange(w, dtype="float32"),
                              indexing="ij")
    centres = {"x": ops.reshape(cols, (-1,)) + 0.5, "y": ops.reshape(rows, (-1,)) + 0.5}
    mask = ops.cast(emitters[..., 0] > 0.5, "float32")
    n_true = ops.sum(mask, axis=1)

    p_mean = ops.sum(p, axis=1)
    p_var = ops.sum(p * (1.0 - p), axis=1)
    count = -0.5 * ops.square(n_true - p_mean) / p_var - 0.5 * ops.log(2.0 * math.pi * p_var)
    count *= n_true

    # log N(target_d; mean_kd, sigma_kd) summed over dimensions d, for every (emitter, pixel)
    # pair [B, M, HW]; one dimension at a time keeps the memory at B x M x HW.
    dims = [("photons", 1, 5), ("x", 2, 6), ("y", 3, 7)] + ([("z", 4, 8)] if predict_z else [])
    log_density = 0.0
    for name, mean_channel, sigma_channel in dims:
        target = emitters[..., TARGET_FIELDS.index(name)]
        mean = flat[..., mean_channel] + centres.get(name, 0.0)
        sigma = flat[..., sigma_channel]
        known = ops.isfinite(target)
        z = (ops.where(known, target, 0.0)[:, :, None] - mean[:, None, :]) / sigma[:, None, :]
        term = -0.5 * ops.square(z) - ops.log(sigma)[:, None, :] - 0.5 * math.log(
            2.0 * math.pi)
        log_density += ops.where(known[:, :, None], term, 0.0)
    log_weight = ops.log(p) - ops.log(p_mean)[:, None]
    mixture = ops.logsumexp(log_weight[:, None, :] + log_density, axis=2)
    localization = ops.sum(mask * mixture, axis=1)
    return -(count + localization)


def background_squared_error(outputs, background):
    """Per sample: sum over pixels of (predicted - true background)^2, skipping pixels whose
    target is negative (unknown)."""
    background = ops.cast(background, "float32")
    known = background >= 0
    diff = ops.cast(outputs[..., 9], "float32") - background
    return ops.sum(ops.where(known, ops.square(diff), 0.0), axis=(1, 2))


def decode_loss(y_true, y_pred, predict_z: bool = False, gmm_weight: float = 1.0,
                background_weight: float = 1.0):
    """Per sample: gmm_weight x mixture NLL + background_weight x background squared error,
    for packed targets ``y_true`` [B, 5M + HW] and outputs ``y_pred`` [B, H, W, 10]."""
    y_pred = ops.convert_to_tensor(y_pred)
    shape = ops.shape(y_pred)
    emitters, background = unpack_targets(ops.cast(y_true, "float32"), shape[1], shape[2])
    return (gmm_weight * gmm_negative_log_likelihood(y_pred, emitters, predict_z)
            + background_weight * background_squared_error(y_pred, background))


@keras.saving.register_keras_serializable(package="loczoo")
class DECODELoss(keras.losses.Loss):
    """``decode_loss``, averaged over the batch. (The reference stacks the two terms,
    multiplies by 2 and by channel weights [1, 1], and averages over both terms and the
    batch: the same as their sum averaged over the batch.)"""

    def __init__(self, predict_z: bool = False, gmm_weight: float = 1.0,
                 background_weight: float = 1.0, name: str = "decode_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.predict_z = predict_z
        self.gmm_weight = gmm_weight
        self.background_weight = background_weight

    def call(self, y_true, y_pred):
        return decode_loss(y_true, y_pred, self.predict_z, self.gmm_weight,
                           self.background_weight)

    def get_config(self):
        return {**super().get_config(), "predict_z": self.predict_z,
                "gmm_weight": self.gmm_weight, "background_weight": self.background_weight}


def make_loss(config) -> DECODELoss:
    return DECODELoss(config.predict_z)
