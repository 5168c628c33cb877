"""Frame normalisations shared by entries (TensorFlow, batched over frames [B, H, W])."""

from __future__ import annotations

import tensorflow as tf


def minmax_scale(frames):
    """Each frame scaled to [0, 1] by its own min and max (Deep-STORM's ``project_01``)."""
    frames = tf.cast(frames, tf.float32)
    lo = tf.reduce_min(frames, axis=[-2, -1], keepdims=True)
    hi = tf.reduce_max(frames, axis=[-2, -1], keepdims=True)
    return (frames - lo) / tf.maximum(hi - lo, 1e-6)


def minmax_then_standardize(frames, mean: float, std: float):
    """Min-max per frame, then the global z-score (mean, std) stored with the weights."""
    return (minmax_scale(frames) - mean) / std


def minmax_statistics(frames) -> tuple[float, float]:
    """Average over frames of the per-frame mean and std after min-max scaling: the global
    normalisation constants Deep-STORM computes on its validation patches."""
    scaled = minmax_scale(frames)
    mean = tf.reduce_mean(tf.reduce_mean(scaled, axis=[-2, -1]))
    std = tf.reduce_mean(tf.math.reduce_std(scaled, axis=[-2, -1]))
    return float(mean), float(std)
