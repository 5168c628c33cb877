"""Sub-pixel convolution (Shi et al., CVPR 2016): a convolution with r * r * c output channels
rearranged into a map r times larger with c channels."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="loczoo")
class DepthToSpace(keras.layers.Layer):
    """[B, H, W, r * r * C] -> [B, H * r, W * r, C] (``tf.nn.depth_to_space``, which TFLite
    runs as its DEPTH_TO_SPACE op)."""

    def __init__(self, block_size: int, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        r = self.block_size
        return (b, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="loczoo")
class BilinearUpsampling(keras.layers.Layer):
    """[B, H, W, C] -> [B, H * f, W * f, C] by bilinear interpolation (half-pixel centres, as
    ``UpSampling2D(interpolation="bilinear")``), with the size taken from the input at run time:
    Keras's UpSampling2D needs H and W when traced, which breaks exports for any frame size."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, inputs):
        size = tf.shape(inputs)[1:3] * self.factor
        return tf.image.resize(inputs, size, method="bilinear")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = self.factor
        return (b, None if h is None else h * f, None if w is None else w * f, c)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
