"""Loss of the sub-pixel distance-transform CNN: mean squared error on the distance map."""

from __future__ import annotations

import keras
from keras import ops


def distance_map_mse(y_true, y_pred):
    """Per-pixel squared error [B, H, W] of [B, H, W, 1] distance maps (the mean over the
    channel axis, as ``keras.losses.mean_squared_error``, which this loss replaces with the
    same values; the Loss averages it over pixels and batch)."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="loczoo")
class DistanceMapLoss(keras.losses.Loss):
    """``distance_map_mse``: the paper's plain squared error on the distance-transform map."""

    def __init__(self, name: str = "distance_map_mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return distance_map_mse(y_true, y_pred)

    def get_config(self):
        return super().get_config()


def make_loss(config) -> DistanceMapLoss:
    return DistanceMapLoss()
