"""Deep-STORM network: nearest-neighbour upsampling, then the encoder-decoder of the reference
``CNN_Model.py`` (one conv-BN-ReLU per level, no skip connections, linear 1x1 output)."""

from __future__ import annotations

import keras

from loczoo.layers import conv_bn_relu


def build_model(config) -> keras.Model:
    """Input: normalised camera frames [B, H, W, 1]; output: the map on the upsampled grid
    [B, H * up, W * up, 1]. The upsampling layer is part of the model so that exports take camera
    frames directly; ``core_network`` is the reference network without it."""
    f1, f2, f3, f4 = config.filters
    inputs = keras.Input((None, None, 1), name="input")
    x = keras.layers.UpSampling2D(config.upsampling, interpolation="nearest",
                                  name="upsample")(inputs)
    x = conv_bn_relu(x, f1, name="F1")
    x = keras.layers.MaxPooling2D(2)(x)
    x = conv_bn_relu(x, f2, name="F2")
    x = keras.layers.MaxPooling2D(2)(x)
    x = conv_bn_relu(x, f3, name="F3")
    x = keras.layers.MaxPooling2D(2)(x)
    x = conv_bn_relu(x, f4, name="F4")
    x = keras.layers.UpSampling2D(2)(x)
    x = conv_bn_relu(x, f3, name="F5")
    x = keras.layers.UpSampling2D(2)(x)
    x = conv_bn_relu(x, f2, name="F6")
    x = keras.layers.UpSampling2D(2)(x)
    x = conv_bn_relu(x, f1, name="F7")
    outputs = keras.layers.Conv2D(1, 1, padding="same", use_bias=False, activation="linear",
                                  kernel_initializer="orthogonal", name="prediction")(x)
    return keras.Model(inputs, outputs, name="deep_storm")
