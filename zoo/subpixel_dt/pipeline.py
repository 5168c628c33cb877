"""Training pairs, input and post-processing of the sub-pixel distance-transform CNN."""

from __future__ import annotations

import tensorflow as tf

from loczoo.layout import localizer_layout
from loczoo.smlm.pipeline import localize_map, training_pairs
from loczoo.subpixel_dt.target import distance_transform_target


def make_dataset(config, split: str = "train", *, source=None, seed: int = 0) -> tf.data.Dataset:
    """Endless batches (camera patches [B, P, P, 1] ADU, targets [B, P*r, P*r, 1])."""
    p = config.patch_size

    def to_pair(frames, x, y, mask):
        return frames[..., None], distance_transform_target(x, y, mask, config, p, p)

    return training_pairs(config, split, source, seed, to_pair)


def postprocess(outputs, config, *, pixel_size_nm: float, height: int, width: int):
    """Local maxima of the distance map above ``threshold`` (normalised scale), refined by a
    parabola through each peak and its neighbours (``refine="quadratic"``)."""
    return localize_map(outputs, config, pixel_size_nm=pixel_size_nm, height=height,
                        width=width, scale=config.target_peak)


def tensor_layout(config):
    """Raw frames in (the network z-scores each frame), the distance-transform map out."""
    # n_conv 3 x 3 convolutions on the camera grid: n_conv camera pixels of context.
    return localizer_layout(config, ("distance_transform",),
                            receptive_radius=(config.n_conv + 2) * config.upsampling)
