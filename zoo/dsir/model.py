"""The DSIR convolutional auto-encoder (reference ``conv_autoencoder.py``)."""

from __future__ import annotations

import keras

from loczoo.layers import BilinearUpsampling, per_frame_standardize


def build_model(config) -> keras.Model:
    """Camera frames [B, H, W, 1] (ADU) -> non-negative image [B, H * up, W * up, 1].

    Bilinear resize and per-frame z-score (the reference's ``Rescale``) are the first layers,
    so exports take camera frames. Then conv1 (f1) pool, conv2 (f2) pool, conv3 (f2) pool, three
    2 x 2 stride-2 transposed convolutions (f2, f1, f2) and a 3 x 3 conv to one channel, each
    followed by batch norm and ReLU, no skip connections. With ``share_batchnorm`` the batch-norm
    layers are shared the way the reference reuses ``bn1`` and ``bn2``."""
    f1, f2 = config.filters

    def conv(layer_cls, filters, kernel, name, **kwargs):
        # Reference init: Xavier-normal weights, N(0, 1) biases.
        return layer_cls(filters, kernel, padding="same", name=name,
                         kernel_initializer="glorot_normal",
                         bias_initializer=keras.initializers.RandomNormal(0.0, 1.0), **kwargs)

    def batch_norm(name):
        # PyTorch's BatchNorm2d defaults: eps 1e-5, running-average momentum 0.1.
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)

    # (filters, the reference's batch-norm module) for the three convs and the three
    # transposed convs.
    encoder = ((f1, "bn1"), (f2, "bn2"), (f2, "bn2"))
    decoder = ((f2, "bn2"), (f1, "bn1"), (f2, "bn2"))
    shared = {"bn1": batch_norm("bn1"), "bn2": batch_norm("bn2")}

    def norm(key, name):
        return shared[key] if config.share_batchnorm else batch_norm(name)

    inputs = keras.Input((None, None, 1), name="input")
    x = BilinearUpsampling(config.upsampling, name="resize")(inputs)
    x = per_frame_standardize(x)
    for i, (f, key) in enumerate(encoder, start=1):
        x = conv(keras.layers.Conv2D, f, 3, f"conv{i}")(x)
        x = keras.layers.ReLU()(norm(key, f"bn_conv{i}")(x))
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    for i, (f, key) in enumerate(decoder, start=1):
        x = conv(keras.layers.Conv2DTranspose, f, 2, f"convT{i}", strides=2)(x)
        x = keras.layers.ReLU()(norm(key, f"bn_convT{i}")(x))
    x = conv(keras.layers.Conv2D, 1, 3, "conv4")(x)
    outputs = keras.layers.ReLU(name="image")(batch_norm("bn_out")(x))
    return keras.Model(inputs, outputs, name="dsir")
