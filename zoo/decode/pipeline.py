"""DECODE training data, input, optimizer and post-processing."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from loczoo.decode.config import CHANNELS, autoset_scaling
from loczoo.decode.loss import TARGET_FIELDS, pack_targets, unpack_targets
from loczoo.decode.postprocess import outputs_to_localizations
from loczoo.errors import LoczooError
from loczoo.smlm.localizations import Localizations
from loczoo.smlm.pipeline import real_crops, split_seed
from loczoo.smlm.simulate import simulate_sequence

# Frames of context on each side of the frame being localized.
FRAME_CONTEXT = 1


def prepare_config(config, source=None, seed: int = 0, batches: int = 32):
    """Fill in the scaling constants from the imaging configuration (once: a fine-tuned model
    keeps its parent's)."""
    return config if config.has_scaling else autoset_scaling(config)


def _targets(config, x_nm, y_nm, z_nm, photons, mask, background):
    """Padded emitter table of the centre frame [B, M, 5] in network units, keeping at most
    ``max_targets`` emitters with at least ``photon_min`` photons (NaN photons = unknown are
    kept), packed with the background map (see ``loczoo.decode.loss``)."""
    px = config.imaging.pixel_size_nm
    # Written out for NaN: graph optimisation may turn "not (p < min)" into "p >= min".
    keep = mask & (tf.math.is_nan(photons) | (photons >= config.photon_min))
    m = config.max_targets
    # Real emitters first, then padding, cut to max_targets.
    order = tf.argsort(tf.cast(keep, tf.int32), axis=1, direction="DESCENDING", stable=True)
    pad = tf.maximum(m - tf.shape(order)[1], 0)
    take = lambda t: tf.pad(tf.gather(t, order, batch_dims=1), [[0, 0], [0, pad]])[:, :m]  # noqa: E731
    table = tf.stack([
        take(tf.cast(keep, tf.float32)),
        take(photons) / config.photon_max,
        take(x_nm) / px,
        take(y_nm) / px,
        take(z_nm) / config.z_max if config.predict_z else tf.zeros_like(take(x_nm)),
    ], axis=-1)
    table = tf.where(table[..., :1] > 0, table, 0.0)  # padding rows are all zeros
    return pack_targets(table, background / config.background_max)


def make_dataset(config, split: str = "train", *, source=None, seed: int = 0) -> tf.data.Dataset:
    """Endless batches (3-frame windows [B, P, P, 3] ADU, packed targets [B, 5M + P^2]).

    From the simulator: blinking emitters over 3 consecutive frames (``simulate_sequence``),
    targets from the centre frame, the true background as the background target. From a
    TIFF + CSV pair: random crops of frames t-1, t, t+1, the CSV's emitters of frame t
    (photons if the CSV has them, else unknown) and no background target."""
    if not config.has_scaling:
        raise LoczooError("DECODE scaling constants are not set: call prepare_config first")
    p, b = config.patch_size, config.batch_size
    if source is None:
        base = split_seed(split, seed)
        imaging = config.imaging

        def make(i):
            sim = simulate_sequence(tf.stack([base, i]), b, 2 * FRAME_CONTEXT + 1, p, p,
                                    imaging)
            c = FRAME_CONTEXT
            windows = tf.transpose(sim["frames"], [0, 2, 3, 1])
            return windows, _targets(config, sim["x"][:, c], sim["y"][:, c], sim["z"][:, c],
                                     sim["photons"][:, c], sim["mask"][:, c],
                                     sim["background"][:, c])
    else:
        columns = ("x", "y", "photons") + (("z",) if config.predict_z else ())
        crops = real_crops(config, split, source, seed, context=FRAME_CONTEXT, columns=columns)

        def make(c):
            windows = tf.transpose(c["frames"], [0, 2, 3, 1])
            z = c["z"] if config.predict_z else tf.zeros_like(c["x"])
            unknown_background = -tf.ones([b, p, p])
            return windows, _targets(config, c["x"], c["y"], z, c["photons"], c["mask"],
                                     unknown_background)

        return crops.map(make, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    return (tf.data.Dataset.range(2**62).map(make, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def describe_targets(targets, config, height: int, width: int) -> Localizations:
    """The ground truth a batch of packed targets holds, in nm on the model's grid (frames
    numbered from 1 within the batch): for checking training data."""
    emitters, _ = unpack_targets(tf.convert_to_tensor(targets, tf.float32), height, width)
    emitters = np.asarray(emitters)
    frame, slot = np.nonzero(emitters[..., 0] > 0.5)
    rows = emitters[frame, slot]
    px = config.imaging.pixel_size_nm
    field = TARGET_FIELDS.index
    return Localizations(frame=frame + 1, x=rows[:, field("x")] * px,
                         y=rows[:, field("y")] * px,
                         photons=rows[:, field("photons")] * config.photon_max)


def preprocess(frames, config=None):
    """Camera frames [N, H, W] (ADU) -> windows [N, H, W, 3] of frames t-1, t, t+1, the first
    and last frame repeated at the stack's ends (as the reference's inference)."""
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 3:
        raise LoczooError(f"expected frames [N, H, W], got shape {frames.shape}")
    index = np.arange(len(frames))
    windows = [frames[np.clip(index + d, 0, len(frames) - 1)]
               for d in range(-FRAME_CONTEXT, FRAME_CONTEXT + 1)]
    return tf.convert_to_tensor(np.stack(windows, axis=-1))


def postprocess(outputs, config, *, pixel_size_nm: float, height: int, width: int):
    return outputs_to_localizations(outputs, config, pixel_size_nm=pixel_size_nm,
                                    height=height, width=width)


def make_optimizer(config):
    """The reference: AdamW (weight decay 0.1), the learning rate times 0.9 every 10 epochs
    of 10,000 samples (a staircase schedule in optimizer steps), global gradient norm
    clipped to 0.03."""
    steps = max(1, config.lr_decay_samples // config.batch_size)
    schedule = keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=steps, decay_rate=config.lr_decay, staircase=True)
    return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay,
                                  global_clipnorm=config.clip_norm)


def tensor_layout(config):
    """3-frame windows in ADU (the network converts to photons with the training camera), the
    DECODE channels out on the camera grid."""
    from loczoo.layout import TensorLayout

    return TensorLayout(input_channels=("frame t-1", "frame t", "frame t+1"),
                        output_channels=CHANNELS, input_multiple=config.input_multiple,
                        upsampling=1, tile_margin=4 * config.input_multiple,
                        pixel_size_nm=config.imaging.pixel_size_nm)
