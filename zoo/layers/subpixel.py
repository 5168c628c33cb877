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
