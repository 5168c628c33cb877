"""The sub-pixel convolutional network of Yee, Hagen and Ventura."""

from __future__ import annotations

import keras

from loczoo.layers import DepthToSpace, per_frame_standardize


def build_model(config) -> keras.Model:
    """Camera frames [B, H, W, 1] (ADU) -> distance-transform map [B, H * r, W * r, 1].

    Each frame is z-scored inside the model (the paper does not say how it normalised), then
    ``n_conv`` 3 x 3 ReLU convolutions, a 3 x 3 convolution to r * r * ``subpixel_filters``
    channels rearranged to the fine grid (depth-to-space) with a ReLU, and a linear 1 x 1
    convolution."""
    r = config.upsampling
    inputs = keras.Input((None, None, 1), name="input")
    x = per_frame_standardize(inputs)
    for i in range(1, config.n_conv + 1):
        x = keras.layers.Conv2D(config.filters, 3, padding="same", activation="relu",
                                kernel_initializer="he_normal", name=f"conv{i}")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dropout{i}")(x)
    x = keras.layers.Conv2D(r * r * config.subpixel_filters, 3, padding="same",
                            kernel_initializer="he_normal", name="subpixel_conv")(x)
    x = DepthToSpace(r, name="depth_to_space")(x)
    x = keras.layers.Activation("relu", name="subpixel_relu")(x)
    outputs = keras.layers.Conv2D(1, 1, name="distance_map")(x)
    return keras.Model(inputs, outputs, name="subpixel_dt")
