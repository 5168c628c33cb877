"""Shared, serializable Keras building blocks used by several entries."""

from loczoo.layers.blocks import conv_bn_relu, per_frame_standardize
from loczoo.layers.encoder_decoder import upsampled_encoder_decoder
from loczoo.layers.subpixel import BilinearUpsampling, DepthToSpace

__all__ = ["BilinearUpsampling", "DepthToSpace", "conv_bn_relu", "per_frame_standardize",
           "upsampled_encoder_decoder"]
