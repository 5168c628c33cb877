"""Deep-STORM network: the reference encoder-decoder with a linear output."""

from __future__ import annotations

import keras

from loczoo.layers.encoder_decoder import upsampled_encoder_decoder


def build_model(config) -> keras.Model:
    """Normalised camera frames [B, H, W, 1] -> map on the upsampled grid [B, H*up, W*up, 1]."""
    return upsampled_encoder_decoder(config.upsampling, config.filters, "linear", "deep_storm")
