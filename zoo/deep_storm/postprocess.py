"""Deep-STORM inference around the network: normalisation in, local maxima out."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from loczoo.errors import LoczooError
from loczoo.smlm.normalize import minmax_then_standardize
from loczoo.smlm.postprocess import heatmap_to_localizations


def preprocess(frames, config):
    """Camera frames [N, H, W] (ADU) -> network input [N, H, W, 1]."""
    if config.norm_mean is None or config.norm_std is None:
        raise LoczooError("this Deep-STORM config has no normalisation constants")
    frames = tf.convert_to_tensor(np.asarray(frames, np.float32))
    return minmax_then_standardize(frames, config.norm_mean, config.norm_std)[..., None]


def postprocess(outputs, config, *, pixel_size_nm: float, height: int, width: int):
    """Local maxima above ``threshold x target_scale`` (3 x 3 by default), refined by the 3 x 3
    centre of gravity (ZeroCostDL4Mic's "local average"); prob = 3 x 3 sum / target_scale.
    ``pixel_size_nm`` is the camera pixel; the map is on a grid ``upsampling`` times finer."""
    up = config.upsampling
    return heatmap_to_localizations(
        outputs, threshold=config.threshold * config.target_scale,
        pixel_size_nm=pixel_size_nm / up, neighborhood=config.neighborhood,
        refine=config.refine, height=height * up, width=width * up,
        confidence_scale=config.target_scale)
