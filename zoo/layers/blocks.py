"""Small Keras blocks built from stock layers only (so saved models need no custom objects)."""

from __future__ import annotations

import keras


def conv_bn_relu(x, filters: int, kernel_size: int = 3, name: str | None = None):
    """Conv2D (same padding, no bias, orthogonal init) -> BatchNorm -> ReLU, as in Deep-STORM."""
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False,
                            kernel_initializer="orthogonal",
                            name=None if name is None else f"conv_{name}")(x)
    x = keras.layers.BatchNormalization(name=None if name is None else f"bn_{name}")(x)
    return keras.layers.Activation("relu", name=None if name is None else f"relu_{name}")(x)


def per_frame_standardize(x, name: str = "standardize"):
    """Each frame minus its mean, divided by its standard deviation (population, over H, W, C):
    the per-image z-score, as a stock layer so exports need no custom code."""
    return keras.layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False,
                                           epsilon=1e-6, name=name)(x)
