"""Labelled images for any protein-localization classifier: the in-memory data set
(``LabelledImages``), bringing images of any size to a network's square input and maps back
(``fit_to_square``, ``square_to_image``), stratified folds, the checks that a data set fits a
classifier's config, batched class probabilities, and the colour overlay of an explanation map.

A classification entry's config has ``class_names``, ``n_classes``, ``channels``,
``input_size`` and ``batch_size``; its ``preprocess`` places each image with ``fit_to_square``
(``fit_images``), so that maps on the network's input (``ZooEntry.explain``) go back to the
image with ``square_to_image``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from loczoo.errors import LoczooError


@dataclass
class LabelledImages:
    """A classification data set in memory: ``images`` [N, S, S, C] float32 (already at the
    network's input size, see ``fit_to_square``), ``labels`` [N] (indices into
    ``class_names``) and a ``names`` entry per image (file names, for reports)."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    names: tuple[str, ...]
    validation: np.ndarray | None = None  # indices held out for validation (None: 10 %)

    def __post_init__(self):
        self.images = np.asarray(self.images, np.float32)
        self.labels = np.asarray(self.labels, np.int32)
        if self.images.ndim != 4 or len(self.images) != len(self.labels) != len(self.names):
            raise LoczooError(f"labelled images need images [N, S, S, C] with a label and a name "
                              f"each; got {self.images.shape}, {len(self.labels)} labels and "
                              f"{len(self.names)} names")
        if len(self.labels) and (self.labels.min() < 0
                                 or self.labels.max() >= len(self.class_names)):
            raise LoczooError(f"labels must lie in 0..{len(self.class_names) - 1}")
        if not np.all(np.isfinite(self.images)):
            bad = [n for n, im in zip(self.names, self.images) if not np.all(np.isfinite(im))]
            raise LoczooError(f"images contain NaN or infinite values: {', '.join(bad[:5])}")

    def subset(self, indices) -> LabelledImages:
        indices = np.asarray(indices, int)
        return LabelledImages(self.images[indices], self.labels[indices], self.class_names,
                              tuple(self.names[i] for i in indices))

    def split(self, split: str, seed: int) -> LabelledImages:
        """The images of a split: ``validation`` holds the ``validation`` indices (default: a
        stratified tenth, or 1 / k of the data when the smallest class has k < 10 images),
        ``train`` the rest."""
        held_out = self.validation
        if held_out is None:
            smallest = np.bincount(self.labels, minlength=len(self.class_names)).min()
            held_out = stratified_folds(self.labels, min(10, int(smallest)), seed)[0]
        if split == "validation":
            return self.subset(held_out)
        return self.subset(np.setdiff1d(np.arange(len(self.labels)), held_out))


