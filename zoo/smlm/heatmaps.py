"""The Deep-STORM-style heatmap pipeline, shared by the entries that predict a map on an
upsampled grid (Deep-STORM, DeepCEL0).

Training pairs are (camera patch, min-max scaled and z-scored with global constants;
emitter spikes on the fine grid blurred by a small Gaussian and scaled), from the simulator on
the fly or from real frames with ground truth. At inference, local maxima of the predicted map
become localizations. ``HeatmapConfig`` holds the fields this pipeline reads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from loczoo.errors import LoczooError
from loczoo.layout import localizer_layout
from loczoo.smlm.normalize import minmax_statistics, minmax_then_standardize
from loczoo.smlm.pipeline import (
    LocalizerConfig,
    localize_map,
    raw_patches,
    training_pairs,
)
from loczoo.smlm.targets import blur, gaussian_kernel, spike_map
from loczoo.smlm.trainingdata import TrainingData


@dataclass(frozen=True, kw_only=True)
class HeatmapConfig(LocalizerConfig):
    """Fields of the heatmap pipeline (the shared ones are in ``LocalizerConfig``). The network
    sees camera frames upsampled ``upsampling`` times and predicts a map on that grid. Targets
    are emitter spikes on the fine grid blurred by a ``kernel_size`` Gaussian of
    ``heatmap_sigma`` fine pixels, times ``target_scale``. ``norm_mean``/``norm_std`` are the
    global normalisation constants applied after per-frame min-max scaling (``None`` until
    computed from training data). A localization is a local maximum above
    ``threshold x target_scale``."""

    filters: tuple[int, int, int, int] = (32, 64, 128, 512)
    kernel_size: int = 7
    heatmap_sigma: float = 1.0
    target_scale: float = 100.0
    norm_mean: float | None = None
    norm_std: float | None = None

    POOLINGS = 3

    def __post_init__(self):
        super().__post_init__()
        if len(self.filters) != 4 or min(self.filters) < 1:
            raise LoczooError(f"filters must be four positive ints, got {self.filters!r}")
        if self.kernel_size % 2 == 0:
            raise LoczooError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.norm_std is not None and self.norm_std <= 0:
            raise LoczooError(f"norm_std must be > 0, got {self.norm_std}")

    @classmethod
    def tiny(cls):
        """A few thousand parameters, 16 x 16 fine patches: for tests only."""
        return super().tiny(upsampling=2, patch_size=8, filters=(4, 4, 8, 8))


def heatmap_target(x_nm, y_nm, mask, config, height: int, width: int):
    """Spikes on the upsampled grid, blurred by the 7 x 7 sigma-1 kernel (sum 1), times the
    target scale: Deep-STORM's training target [B, H * up, W * up, 1]."""
    up = config.upsampling
    spikes = spike_map(x_nm, y_nm, mask, height * up, width * up, config.output_pixel_nm)
    kernel = gaussian_kernel(config.kernel_size, config.heatmap_sigma)
    return config.target_scale * blur(spikes, kernel)


def make_dataset(config, split: str = "train", *, source: TrainingData | None = None,
                 seed: int = 0) -> tf.data.Dataset:
    """Endless batches (x [B, P, P, 1] normalised frames, y [B, P*up, P*up, 1] targets)."""
    if config.norm_mean is None or config.norm_std is None:
        raise LoczooError("config has no normalisation constants; call prepare_config first")
    p = config.patch_size

    def to_pair(frames, x, y, mask):
        inputs = minmax_then_standardize(frames, config.norm_mean, config.norm_std)[..., None]
        return inputs, heatmap_target(x, y, mask, config, p, p)

    return training_pairs(config, split, source, seed, to_pair)


def prepare_config(config, source: TrainingData | None = None, seed: int = 0,
                   batches: int = 32):
    """Fill in the normalisation constants from validation patches (the reference averages the
    per-patch mean and std after min-max scaling over its validation split)."""
    raw = raw_patches(config, "validation", source, seed).take(batches)
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
    return localize_map(outputs, config, pixel_size_nm=pixel_size_nm, height=height,
                        width=width, scale=config.target_scale)


def tensor_layout(config):
    """Min-max per frame then the stored (mean, std), written with bioimage.io's own
    operations (``scale_range`` over the frame, then ``scale_linear``)."""
    if config.norm_mean is None or config.norm_std is None:
        raise LoczooError("this config has no normalisation constants")
    steps = ({"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": 0.0,
                                               "max_percentile": 100.0}},
             {"id": "scale_linear", "kwargs": {"gain": 1.0 / config.norm_std,
                                                "offset": -config.norm_mean / config.norm_std}})
    # Seven 3 x 3 convolutions over three 2x poolings: about 40 upsampled pixels of context.
    return localizer_layout(config, ("density",), receptive_radius=40, preprocessing=steps)
