"""Loss of the sub-pixel distance-transform CNN: mean squared error on the distance map."""

from __future__ import annotations

import keras


def make_loss(config) -> keras.losses.Loss:
    return keras.losses.MeanSquaredError(name="distance_map_mse")
