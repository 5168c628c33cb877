"""The Deep-STORM-style heatmap pipeline, shared by the entries that predict a map on an
upsampled grid (Deep-STORM, DeepCEL0).

Training pairs are (camera patch, min-max scaled and z-scored with global constants;
emitter spikes on the fine grid blurred by a small Gaussian and scaled), from the simulator on
the fly or from real frames with ground truth. At inference, local maxima of the predicted map
become localizations. ``HeatmapConfig`` holds the fields this pipeline reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import tensorflow as tf

from loczoo.errors import LoczooError
from loczoo.smlm.normalize import minmax_statistics, minmax_then_standardize
from loczoo.smlm.postprocess import heatmap_to_localizations
from loczoo.smlm.simulate import ImagingConfig, dense_2d_imaging, simulate
from loczoo.smlm.targets import blur, gaussian_kernel, spike_map
from loczoo.smlm.trainingdata import TrainingData

SPLIT_SEED_OFFSET = {"train": 0, "validation": 7_919}


@dataclass(frozen=True, kw_only=True)
class HeatmapConfig:
    """Fields of the heatmap pipeline. The network sees camera frames upsampled ``upsampling``
    times and predicts a map on that grid. Targets are emitter spikes on the fine grid blurred by
    a ``kernel_size`` Gaussian of ``heatmap_sigma`` fine pixels, times ``target_scale``.
    ``norm_mean``/``norm_std`` are the global normalisation constants applied after per-frame
    min-max scaling (``None`` until computed from training data). A localization is a local
    maximum (``neighborhood`` pixels) above ``threshold x target_scale``."""

    upsampling: int = 8
    patch_size: int = 26
    filters: tuple[int, int, int, int] = (32, 64, 128, 512)
    kernel_size: int = 7
    heatmap_sigma: float = 1.0
    target_scale: float = 100.0
    learning_rate: float = 1e-3
    batch_size: int = 16
    norm_mean: float | None = None
    norm_std: float | None = None
    threshold: float = 0.1
    neighborhood: int = 3
    refine: str = "cog"
    imaging: ImagingConfig = field(default_factory=dense_2d_imaging)

    def __post_init__(self):
        if self.upsampling < 1:
            raise LoczooError(f"upsampling must be >= 1, got {self.upsampling}")
        if (self.patch_size * self.upsampling) % 8:
            raise LoczooError(f"patch_size x upsampling must be a multiple of 8 (three 2x2 "
                              f"poolings), got {self.patch_size} x {self.upsampling}")
        if len(self.filters) != 4 or min(self.filters) < 1:
            raise LoczooError(f"filters must be four positive ints, got {self.filters!r}")
        if self.kernel_size % 2 == 0:
            raise LoczooError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.refine not in ("cog", "none"):
            raise LoczooError(f"refine must be 'cog' or 'none', got {self.refine!r}")
        if self.norm_std is not None and self.norm_std <= 0:
            raise LoczooError(f"norm_std must be > 0, got {self.norm_std}")

    @property
    def input_multiple(self) -> int:
        """Frame height and width must be multiples of this (8 after upsampling)."""
        return 8 // math.gcd(8, self.upsampling)

    @property
    def output_pixel_nm(self) -> float:
        return self.imaging.pixel_size_nm / self.upsampling

    @classmethod
    def default(cls):
        """The method's published defaults (the class defaults)."""
        return cls()

    @classmethod
    def tiny(cls):
        """A few thousand parameters, 16 x 16 fine patches: for tests only."""
        default = cls()
        return replace(default, upsampling=2, patch_size=8, filters=(4, 4, 8, 8), batch_size=2,
                       imaging=replace(default.imaging, density_per_um2=(2.0, 6.0)))


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


def preprocess(frames, config):
    """Camera frames [N, H, W] (ADU) -> network input [N, H, W, 1]."""
    if config.norm_mean is None or config.norm_std is None:
        raise LoczooError("this config has no normalisation constants")
    frames = tf.convert_to_tensor(np.asarray(frames, np.float32))
    return minmax_then_standardize(frames, config.norm_mean, config.norm_std)[..., None]


def postprocess(outputs, config, *, pixel_size_nm: float, height: int, width: int):
    """Local maxima above ``threshold x target_scale``, refined by the 3 x 3 centre of gravity
    (ZeroCostDL4Mic's "local average"); prob = 3 x 3 sum / target_scale. ``pixel_size_nm`` is
    the camera pixel; the map is on a grid ``upsampling`` times finer."""
    up = config.upsampling
    return heatmap_to_localizations(
        outputs, threshold=config.threshold * config.target_scale,
        pixel_size_nm=pixel_size_nm / up, neighborhood=config.neighborhood,
        refine=config.refine, height=height * up, width=width * up,
        confidence_scale=config.target_scale)
