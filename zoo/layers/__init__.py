"""Shared, serializable Keras building blocks used by several entries."""

from loczoo.layers.blocks import conv_bn_relu
from loczoo.layers.encoder_decoder import upsampled_encoder_decoder

__all__ = ["conv_bn_relu", "upsampled_encoder_decoder"]
