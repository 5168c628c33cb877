"""The DECODE network (the reference's ``SigmaMUNet``): a shared U-Net per frame of a 3-frame
window, a union U-Net on their concatenated features, and four output heads."""

from __future__ import annotations

import keras
from keras import ops

from loczoo.decode.config import CHANNELS


def kaiming(gain: float = 2.0) -> keras.initializers.Initializer:
    """Reference init: Kaiming-normal (fan in; gain 2 for ELU/ReLU layers, 1 for linear ones).
    A fresh instance per layer: a Keras 3 initializer fixes its seed when it is constructed, so
    one shared instance would give every same-shaped layer identical weights."""
    return keras.initializers.VarianceScaling(gain, "fan_in", "untruncated_normal")


def _conv(filters, kernel, name, activation="elu", **kwargs):
    kwargs.setdefault("kernel_initializer", kaiming())
    return keras.layers.Conv2D(filters, kernel, padding="same", activation=activation,
                               name=name, **kwargs)


def unet(channels_in: int, channels_out: int, features: int, depth: int,
         name: str) -> keras.Model:
    """The reference's ``UNet2d``: a double 3 x 3 conv + ELU per level, 2 x 2 stride-2 convs
    down, nearest x2 + 1 x 1 conv up, concatenated skips, a final 1 x 1 conv (+ ELU: its
    output feeds further convolutions)."""
    inputs = keras.Input((None, None, channels_in), name=f"{name}_input")
    x, f, skips = inputs, features, []
    for level in range(depth + 1):
        if level:
            skips.append(x)
            x = _conv(x.shape[-1], 2, f"{name}_down{level}", strides=2)(x)
            f *= 2
        x = _conv(f, 3, f"{name}_enc{level}a")(x)
        x = _conv(f, 3, f"{name}_enc{level}b")(x)
    for level in reversed(range(depth)):
        f //= 2
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up{level}")(x)
        x = _conv(f, 1, f"{name}_up{level}_conv")(x)
        x = keras.layers.Concatenate(name=f"{name}_skip{level}")([skips[level], x])
        x = _conv(f, 3, f"{name}_dec{level}a")(x)
        x = _conv(f, 3, f"{name}_dec{level}b")(x)
    outputs = _conv(channels_out, 1, f"{name}_out")(x)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="loczoo")
class DecodeOutputs(keras.layers.Layer):
    """Raw head outputs [..., 10] -> p (sigmoid of the logit clamped to [-8, 8]), photons and
    background (sigmoid), x, y, z (tanh), sigmas (3 sigmoid + 0.001). In 2D (``predict_z``
    False) z is 0 and its sigma ``sigma_z_fixed``, as the reference's disabled attributes."""

    def __init__(self, predict_z: bool = True, sigma_z_fixed: float = 0.1, **kwargs):
        # float32 even under a mixed-precision policy: the loss reads sub-pixel offsets and
        # log-probabilities that bfloat16's 8-bit mantissa would round.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.predict_z = predict_z
        self.sigma_z_fixed = sigma_z_fixed

    def call(self, raw):
        p = ops.sigmoid(ops.clip(raw[..., 0:1], -8.0, 8.0))
        photons = ops.sigmoid(raw[..., 1:2])
        xyz = ops.tanh(raw[..., 2:5])
        sigmas = 3.0 * ops.sigmoid(raw[..., 5:9]) + 0.001
        if not self.predict_z:
            xyz = ops.concatenate([xyz[..., :2], ops.zeros_like(xyz[..., 2:])], axis=-1)
            sigmas = ops.concatenate(
                [sigmas[..., :3], ops.full_like(sigmas[..., 3:], self.sigma_z_fixed)], axis=-1)
        background = ops.sigmoid(raw[..., 9:10])
        return ops.concatenate([p, photons, xyz, sigmas, background], axis=-1)

    def get_config(self):
        return {**super().get_config(), "predict_z": self.predict_z,
                "sigma_z_fixed": self.sigma_z_fixed}


def heads(features: int, config) -> keras.Model:
    """Four heads, each a 3 x 3 conv + ELU then a 1 x 1 conv: p (1 channel; linear Kaiming and
    bias ``p_bias`` so that p starts near sigmoid(-6) = 0.0025), the photon/x/y/z means (4),
    their sigmas (4) and the background (1); then ``DecodeOutputs``."""
    inputs = keras.Input((None, None, features), name="heads_input")
    parts = []
    for name, channels in (("p", 1), ("mean", 4), ("sigma", 4), ("background", 1)):
        x = _conv(features, 3, f"head_{name}_conv")(inputs)
        extra = {}
        if name == "p":
            extra = {"kernel_initializer": kaiming(1.0),
                     "bias_initializer": keras.initializers.Constant(config.p_bias)}
        parts.append(_conv(channels, 1, f"head_{name}_out", activation=None, **extra)(x))
    raw = keras.layers.Concatenate(name="raw_outputs")(parts)
    outputs = DecodeOutputs(config.predict_z, config.sigma_z_fixed, name="outputs")(raw)
    return keras.Model(inputs, outputs, name="heads")


def adu_to_network_input(config) -> keras.layers.Rescaling:
    """ADU -> photons (the camera's inverse) -> (photons - input_offset) / input_scale, as one
    affine layer so exports take camera frames."""
    camera = config.imaging.camera
    per_adu = camera.photons_per_adu
    scale = per_adu / config.input_scale if config.input_scale else 1.0
    offset = -(camera.baseline_adu * per_adu + config.input_offset) / (config.input_scale or 1.0)
    return keras.layers.Rescaling(scale, offset, name="to_network_units")


def build_model(config) -> keras.Model:
    """3-frame windows [B, H, W, 3] (ADU; frames t-1, t, t+1) -> [B, H, W, 10] in the order of
    ``CHANNELS``. The shared U-Net runs once per frame of the window here; for whole stacks
    ``consecutive_windows_forward`` runs it once per frame of the stack instead."""
    inputs = keras.Input((None, None, 3), name="input")
    x = adu_to_network_input(config)(inputs)
    shared = unet(1, config.inter_features, config.features, config.depth, "shared_unet")
    union = unet(3 * config.inter_features, config.inter_features, config.features,
                 config.depth, "union_unet")
    features = keras.layers.Concatenate(name="window_features")(
        [shared(x[..., i:i + 1]) for i in range(3)])
    outputs = heads(config.inter_features, config)(union(features))
    assert outputs.shape[-1] == len(CHANNELS)
    return keras.Model(inputs, outputs, name="decode")


def consecutive_windows_forward(model: keras.Model, config):
    """A function equal to ``model`` on windows of consecutive frames (as ``preprocess``
    makes them), that runs the shared U-Net once per frame instead of three times: frame t's
    features are reused as the previous and next frames' features of windows t+1 and t-1.
    The first window's previous frame and the last window's next frame are computed once."""
    scale = model.get_layer("to_network_units")
    shared, union = model.get_layer("shared_unet"), model.get_layer("union_unet")
    head = model.get_layer("heads")

    def forward(windows):
        x = scale(windows)
        frames = ops.concatenate([x[:1, ..., 0:1], x[..., 1:2], x[-1:, ..., 2:3]], axis=0)
        f = shared(frames, training=False)
        features = ops.concatenate([f[:-2], f[1:-1], f[2:]], axis=-1)
        return head(union(features, training=False), training=False)

    return forward
