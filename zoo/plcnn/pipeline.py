"""PLCNN data: labelled images from the cell-pattern simulator or from a user's data set, resized
to the network's input, augmented by 90-degree rotations and flips, in class-balanced batches.
The pieces any classifier shares (``LabelledImages``, ``fit_to_square``, folds, source checks)
live in ``loczoo.proteins.images``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import tensorflow as tf

from loczoo.proteins.images import LabelledImages, cell_imaging, check_source, fit_images
from loczoo.proteins.simulate import balanced_labels, simulate_cells
from loczoo.smlm.pipeline import split_seed
from loczoo.smlm.simulate import split_seeds


def prepare_config(config, source: LabelledImages | None = None, seed: int = 0,
                   batches: int = 0):
    """Training on a data set takes its class names and channel count."""
    if source is None:
        return config
    return replace(config, class_names=tuple(source.class_names),
                   channels=int(source.images.shape[-1]))


def preprocess(images, config) -> np.ndarray:
    """Images [N, H, W] or [N, H, W, C] (or a list of differently sized [H, W(, C)] arrays)
    -> the network's input [N, S, S, C] via ``fit_to_square``."""
    return fit_images(images, config.input_size, config.channels)


def augment(images, seed):
    """A random 90-degree rotation and a random left-right flip per image (the 8 symmetries of
    the square; a cell has no preferred orientation)."""
    s = split_seeds(seed, 2)
    k = tf.random.stateless_uniform([tf.shape(images)[0]], s[0], 0, 4, dtype=tf.int32)
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], s[1]) < 0.5

    def one(args):
        image, turns, mirrored = args
        image = tf.image.rot90(image, turns)
        return tf.cond(mirrored, lambda: tf.image.flip_left_right(image), lambda: image)

    return tf.map_fn(one, (images, k, flip), fn_output_signature=images.dtype)


def make_dataset(config, split: str, source: LabelledImages | None = None,
                 seed: int = 0) -> tf.data.Dataset:
    """(images [B, S, S, C], labels [B]) batches. Without ``source``: endless simulated batches
    with every class equally often. With ``source`` (see ``LabelledImages.split``): training
    batches drawn class-balanced (each class equally likely, whatever its size) and augmented,
    endlessly; the validation split once, in order, unaugmented."""
    base = split_seed(split, seed)
    b = config.batch_size
    if source is None:
        imaging = cell_imaging(config)

        def simulated(i):
            s = tf.stack([base, i])
            labels = balanced_labels(b, config.n_classes, s)
            return simulate_cells(s, labels, imaging)["images"], labels

        return tf.data.Dataset.range(2**62).map(simulated, num_parallel_calls=tf.data.AUTOTUNE)

    check_source(config, source)
    source = source.split(split, seed)
    if split == "validation":
        return tf.data.Dataset.from_tensor_slices((source.images, source.labels)).batch(b)
    per_class = []
    for label in range(config.n_classes):
        members = np.flatnonzero(source.labels == label)
        if len(members) == 0:
            continue  # a fold without this class: sample the others
        per_class.append(tf.data.Dataset.from_tensor_slices(
            (source.images[members], source.labels[members]))
            .shuffle(len(members), seed=seed + label).repeat())
    balanced = tf.data.Dataset.sample_from_datasets(per_class, seed=seed,
                                                    rerandomize_each_iteration=True)
    batches = balanced.batch(b, drop_remainder=True).enumerate()
    return batches.map(lambda i, xy: (augment(xy[0], tf.stack([base, i])), xy[1]))


def tensor_layout(config):
    """Square images of ``input_size`` in (``fit_to_square`` brings other sizes to it; the
    network z-scores each image), class probabilities out."""
    from loczoo.layout import TensorLayout

    return TensorLayout(input_channels=("protein", "dna")[:config.channels]
                        if config.channels <= 2 else
                        tuple(f"channel{i}" for i in range(config.channels)),
                        output_channels=tuple(config.class_names),
                        fixed_size=config.input_size, upsampling=0, tile_margin=0)
