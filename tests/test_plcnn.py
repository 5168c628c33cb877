"""PLCNN: the network's structure (parameter count by hand), inputs of any channel count and
intensity scale, refused configurations; the data pipeline (resizing, augmentation,
class-balanced batches, stratified folds)."""

from __future__ import annotations

import numpy as np
import pytest

from loczoo.errors import LoczooError
from loczoo.plcnn.config import PLCNNConfig
from loczoo.plcnn.model import build_model
from loczoo.plcnn.pipeline import augment, make_dataset
from loczoo.proteins.images import LabelledImages, fit_to_square, stratified_folds


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


# --- data: resizing, augmentation, balanced batches, folds -------------------------------


def test_fit_to_square_keeps_aspect_and_pads_with_the_background():
    image = np.full((40, 80, 1), 10.0, np.float32)
    image[10:30, 20:40] = 500.0  # a 20 x 20 square
    out = fit_to_square(image, 32)
    assert out.shape == (32, 32, 1)
    # 80 -> 32: scale 0.4; the 40 rows become 16, centred (8 rows of padding above and below).
    np.testing.assert_array_equal(out[:8], 10.0)
    np.testing.assert_array_equal(out[-8:], 10.0)
    bright = np.argwhere(out[..., 0] > 255)
    assert np.ptp(bright[:, 0]) == np.ptp(bright[:, 1])  # still a square
    assert np.allclose(fit_to_square(np.full((7, 5, 2), 3.0), 32), 3.0)


def test_augment_applies_one_of_the_eight_symmetries():
    import tensorflow as tf

    images = np.random.default_rng(0).normal(size=(64, 6, 6, 1)).astype(np.float32)
    out = np.asarray(augment(tf.constant(images), tf.constant([1, 2], tf.int64)))
    seen = set()
    for a, b in zip(images, out):
        transforms = [np.rot90(np.flip(a, 1) if f else a, k, axes=(0, 1))
                      for f in (0, 1) for k in range(4)]
        hits = [i for i, t in enumerate(transforms) if np.array_equal(t, b)]
        assert hits
        seen.add(hits[0])
    assert len(seen) == 8
    again = np.asarray(augment(tf.constant(images), tf.constant([1, 2], tf.int64)))
    np.testing.assert_array_equal(out, again)


def test_simulated_batches_are_balanced_and_split():
    config = PLCNNConfig.tiny(batch_size=16, channels=2)
    x, y = next(iter(make_dataset(config, "train", seed=0)))
    assert x.shape == (16, 32, 32, 2) and np.bincount(np.asarray(y), minlength=8).min() == 2
    x2, _ = next(iter(make_dataset(config, "train", seed=0)))
    xv, _ = next(iter(make_dataset(config, "validation", seed=0)))
    np.testing.assert_array_equal(x, x2)
    assert not np.array_equal(x, xv)


def _unbalanced(n0=90, n1=10, size=32):
    rng = np.random.default_rng(1)
    images = rng.normal(100, 5, (n0 + n1, size, size, 1)).astype(np.float32)
    labels = np.array([0] * n0 + [1] * n1)
    names = tuple(f"im{i}.tif" for i in range(len(labels)))
    return LabelledImages(images, labels, ("a", "b"), names)


def test_training_batches_are_class_balanced_and_validation_is_the_data_once():
    source = _unbalanced()
    config = PLCNNConfig.tiny(class_names=("a", "b"), batch_size=10)
    train = make_dataset(config, "train", source=source).take(40)
    images = np.concatenate([np.asarray(x) for x, _ in train])
    labels = np.concatenate([np.asarray(y) for _, y in train])
    assert 0.42 < labels.mean() < 0.58  # 10 % of the data, half of the batches
    # Validation: a stratified tenth (9 + 1 images), once, in order, never seen in training.
    val = list(make_dataset(config, "validation", source=source))
    held_out = np.concatenate([y for _, y in val])
    assert len(held_out) == 10 and held_out.tolist() == sorted(held_out.tolist())
    assert np.bincount(held_out).tolist() == [9, 1]
    val_images = np.concatenate([x for x, _ in val])
    seen = {im.tobytes() for im in images}
    assert not any(np.rot90(w, k).tobytes() in seen
                   for v in val_images for w in (v, np.flip(v, 1)) for k in range(4))
    # Explicit validation indices (a cross-validation fold).
    fold = LabelledImages(source.images, source.labels, source.class_names, source.names,
                          validation=np.array([0, 95]))
    val = list(make_dataset(config, "validation", source=fold))
    np.testing.assert_array_equal(np.concatenate([x for x, _ in val]), source.images[[0, 95]])


