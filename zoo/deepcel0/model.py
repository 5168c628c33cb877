"""DeepCEL0 network: the Deep-STORM encoder-decoder with a ReLU output (positivity)."""

from __future__ import annotations

import keras

from loczoo.layers.encoder_decoder import upsampled_encoder_decoder


def build_model(config) -> keras.Model:
    """Normalised camera frames [B, H, W, 1] -> non-negative map [B, H*up, W*up, 1]."""
    return upsampled_encoder_decoder(config.upsampling, config.filters, "relu", "deepcel0")
