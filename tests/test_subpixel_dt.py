"""The sub-pixel distance-transform CNN: target, network shape, refinement and bias."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from loczoo.config import named_config
from loczoo.errors import LoczooError
from loczoo.smlm.postprocess import heatmap_to_localizations
from loczoo.subpixel_dt.config import SubpixelDTConfig
from loczoo.subpixel_dt.model import build_model
from loczoo.subpixel_dt.pipeline import postprocess
from loczoo.subpixel_dt.target import distance_transform_target, nearest_emitter_distance


def test_target_values_by_hand():
    # r = 1 and 10 nm pixels: emitters sit on pixel centres (5 nm + 10 nm * index).
    config = replace(SubpixelDTConfig(), upsampling=1, imaging=replace(
        SubpixelDTConfig().imaging, pixel_size_nm=10.0), alpha=2.0, d_max=4.0)
    x = tf.constant([[25.0, 85.0, 0.0]])  # columns 2 and 8; the third entry is padding
    y = tf.constant([[15.0, 15.0, 0.0]])  # row 1
    mask = tf.constant([[True, True, False]])
    t = distance_transform_target(x, y, mask, config, 3, 12)[0, ..., 0].numpy()
    f = lambda d: (math.exp(2.0 * (1 - d / 4.0)) - 1) / (math.exp(2.0) - 1)  # noqa: E731
    assert t[1, 2] == pytest.approx(1.0) and t[1, 8] == pytest.approx(1.0)
    assert t[1, 4] == pytest.approx(f(2.0))           # nearest emitter at distance 2
    assert t[0, 3] == pytest.approx(f(math.sqrt(2)))  # diagonal neighbour
    assert t[1, 5] == pytest.approx(f(3.0))           # 3 from both: the max, not the sum
    assert t[0, 0] == pytest.approx(f(math.sqrt(5)))
    assert t[1, 6] == pytest.approx(f(2.0))
    # With d_max 2.5, pixels 3 away (columns 5 and 11 of row 1) get 0, 2 away do not.
    far = replace(config, d_max=2.5)
    t_far = distance_transform_target(x, y, mask, far, 3, 12)[0, ..., 0].numpy()
    assert t_far[1, 5] == 0.0 and t_far[1, 11] == 0.0 and t_far[1, 10] > 0
    raw = replace(config, normalize_target=False)
    t_raw = distance_transform_target(x, y, mask, raw, 3, 12)[0, ..., 0].numpy()
    assert t_raw.max() == pytest.approx(math.expm1(2.0), rel=1e-6)


def test_distance_without_emitters_is_huge():
    d = nearest_emitter_distance(tf.zeros([1, 2]), tf.zeros([1, 2]),
                                 tf.constant([[False, False]]), 4, 4, 10.0)
    assert float(tf.reduce_min(d)) > 1e5


@pytest.mark.parametrize("name, n_conv, params", [("2013", 9, 527_489), ("2016", 11, 234_421)])
def test_published_configurations(name, n_conv, params):
    config = named_config(SubpixelDTConfig, name)
    model = build_model(config)
    convs = [layer for layer in model.layers if layer.name.startswith("conv")]
    assert len(convs) == n_conv
    # 3x3 convs of 32, a 3x3 conv to 49 x s channels, a 1x1 conv to one channel.
    s = config.subpixel_filters
    expected = (9 * 32 + 32) + (n_conv - 1) * (9 * 32 * 32 + 32) + (9 * 32 * 49 * s + 49 * s) \
        + (s + 1)
    assert model.count_params() == expected == params
    out = model(np.zeros((1, 5, 6, 1), np.float32))
    assert out.shape == (1, 35, 42, 1)


def test_unknown_named_config():
    with pytest.raises(LoczooError, match="2016"):
        named_config(SubpixelDTConfig, "2020")


def test_depth_to_space_places_channels_on_the_fine_grid():
    from loczoo.layers import DepthToSpace

    x = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4)
    out = DepthToSpace(2)(x).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(out, [[0, 1], [2, 3]])


def test_quadratic_refinement_is_exact_on_a_paraboloid():
    rows, cols = np.mgrid[0:9, 0:9]
    x0, y0 = 4.3, 3.8  # vertex, in pixel-index units
    image = 10.0 - (cols - x0) ** 2 - 0.5 * (rows - y0) ** 2
    locs = heatmap_to_localizations(image[None, ..., None], threshold=5.0, pixel_size_nm=10.0,
                                    refine="quadratic")
    assert len(locs) == 1
    assert locs.x[0] == pytest.approx((x0 + 0.5) * 10, abs=1e-4)
    assert locs.y[0] == pytest.approx((y0 + 0.5) * 10, abs=1e-4)
    assert locs.prob[0] == pytest.approx(image.max())


def test_ideal_maps_localize_without_bias():
    """Perfect distance maps of emitters anywhere in a pixel come back with zero mean error."""
    config = SubpixelDTConfig()
    rng = np.random.default_rng(1)
    n = 400
    x = rng.uniform(300, 500, (n, 1)).astype(np.float32)
    y = rng.uniform(300, 500, (n, 1)).astype(np.float32)
    maps = distance_transform_target(tf.constant(x), tf.constant(y), tf.ones([n, 1], bool),
                                     config, 8, 8)
    locs = postprocess(maps, config, pixel_size_nm=100.0, height=8, width=8)
    assert len(locs) == n
    order = np.argsort(locs.frame)
    dx, dy = locs.x[order] - x[:, 0], locs.y[order] - y[:, 0]
    assert abs(dx.mean()) < 0.2 and abs(dy.mean()) < 0.2
    px = 100.0 / 7
    assert np.abs(dx).max() < 0.2 * px and np.abs(dy).max() < 0.2 * px


def test_threshold_follows_the_target_scale():
    config = replace(SubpixelDTConfig(), normalize_target=False)
    out = np.zeros((1, 14, 14, 1), np.float32)
    out[0, 3, 3, 0] = 0.3 * math.expm1(7.0)
    out[0, 10, 10, 0] = 0.2 * math.expm1(7.0)
    locs = postprocess(out, config, pixel_size_nm=100.0, height=2, width=2)
    assert len(locs) == 1 and locs.prob[0] == pytest.approx(0.3)
