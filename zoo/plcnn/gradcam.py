"""Grad-CAM (Selvaraju et al., ICCV 2017): which parts of an image drove a class score. The
paper shows such maps for PLCNN; here they come from the last outputs of both streams.
``loczoo.bundle.ModelBundle.explain`` maps them back onto each image, and
``loczoo.proteins.images.overlay`` colours them."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

# The final feature maps of the residual and plain streams (see model.py).
STREAM_OUTPUTS = ("rl3_u2_out", "pl3_pool")


def grad_cam(model: keras.Model, images, class_indices=None,
             layer_names: tuple[str, ...] = STREAM_OUTPUTS) -> np.ndarray:
    """Maps [N, S, S] in [0, 1] for network inputs [N, S, S, C]: per layer, ReLU(sum over
    channels of (mean gradient of the class's probability) x activation), summed over
    ``layer_names``, resized to the input and scaled to a maximum of 1. ``class_indices`` None
    explains the predicted classes."""
    images = tf.convert_to_tensor(images, tf.float32)
    probe = keras.Model(model.inputs,
                        [model.get_layer(n).output for n in layer_names] + [model.output])
    with tf.GradientTape() as tape:
        *features, probabilities = probe(images, training=False)
        if class_indices is None:
            class_indices = tf.argmax(probabilities, axis=1)
        score = tf.gather(probabilities, class_indices, axis=1, batch_dims=1)
    grads = tape.gradient(score, features)
    size = images.shape[1:3]
    total = tf.zeros(tf.shape(images)[:3])
    for activation, grad in zip(features, grads):
        weights = tf.reduce_mean(grad, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * activation, axis=-1, keepdims=True))
        total += tf.image.resize(cam, size, method="bilinear")[..., 0]
    peak = tf.reduce_max(total, axis=(1, 2), keepdims=True)
    return np.asarray(tf.math.divide_no_nan(total, peak))


def explain(model: keras.Model, inputs, config) -> np.ndarray:
    """``ZooEntry.explain`` for PLCNN: Grad-CAM maps [N, S, S] in [0, 1] of the predicted
    classes for network inputs [N, S, S, C] (``preprocess`` output)."""
    return grad_cam(model, inputs)
