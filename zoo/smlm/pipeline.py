"""Pieces shared by every entry that maps camera frames to an image on a finer grid and finds
emitters in it (Deep-STORM, DeepCEL0, DSIR, the sub-pixel distance-transform CNN).

``LocalizerConfig`` holds the fields they all read; ``raw_patches`` streams training patches
with their emitters from the simulator on the fly or from real frames with ground truth;
``localize_map`` turns predicted maps into localizations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import tensorflow as tf

from loczoo.errors import LoczooError
from loczoo.smlm.postprocess import REFINEMENTS, heatmap_to_localizations
from loczoo.smlm.simulate import ImagingConfig, dense_2d_imaging, simulate, simulate_stack
from loczoo.smlm.trainingdata import TrainingData

SPLIT_SEED_OFFSET = {"train": 0, "validation": 7_919}


def split_seed(split: str, seed: int):
    """The int64 seed of a data split's stream (train and validation never overlap)."""
    if split not in SPLIT_SEED_OFFSET:
        raise LoczooError(f"split must be 'train' or 'validation', got {split!r}")
    return tf.constant(seed + SPLIT_SEED_OFFSET[split], tf.int64)


@dataclass(frozen=True, kw_only=True)
class LocalizerConfig:
    """The network sees ``patch_size`` camera pixels during training and predicts a map
    ``upsampling`` times finer. A localization is a local maximum (``neighborhood`` pixels)
    above ``threshold``, refined by ``refine`` (see ``loczoo.smlm.postprocess``). ``imaging``
    describes the simulated training data (and the pixel size the model was trained for)."""

    upsampling: int = 8
    patch_size: int = 26
    learning_rate: float = 1e-3
    batch_size: int = 16
    threshold: float = 0.1
    neighborhood: int = 3
    refine: str = "cog"
    imaging: ImagingConfig = field(default_factory=dense_2d_imaging)
    # 2x2 poolings between the fine-grid input and the bottleneck (shapes must divide evenly).
    POOLINGS: ClassVar[int] = 0

    def __post_init__(self):
        if self.upsampling < 1:
            raise LoczooError(f"upsampling must be >= 1, got {self.upsampling}")
        if self.patch_size < 4:
            raise LoczooError(f"patch_size must be >= 4, got {self.patch_size}")
        if self.batch_size < 1:
            raise LoczooError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.neighborhood < 1 or self.neighborhood % 2 == 0:
            raise LoczooError(f"neighborhood must be odd and >= 1, got {self.neighborhood}")
        if self.refine not in REFINEMENTS:
            raise LoczooError(f"refine must be one of {REFINEMENTS}, got {self.refine!r}")
        step = 2**self.POOLINGS
        if (self.patch_size * self.upsampling) % step:
            raise LoczooError(f"patch_size x upsampling must be a multiple of {step} "
                              f"({self.POOLINGS} 2x2 poolings), got {self.patch_size} x "
                              f"{self.upsampling}")

    @property
    def input_multiple(self) -> int:
        """Frame height and width must be multiples of this, so that the upsampled frame
        divides evenly through the poolings."""
        step = 2**self.POOLINGS
        return step // math.gcd(step, self.upsampling)

    @property
    def output_pixel_nm(self) -> float:
        return self.imaging.pixel_size_nm / self.upsampling

    @classmethod
    def default(cls):
        """The method's published defaults (the class defaults)."""
        return cls()

    @classmethod
    def tiny(cls, **small_network):
        """For tests only: batch 2 and 2-6 emitters/um^2 (so every patch has a few), plus the
        small network and patch sizes each subclass passes in."""
        default = cls()
        return replace(default, batch_size=2, **small_network,
                       imaging=replace(default.imaging, density_per_um2=(2.0, 6.0)))

    @classmethod
    def variants(cls) -> dict:
        """Other published configurations by name (``loczoo train --config NAME``)."""
        return {}


def raw_patches(config, split: str, source: TrainingData | None, seed: int) -> tf.data.Dataset:
    """Endless dataset of (camera patches [B, P, P] ADU, x nm, y nm, mask) batches.

    ``source`` None draws from the simulator with ``config.imaging``; a ``TrainingData`` gives
    random crops of its frames of the split. Emitter coordinates are rescaled to
    ``config.imaging.pixel_size_nm`` so that targets are built on the model's grid."""
    p, b = config.patch_size, config.batch_size
    base = split_seed(split, seed)
    if source is None:
        imaging = config.imaging
        max_emitters = imaging.max_emitters(p, p)

        def make(i):
            sim = simulate(tf.stack([base, i]), b, p, p, imaging, max_emitters)
            return sim["frames"], sim["x"], sim["y"], sim["mask"]

        return tf.data.Dataset.range(2**62).map(make, num_parallel_calls=tf.data.AUTOTUNE)

    crops = real_crops(config, split, source, seed)
    return crops.map(lambda c: (c["frames"], c["x"], c["y"], c["mask"]))


