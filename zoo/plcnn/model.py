"""The PLCNN network as drawn in the paper's figure (images/Network.png of saeed-anwar/PLCNN):
a residual and a plain stream with three cross-stream concatenations, a feature branch from the
input and one fully connected softmax layer. Sizes are assumptions (see config.py)."""

from __future__ import annotations

import keras

from loczoo.layers.blocks import per_frame_standardize


class _Builder:
    """Named layers for one network: every conv has ``features`` outputs and ``kernel`` size."""

    def __init__(self, config):
        self.f, self.k = config.features, config.kernel_size
        self.momentum = config.bn_momentum

    def conv(self, x, name, strides=1, activation=None, bn=False):
        x = keras.layers.Conv2D(self.f, self.k, strides=strides, padding="same",
                                use_bias=not bn, kernel_initializer="he_normal",
                                name=f"{name}_conv")(x)
        if bn:
            x = keras.layers.BatchNormalization(momentum=self.momentum, name=f"{name}_bn")(x)
        if activation:
            x = keras.layers.Activation(activation, name=f"{name}_relu")(x)
        return x

    def residual_unit(self, x, name):
        """[Conv, BN, ReLU, Conv, BN] + identity (then ReLU, as in ResNet)."""
        y = self.conv(x, f"{name}_a", activation="relu", bn=True)
        y = self.conv(y, f"{name}_b", bn=True)
        y = keras.layers.Add(name=f"{name}_add")([x, y])
        return keras.layers.Activation("relu", name=f"{name}_out")(y)

    def plain_block(self, x, name, convs):
        """``convs`` x [Conv, ReLU], then a 2 x 2 max pool: P_s (2 convs) and P_l (3)."""
        for i in range(convs):
            x = self.conv(x, f"{name}_{i}", activation="relu")
        return keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)

    def residual_large(self, x, name):
        """R_l: a residual unit, a stride-2 [Conv, BN] transition, a residual unit."""
        x = self.residual_unit(x, f"{name}_u1")
        x = self.conv(x, f"{name}_transition", strides=2, bn=True)
        return self.residual_unit(x, f"{name}_u2")

    def cross(self, residual, plain, name):
        """Concatenate both streams; each continues through its own [Conv, ReLU]."""
        both = keras.layers.Concatenate(name=f"{name}_concat")([residual, plain])
        return (self.conv(both, f"{name}_to_residual", activation="relu"),
                self.conv(both, f"{name}_to_plain", activation="relu"))


def build_model(config) -> keras.Model:
    """Images [B, S, S, C] (any intensity scale; z-scored per image inside) -> class
    probabilities [B, n_classes]."""
    inputs = keras.Input((config.input_size, config.input_size, config.channels), name="image")
    x = per_frame_standardize(inputs)
    b = _Builder(config)

    # Residual stream: stem [Conv, BN, ReLU, Pool], then R_s (two residual units): size S/2.
    r = b.conv(x, "stem", activation="relu", bn=True)
    r = keras.layers.MaxPooling2D(2, name="stem_pool")(r)
    r = b.residual_unit(r, "rs_u1")
    r = b.residual_unit(r, "rs_u2")
    # Plain stream: P_s, P_s: size S/4.
    p = b.plain_block(x, "ps1", 2)
    p = b.plain_block(p, "ps2", 2)
    # Match the residual stream to S/4 (the paper does not say how).
    if config.matching == "pool":
        r = keras.layers.MaxPooling2D(2, name="match_pool")(r)
    else:
        r = b.conv(r, "match", strides=2, activation="relu")

    for stage in (1, 2, 3):
        r, p = b.cross(r, p, f"cross{stage}")
        r = b.residual_large(r, f"rl{stage}")
        p = b.plain_block(p, f"pl{stage}", 3)

    parts = [keras.layers.GlobalAveragePooling2D(name="residual_gap")(r),
             keras.layers.GlobalAveragePooling2D(name="plain_gap")(p)]
    if config.feature_branch == "thumbnail":
        thumb = keras.layers.AveragePooling2D(config.input_size // 8, name="thumbnail")(x)
        parts.append(keras.layers.Flatten(name="thumbnail_flat")(thumb))
    features = keras.layers.Concatenate(name="head_concat")(parts)
    outputs = keras.layers.Dense(config.n_classes, activation="softmax", name="probabilities")(
        features)
    return keras.Model(inputs, outputs, name="plcnn")
