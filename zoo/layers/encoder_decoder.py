"""The Deep-STORM network (reference ``CNN_Model.py``), shared by the heatmap entries."""

from __future__ import annotations

import keras

from loczoo.layers.blocks import conv_bn_relu


def upsampled_encoder_decoder(upsampling: int, filters, output_activation: str = "linear",
                              name: str = "deep_storm") -> keras.Model:
    """Nearest-neighbour upsampling, then conv-BN-ReLU f1, pool, f2, pool, f3, pool, f4, up, f3,
    up, f2, up, f1 (one conv per level, no skip connections) and a 1x1 conv without bias.

    Input: normalised camera frames [B, H, W, 1]; output: [B, H * up, W * up, 1]. The upsampling
    is part of the model so that exports take camera frames directly."""
    f1, f2, f3, f4 = filters
    inputs = keras.Input((None, None, 1), name="input")
    x = keras.layers.UpSampling2D(upsampling, interpolation="nearest", name="upsample")(inputs)
    for level, f in enumerate((f1, f2, f3), start=1):
        x = conv_bn_relu(x, f, name=f"F{level}")
        x = keras.layers.MaxPooling2D(2)(x)
    x = conv_bn_relu(x, f4, name="F4")
    for level, f in enumerate((f3, f2, f1), start=5):
        x = keras.layers.UpSampling2D(2)(x)
        x = conv_bn_relu(x, f, name=f"F{level}")
    outputs = keras.layers.Conv2D(1, 1, padding="same", use_bias=False,
                                  activation=output_activation,
                                  kernel_initializer="orthogonal", name="prediction")(x)
    return keras.Model(inputs, outputs, name=name)