def test_bad_sources_are_refused():
    source = _unbalanced()
    with pytest.raises(LoczooError, match="classes"):
        make_dataset(PLCNNConfig.tiny(), "train", source=source)
    with pytest.raises(LoczooError, match="the model takes"):
        make_dataset(PLCNNConfig.tiny(class_names=("a", "b"), input_size=64), "train",
                     source=source)
    images = source.images.copy()
    images[3, 0, 0, 0] = np.nan
    with pytest.raises(LoczooError, match="im3.tif"):
        LabelledImages(images, source.labels, ("a", "b"), source.names)
    with pytest.raises(LoczooError, match="cannot draw"):
        make_dataset(PLCNNConfig.tiny(class_names=("a", "b")), "train")
    lonely = LabelledImages(source.images[:11], source.labels[:11], ("a", "b"), source.names[:11])
    with pytest.raises(LoczooError, match="b has fewer"):
        make_dataset(PLCNNConfig.tiny(class_names=("a", "b")), "train", source=lonely)


def test_stratified_folds_partition_each_class_evenly():
    labels = np.array([0] * 23 + [1] * 10 + [2] * 7)
    folds = stratified_folds(labels, 5, seed=0)
    joined = np.concatenate(folds)
    np.testing.assert_array_equal(np.sort(joined), np.arange(40))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for c, n in enumerate(np.bincount(labels)):
        per_fold = [np.sum(labels[f] == c) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == n
    assert [list(f) for f in folds] == [list(f) for f in stratified_folds(labels, 5, seed=0)]
    with pytest.raises(LoczooError, match="at least 10 images per class"):
        stratified_folds(labels, 10, seed=0)


# --- Grad-CAM ----------------------------------------------------------------------------

def test_grad_cam_by_hand_on_a_linear_model():
    """Features = the image itself, score = softmax of w x mean(features): the gradient of the
    class probability is uniform, so the map is the image scaled to a peak of 1."""
    import keras

    from loczoo.plcnn.gradcam import grad_cam

    inputs = keras.Input((8, 8, 1))
    feats = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones",
                                name="feats")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(feats)
    weights = keras.initializers.Constant([[1.0, -1.0]])
    out = keras.layers.Dense(2, activation="softmax", kernel_initializer=weights,
                             bias_initializer="zeros")(pooled)
    model = keras.Model(inputs, out)
    image = np.zeros((1, 8, 8, 1), np.float32)
    image[0, 2, 5], image[0, 6, 1] = 4.0, 2.0
    cam = grad_cam(model, image, layer_names=("feats",))
    np.testing.assert_allclose(cam[0], image[0, ..., 0] / 4.0, atol=1e-6)
    # Class 1's probability falls with the same features: nothing drives it.
    np.testing.assert_allclose(grad_cam(model, image, [1], layer_names=("feats",)), 0.0)


def test_grad_cam_on_plcnn_and_back_to_the_image():
    from loczoo.plcnn.gradcam import grad_cam
    from loczoo.proteins.images import overlay, square_to_image

    config = PLCNNConfig.tiny()
    model = build_model(config)
    images = np.random.default_rng(0).gamma(2.0, 50.0, (2, 32, 32, 1)).astype(np.float32)
    cam = grad_cam(model, images)
    assert cam.shape == (2, 32, 32) and cam.min() >= 0 and cam.max() <= 1 + 1e-6
    back = square_to_image(cam[0], 20, 40)   # a 20 x 40 image sat in rows 8..24
    assert back.shape == (20, 40)
    rgb = overlay(np.ones((20, 40)), back)
    assert rgb.shape == (20, 40, 3) and rgb.dtype == np.uint8


def test_square_to_image_inverts_fit_to_square():
    from loczoo.proteins.images import square_to_image

    image = np.linspace(0, 1, 30 * 60, dtype=np.float32).reshape(30, 60, 1)
    square = fit_to_square(image, 64)[..., 0]
    np.testing.assert_allclose(square_to_image(square, 30, 60), image[..., 0], atol=0.02)


def test_cross_validation_summary_by_hand():
    from loczoo.crossval import confusion_image, summarize

    truth = [0, 0, 0, 1, 1, 2]
    predicted = [0, 1, 0, 1, 1, 0]
    s = summarize(truth, predicted, [0.5, 1.0, 0.75], ("a", "b", "c"))
    assert s["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert s["per_class_accuracy"] == {"a": 2 / 3, "b": 1.0, "c": 0.0}
    assert s["overall_accuracy"] == pytest.approx(4 / 6)
    assert s["accuracy_mean"] == pytest.approx(0.75)
    assert s["accuracy_std"] == pytest.approx(0.25)  # sample standard deviation
    image = confusion_image(np.array(s["confusion"]), ("a", "b", "c"))
    assert image.size[0] == image.size[1] > 3 * 44