def real_crops(config, split: str, source: TrainingData, seed: int, context: int = 0,
               columns=("x", "y")) -> tf.data.Dataset:
    """Endless dataset of random ``config.patch_size`` crops of ``source``'s frames of the
    split, as dicts: ``frames`` [B, P, P] ADU (with ``context`` > 0: [B, 2 context + 1, P, P],
    the frames around the picked one, repeating the first or last frame at the stack's ends),
    the picked frame's ground-truth ``columns`` [B, M] (x, y in nm on the model's grid, from
    the crop corner) and ``mask`` [B, M] (emitter inside the crop)."""
    p, b = config.patch_size, config.batch_size
    base = split_seed(split, seed)
    n, h, w = source.frames.shape
    if h < p or w < p:
        raise LoczooError(f"frames of {h} x {w} px are smaller than the {p} px training patch")
    frame_ids = tf.constant(source.split_frames(split), tf.int32)
    frames = tf.constant(np.asarray(source.frames, np.float32))
    padded = {k: tf.constant(v) for k, v in source.padded_emitters(columns).items()}
    px = float(source.pixel_size_nm)
    scale = config.imaging.pixel_size_nm / px

    def crop(i):
        seeds = tf.random.experimental.stateless_split(tf.stack([base, i]), 3)
        pick = tf.gather(frame_ids, tf.random.stateless_uniform(
            [b], seeds[0], 0, tf.size(frame_ids), tf.int32))
        top = tf.random.stateless_uniform([b], seeds[1], 0, h - p + 1, tf.int32)
        left = tf.random.stateless_uniform([b], seeds[2], 0, w - p + 1, tf.int32)
        rows = top[:, None] + tf.range(p)[None, :]
        cols = left[:, None] + tf.range(p)[None, :]
        window = tf.clip_by_value(pick[:, None] + tf.range(-context, context + 1)[None, :],
                                  0, n - 1)
        patch = tf.gather(frames, window)  # [B, T, H, W]
        patch = tf.gather(patch, rows, axis=2, batch_dims=1)
        patch = tf.gather(patch, cols, axis=3, batch_dims=1)
        out = {k: tf.gather(v, pick) for k, v in padded.items()}
        # Emitters in crop coordinates; those outside the crop are masked out.
        out["x"] = out["x"] - tf.cast(left, tf.float32)[:, None] * px
        out["y"] = out["y"] - tf.cast(top, tf.float32)[:, None] * px
        inside = ((out["x"] >= 0) & (out["x"] < p * px) & (out["y"] >= 0)
                  & (out["y"] < p * px))
        out["x"], out["y"] = out["x"] * scale, out["y"] * scale
        out["mask"] = out["mask"] & inside
        out["frames"] = patch if context else patch[:, 0]
        return out

    return tf.data.Dataset.range(2**62).map(crop, num_parallel_calls=tf.data.AUTOTUNE)


def training_pairs(config, split: str, source: TrainingData | None, seed: int, to_pair):
    """``raw_patches`` mapped through ``to_pair(frames, x, y, mask) -> (inputs, targets)``."""
    return (raw_patches(config, split, source, seed)
            .map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def no_data_constants(config, source=None, seed: int = 0, batches: int = 32):
    """``prepare_config`` of entries whose models normalise each frame themselves."""
    return config


def simulated_frames(config, count: int, height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """``count`` consecutive camera frames [count, H, W] (ADU, float32) simulated with
    ``config.imaging``: the raw data ``preprocess`` takes (the entry contract's
    ``simulate_raw`` of every entry whose config carries an ``ImagingConfig``)."""
    frames, _ = simulate_stack(config.imaging, count, height, width, seed=seed)
    return np.asarray(frames, np.float32)


def raw_frames_input(frames, config=None):
    """Camera frames [N, H, W] (ADU) -> float32 batch [N, H, W, 1]: ``preprocess`` of entries
    whose models normalise each frame themselves."""
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 3:
        raise LoczooError(f"expected frames [N, H, W], got shape {frames.shape}")
    return tf.convert_to_tensor(frames[..., None])


def localize_map(outputs, config, *, pixel_size_nm: float, height: int, width: int,
                 scale: float = 1.0):
    """Local maxima of maps [B, H * up, W * up, 1] above ``config.threshold x scale``, refined
    by ``config.refine``; ``prob`` is divided by ``scale``. ``pixel_size_nm`` is the camera
    pixel; ``height`` and ``width`` the frame size before any padding."""
    up = config.upsampling
    return heatmap_to_localizations(
        outputs, threshold=config.threshold * scale, pixel_size_nm=pixel_size_nm / up,
        neighborhood=config.neighborhood, refine=config.refine, height=height * up,
        width=width * up, confidence_scale=scale)
