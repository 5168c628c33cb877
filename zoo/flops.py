"""Multiply-add count of a Keras model's convolutions for a given input size."""

from __future__ import annotations


def conv_flops(model, input_shape: tuple[int, ...]) -> float:
    """FLOPs (2 x multiply-adds) of the Conv2D / Conv2DTranspose layers for one input of
    ``input_shape`` (without batch), from a copy of ``model`` built at that size. Nested models
    count once per call (DECODE's shared U-Net runs three times per window)."""
    import keras

    probe = keras.models.clone_model(model, input_tensors=keras.Input(input_shape))
    total = 0.0
    for layer in probe.layers:
        for node in layer._inbound_nodes:
            if isinstance(layer, keras.Model):
                total += conv_flops(layer, tuple(node.input_tensors[0].shape[1:]))
            elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
                _, h, w, c_out = node.output_tensors[0].shape
                kh, kw = layer.kernel_size
                c_in = node.input_tensors[0].shape[-1]
                total += 2.0 * kh * kw * c_in * c_out * h * w / (getattr(layer, "groups", 1) or 1)
    return total
