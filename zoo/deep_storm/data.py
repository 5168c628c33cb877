"""Deep-STORM training data: (normalised camera patch, scaled blurred spike map) pairs, from the
simulator on the fly or from real frames with ground truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import tensorflow as tf

from loczoo.errors import LoczooError
from loczoo.smlm.normalize import minmax_statistics, minmax_then_standardize
from loczoo.smlm.simulate import simulate
from loczoo.smlm.targets import blur, gaussian_kernel, spike_map
from loczoo.smlm.trainingdata import TrainingData

SPLIT_SEED_OFFSET = {"train": 0, "validation": 7_919}


def heatmap_target(x_nm, y_nm, mask, config, height: int, width: int):
    """Spikes on the upsampled grid, blurred by the 7 x 7 sigma-1 kernel (sum 1), times the
    target scale: Deep-STORM's training target [B, H * up, W * up, 1]."""
    up = config.upsampling
    spikes = spike_map(x_nm, y_nm, mask, height * up, width * up, config.output_pixel_nm)
    kernel = gaussian_kernel(config.kernel_size, config.heatmap_sigma)
    return config.target_scale * blur(spikes, kernel)


def _raw_patches(config, split: str, source: TrainingData | None, seed: int):
    """Endless dataset of (raw patches [B, P, P], x, y, mask) batches."""
    if split not in SPLIT_SEED_OFFSET:
        raise LoczooError(f"split must be 'train' or 'validation', got {split!r}")
    p, b = config.patch_size, config.batch_size
    base = tf.constant(seed + SPLIT_SEED_OFFSET[split], tf.int64)
    if source is None:
        imaging = config.imaging
        max_emitters = imaging.max_emitters(p, p)

        def make(i):
            sim = simulate(tf.stack([base, i]), b, p, p, imaging, max_emitters)
            return sim["frames"], sim["x"], sim["y"], sim["mask"]

        return tf.data.Dataset.range(2**62).map(make, num_parallel_calls=tf.data.AUTOTUNE)

    n, h, w = source.frames.shape
    if h < p or w < p:
        raise LoczooError(f"frames of {h} x {w} px are smaller than the {p} px training patch")
    frame_ids = tf.constant(source.split_frames(split), tf.int32)
    frames = tf.constant(np.asarray(source.frames, np.float32))
    xs, ys, masks = (tf.constant(a) for a in source.padded_emitters())
    px = float(source.pixel_size_nm)

    def crop(i):
        seeds = tf.random.experimental.stateless_split(tf.stack([base, i]), 3)
        pick = tf.gather(frame_ids, tf.random.stateless_uniform(
            [b], seeds[0], 0, tf.size(frame_ids), tf.int32))
        top = tf.random.stateless_uniform([b], seeds[1], 0, h - p + 1, tf.int32)
        left = tf.random.stateless_uniform([b], seeds[2], 0, w - p + 1, tf.int32)
        rows = top[:, None] + tf.range(p)[None, :]
        cols = left[:, None] + tf.range(p)[None, :]
        patch = tf.gather(tf.gather(frames, pick), rows, axis=1, batch_dims=1)
        patch = tf.gather(patch, cols, axis=2, batch_dims=1)
        # Emitters in patch coordinates; those outside the patch are masked out.
        x = tf.gather(xs, pick) - tf.cast(left, tf.float32)[:, None] * px
        y = tf.gather(ys, pick) - tf.cast(top, tf.float32)[:, None] * px
        inside = (x >= 0) & (x < p * px) & (y >= 0) & (y < p * px)
        # Targets are built on the model's grid, so rescale nm to the config's pixel size.
        scale = config.imaging.pixel_size_nm / px
        return patch, x * scale, y * scale, tf.gather(masks, pick) & inside

    return tf.data.Dataset.range(2**62).map(crop, num_parallel_calls=tf.data.AUTOTUNE)


def make_dataset(config, split: str = "train", *, source: TrainingData | None = None,
                 seed: int = 0) -> tf.data.Dataset:
    """Endless batches (x [B, P, P, 1] normalised frames, y [B, P*up, P*up, 1] targets)."""
    if config.norm_mean is None or config.norm_std is None:
        raise LoczooError("config has no normalisation constants; call prepare_config first")
    p = config.patch_size

    def to_pair(frames, x, y, mask):
        inputs = minmax_then_standardize(frames, config.norm_mean, config.norm_std)[..., None]
        return inputs, heatmap_target(x, y, mask, config, p, p)

    return (_raw_patches(config, split, source, seed)
            .map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def prepare_config(config, source: TrainingData | None = None, seed: int = 0,
                   batches: int = 32):
    """Fill in the normalisation constants from validation patches (the reference averages the
    per-patch mean and std after min-max scaling over its validation split)."""
    raw = _raw_patches(config, "validation", source, seed).take(batches)
    frames = tf.concat([f for f, *_ in raw], axis=0)
    mean, std = minmax_statistics(frames)
    return replace(config, norm_mean=round(mean, 6), norm_std=round(std, 6))