def square_placement(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """Where ``fit_to_square`` puts an image: (top, left, scaled height, scaled width)."""
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    return (size - new_h) // 2, (size - new_w) // 2, new_h, new_w


def fit_to_square(image: np.ndarray, size: int) -> np.ndarray:
    """One image [H, W, C] of any size -> [size, size, C]: scaled (area-averaging when
    shrinking, bilinear when enlarging) so that its longer side is ``size``, keeping the aspect
    ratio, then centred on a square padded with the image's median (its background), so that no
    edge of zeros appears after the network's per-image z-score."""
    image = np.asarray(image, np.float32)
    top, left, new_h, new_w = square_placement(*image.shape[:2], size)
    method = "area" if new_h < image.shape[0] else "bilinear"
    resized = tf.image.resize(image, [new_h, new_w], method=method).numpy()
    out = np.empty((size, size, image.shape[2]), np.float32)
    out[...] = np.median(image.reshape(-1, image.shape[2]), axis=0)
    out[top:top + new_h, left:left + new_w] = resized
    return out


def square_to_image(square: np.ndarray, height: int, width: int) -> np.ndarray:
    """The inverse of ``fit_to_square`` for a map [S, S] on the network's input: the part
    covering the image, resized back to [height, width]."""
    top, left, new_h, new_w = square_placement(height, width, square.shape[0])
    part = np.asarray(square, np.float32)[top:top + new_h, left:left + new_w, None]
    return tf.image.resize(part, [height, width], method="bilinear").numpy()[..., 0]


def fit_images(images, size: int, channels: int) -> np.ndarray:
    """Images [N, H, W] or [N, H, W, C] (or a list of differently sized [H, W(, C)] arrays)
    -> a network's input [N, size, size, channels] via ``fit_to_square``."""
    out = []
    for image in images:
        image = np.asarray(image, np.float32)
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[-1] != channels:
            raise LoczooError(f"images must be [H, W] or [H, W, {channels}] for this "
                              f"model, got {image.shape}")
        out.append(fit_to_square(image, size))
    return np.stack(out) if out else np.zeros((0, size, size, channels), np.float32)


def check_source(config, source: LabelledImages) -> None:
    """A data set fits a classifier's config when its classes and image shape match and every
    class has an image to train on and one to validate on."""
    expected = (config.input_size, config.input_size, config.channels)
    if tuple(source.class_names) != tuple(config.class_names):
        raise LoczooError(f"the data's classes {list(source.class_names)} differ from the "
                          f"model's {list(config.class_names)}")
    if source.images.shape[1:] != expected:
        raise LoczooError(f"images are {source.images.shape[1:]}, the model takes {expected}")
    if len(source.labels) == 0:
        raise LoczooError("the data set has no images")
    counts = np.bincount(source.labels, minlength=config.n_classes)
    if counts.min() < 2:
        empty = [c for c, n in zip(config.class_names, counts) if n < 2]
        raise LoczooError(f"every class needs at least 2 images (one to validate on); "
                          f"{', '.join(empty)} {'has' if len(empty) == 1 else 'have'} fewer")


def stratified_folds(labels, folds: int, seed: int) -> list[np.ndarray]:
    """Indices of ``folds`` test folds for k-fold cross-validation: each class is shuffled and
    dealt round-robin, so every fold holds each class in proportion (within one image)."""
    labels = np.asarray(labels)
    if folds < 2:
        raise LoczooError(f"cross-validation needs at least 2 folds, got {folds}")
    counts = np.bincount(labels)
    if counts[counts > 0].min() < folds:
        raise LoczooError(f"{folds} folds need at least {folds} images per class; the "
                          f"smallest class has {counts[counts > 0].min()}")
    rng = np.random.default_rng(seed)
    members = [[] for _ in range(folds)]
    offset = 0
    for label in np.flatnonzero(counts):
        idx = rng.permutation(np.flatnonzero(labels == label))
        for j, i in enumerate(idx):
            members[(j + offset) % folds].append(i)
        offset += len(idx)  # continue dealing where the last class stopped: balanced sizes
    return [np.sort(np.asarray(m, int)) for m in members]


def predict_probabilities(model, images, batch_size: int,
                          progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Class probabilities [N, classes] for network inputs [N, S, S, C], batch by batch;
    ``progress(done, total)`` after each batch."""
    parts = []
    for start in range(0, len(images), batch_size):
        parts.append(np.asarray(model(images[start:start + batch_size], training=False)))
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    return np.concatenate(parts) if parts else np.zeros((0, model.output_shape[-1]), np.float32)


def simulated_cells(config, count: int, height: int, width: int, *,
                    seed: int = 0) -> np.ndarray:
    """``count`` cell images [count, H, W, C] (float32) of the first class from the cell-pattern
    simulator, for a classifier's config: the contract's ``simulate_raw`` of classifiers whose
    inputs are cell images (one channel, or two with a DNA stain). Images are square, of
    side ``height``."""
    from loczoo.proteins.simulate import CellImagingConfig, simulate_cells

    imaging = CellImagingConfig(size=height, dna_channel=config.channels == 2)
    return np.asarray(simulate_cells([seed, 0], [0] * count, imaging)["images"], np.float32)


def cell_imaging(config):
    """The cell-pattern simulator's settings for a classifier's config: its input size, a DNA
    channel when it takes two channels, and its class names as the patterns."""
    from loczoo.proteins.simulate import PATTERNS, CellImagingConfig

    unknown = [c for c in config.class_names if c not in PATTERNS]
    if unknown or config.channels > 2:
        raise LoczooError(f"the cell-pattern simulator draws 1 or 2 channels of the patterns "
                          f"{', '.join(PATTERNS)}; this config has {config.channels} channels "
                          f"and the classes {', '.join(unknown)} it cannot draw")
    return CellImagingConfig(size=config.input_size, dna_channel=config.channels == 2,
                             patterns=tuple(config.class_names))


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB uint8 [H, W, 3]: the image's first channel in grey (1st-99.5th percentile) with
    a map [H, W] in 0..1 (an explanation) in "jet" colours on top, weighted by the map itself
    so cold regions stay grey."""
    from loczoo.smlm.render import rainbow_colormap

    grey = np.asarray(image, np.float32)
    grey = grey[..., 0] if grey.ndim == 3 else grey
    lo, hi = np.percentile(grey, [1.0, 99.5])
    grey = np.clip((grey - lo) / max(hi - lo, 1e-6), 0.0, 1.0)[..., None] * 255.0
    weight = alpha * np.clip(heat, 0.0, 1.0)[..., None]
    rgb = (1.0 - weight) * grey + weight * rainbow_colormap(heat)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
