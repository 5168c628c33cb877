"""PLCNN loss: cross-entropy of the softmax class probabilities against integer labels."""

from __future__ import annotations

import keras
from keras import ops


def class_cross_entropy(y_true, y_pred):
    """Per-sample -log p[label] for probabilities [B, K] and integer labels [B] (or [B, 1]),
    with the probabilities clipped to [eps, 1 - eps] (the values of
    ``keras.losses.SparseCategoricalCrossentropy``, which this loss replaces)."""
    return ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=False)


@keras.saving.register_keras_serializable(package="loczoo")
class ClassCrossEntropy(keras.losses.Loss):
    """``class_cross_entropy`` averaged over the batch."""

    def __init__(self, name: str = "class_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return class_cross_entropy(y_true, y_pred)

    def get_config(self):
        return super().get_config()


def make_loss(config) -> ClassCrossEntropy:
    return ClassCrossEntropy()
