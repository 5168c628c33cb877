"""PLCNN: the network's structure (parameter count by hand), inputs of any channel count and
intensity scale, and refused configurations."""

from __future__ import annotations

import numpy as np
import pytest

from loczoo.errors import LoczooError
from loczoo.plcnn.config import PLCNNConfig
from loczoo.plcnn.model import build_model


def expected_parameters(f: int, k: int, channels: int, classes: int, thumbnail: bool) -> int:
    """The figure's blocks counted by hand: convs with BN have no bias and 4 f BN values."""
    conv = k * k * f * f + f                   # conv + bias (plain stream, adapters)
    conv_bn = k * k * f * f + 4 * f            # conv + batch norm (residual stream)
    unit = 2 * conv_bn
    stem = k * k * channels * f + 4 * f
    plain_small = (k * k * channels * f + f) + conv + 2 * conv   # P_s (from the input), P_s
    cross = 2 * (k * k * 2 * f * f + f)        # [Conv, ReLU] into each stream from 2f channels
    residual_large = 2 * unit + conv_bn
    plain_large = 3 * conv
    head_in = 2 * f + (64 * channels if thumbnail else 0)
    return (stem + 2 * unit + plain_small + 3 * (cross + residual_large + plain_large)
            + head_in * classes + classes)


@pytest.mark.parametrize("kw", [{}, {"channels": 2, "class_names": tuple("abcde")},
                                {"feature_branch": "none", "features": 16, "kernel_size": 5}])
def test_parameter_count_matches_the_figure(kw):
    config = PLCNNConfig(**kw)
    model = build_model(config)
    assert model.count_params() == expected_parameters(
        config.features, config.kernel_size, config.channels, config.n_classes,
        config.feature_branch == "thumbnail")


def test_default_size_and_stream_shapes():
    model = build_model(PLCNNConfig())
    assert model.count_params() == 1_594_184  # "about 1.5 M" (methods.md 8.1)
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers}
    assert shapes["cross1_concat"] == (32, 32, 128)
    assert shapes["cross3_concat"] == (8, 8, 128)
    assert shapes["rl3_u2_out"] == shapes["pl3_pool"] == (4, 4, 64)
    strided = build_model(PLCNNConfig(matching="strided"))
    assert strided.count_params() == 1_594_184 + 9 * 64 * 64 + 64


def test_outputs_are_probabilities_independent_of_intensity_scale():
    config = PLCNNConfig.tiny(channels=2)
    model = build_model(config)
    images = np.random.default_rng(0).gamma(2.0, 50.0, (3, 32, 32, 2)).astype(np.float32)
    p = np.asarray(model(images, training=False))
    assert p.shape == (3, config.n_classes)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    # Per-image z-scoring: a camera gain and offset change nothing.
    np.testing.assert_allclose(model(images * 7.0 + 300.0, training=False), p, atol=1e-4)


@pytest.mark.parametrize("kw", [{"class_names": ("a",)}, {"class_names": ("a", "a")},
                                {"input_size": 48}, {"channels": 0}, {"kernel_size": 2},
                                {"matching": "resize"}, {"feature_branch": "hog"},
                                {"learning_rate": 0.0}])
def test_bad_configs_are_refused(kw):
    with pytest.raises(LoczooError):
        PLCNNConfig(**kw)
