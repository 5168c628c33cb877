"""Training pairs, input and post-processing of DSIR."""

from __future__ import annotations

import keras
import tensorflow as tf

from loczoo.dsir.loss import gaussian_blur, peak_one_gaussian
from loczoo.layout import localizer_layout
from loczoo.smlm.pipeline import localize_map, training_pairs
from loczoo.smlm.targets import spike_map


def make_dataset(config, split: str = "train", *, source=None, seed: int = 0) -> tf.data.Dataset:
    """Endless batches (camera patches [B, P, P, 1] ADU, spikes [B, P*up, P*up, 1]):
    ``target_scale`` (1 in the reference) in the fine pixel holding each emitter (the
    reference's ``int()`` truncation is our floor)."""
    p, up = config.patch_size, config.upsampling

    def to_pair(frames, x, y, mask):
        spikes = spike_map(x, y, mask, p * up, p * up, config.output_pixel_nm)
        return frames[..., None], config.target_scale * spikes

    return training_pairs(config, split, source, seed, to_pair)


def postprocess(outputs, config, *, pixel_size_nm: float, height: int, width: int):
    """The loss only constrains the prediction blurred by the Gaussian g, so peaks are looked
    for in g * prediction, where one emitter peaks at about ``target_scale``; ``threshold`` is
    relative to that peak (a loczoo addition: the reference stops at the image)."""
    kernel = peak_one_gaussian(config.kernel_width, config.kernel_fwhm).astype("float32")
    blurred = gaussian_blur(tf.convert_to_tensor(outputs, tf.float32), kernel)
    return localize_map(blurred, config, pixel_size_nm=pixel_size_nm, height=height,
                        width=width, scale=config.target_scale)


def make_optimizer(config):
    """Adam with the reference's weight decay 1e-5 (Keras applies it decoupled, as AdamW does;
    PyTorch's Adam adds it to the gradient)."""
    return keras.optimizers.Adam(config.learning_rate, weight_decay=config.weight_decay or None)


def tensor_layout(config):
    """Raw frames in (the network resizes and z-scores each frame itself), one map out."""
    # Four 3 x 3 convolutions over three 2x poolings on the 8x grid.
    return localizer_layout(config, ("image",), receptive_radius=40)
