"""Shared, serializable Keras building blocks used by several entries."""

from loczoo.layers.blocks import conv_bn_relu

__all__ = ["conv_bn_relu"]
