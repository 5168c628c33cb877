"""The entry contract, run for every registered entry with its TINY config."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from loczoo.presets import sha256_of
from loczoo.registry import KNOWN_ENTRIES, get_entry
from loczoo.smlm.localizations import Localizations


@pytest.fixture(scope="module", params=KNOWN_ENTRIES)
def setup(request):
    entry = get_entry(request.param)
    config = entry.prepare_config(entry.config_cls.tiny(), None, 0, batches=2)
    return entry, config


def test_config_round_trips_through_json(setup):
    from loczoo.config import from_dict, to_dict

    entry, config = setup
    assert from_dict(entry.config_cls, to_dict(config)) == config
    assert entry.config_cls.default() != entry.config_cls.tiny()


def test_dataset_matches_model_and_one_step_trains(setup):
    entry, config = setup
    model = entry.build_model(config)
    x, y = next(iter(entry.make_dataset(config, "train", seed=0)))
    out = model(x)
    if entry.task == "classification":  # class probabilities for integer labels
        assert out.shape == (x.shape[0], config.n_classes) and y.shape == (x.shape[0],)
    else:
        up = config.upsampling
        assert tuple(out.shape[:3]) == (x.shape[0], x.shape[1] * up, x.shape[2] * up)
    if entry.task == "localization" and entry.describe_targets is None:  # maps on the grid
        assert out.shape == y.shape
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
    loss_fn = entry.make_loss(config)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert all(g is not None for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0


def test_patches_from_real_frames_align_with_their_targets(setup):
    """Training from a TIFF + CSV pair: each crop's bright pixel and its target's peak agree."""
    from dataclasses import replace

    from loczoo.smlm.trainingdata import TrainingData

    entry, config = setup
    if entry.task != "localization":
        pytest.skip("classification entry (its data sets: tests/test_plcnn.py)")
    config = replace(config, batch_size=8)
    rng = np.random.default_rng(0)
    n, size = 10, 10  # 8 px patches: most crops contain the emitter
    rows, cols = rng.integers(0, size, n), rng.integers(0, size, n)
    frames = np.full((n, size, size), 100.0, np.float32)
    frames[np.arange(n), rows, cols] = 1000.0
    truth = Localizations(frame=np.arange(1, n + 1), x=(cols + 0.3) * 100, y=(rows + 0.6) * 100)
    source = TrainingData(frames=frames, truth=truth, pixel_size_nm=100.0)
    up = config.upsampling
    checked = 0
    for x, y in entry.make_dataset(config, "train", source=source).take(4):
        # The frame the targets belong to: the middle one of a window of frames.
        patches = np.asarray(x)[..., np.shape(x)[-1] // 2]
        if entry.describe_targets is not None:
            truth = entry.describe_targets(y, config, *patches.shape[1:])
        for i, patch in enumerate(patches):
            if entry.describe_targets is None:
                target = np.asarray(y)[i, ..., 0]
                has_target = target.max() > 0
            else:
                row = truth.in_frame(i + 1)
                has_target = len(row) > 0
            if patch.max() <= patch.min() or not has_target:
                assert not has_target  # emitter cropped away: no target either
                continue
            r, c = np.unravel_index(patch.argmax(), patch.shape)
            # The emitter at (col + 0.3, row + 0.6) lies in fine pixel (up c + 0.3 up, ...).
            if entry.describe_targets is None:
                assert np.unravel_index(target.argmax(), target.shape) == (
                    up * r + int(0.6 * up), up * c + int(0.3 * up))
            else:
                np.testing.assert_allclose([row.x[0], row.y[0]],
                                           [(c + 0.3) * 100, (r + 0.6) * 100], atol=1e-3)
            checked += 1
    assert checked > 5


def test_train_and_validation_streams_differ_and_repeat(setup):
    entry, config = setup
    a = next(iter(entry.make_dataset(config, "train", seed=0)))[0]
    b = next(iter(entry.make_dataset(config, "train", seed=0)))[0]
    c = next(iter(entry.make_dataset(config, "validation", seed=0)))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_initial_weights_are_seeded_and_independent(setup):
    """The global seed fixes the initial weights, and no two same-shaped kernels start equal
    (a shared Keras 3 initializer instance would give them identical values)."""
    import keras

    entry, config = setup

    def initial_kernels(seed):
        keras.utils.set_random_seed(seed)
        model = entry.build_model(config)
        return [w.numpy() for w in model.weights if w.name == "kernel" and w.numpy().size > 1]

    first, again, other = initial_kernels(3), initial_kernels(3), initial_kernels(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    for i, a in enumerate(first):
        for b in first[i + 1:]:
            assert a.shape != b.shape or not np.array_equal(a, b)


def test_weights_round_trip(setup, tmp_path):
    entry, config = setup
    model = entry.build_model(config)
    x = next(iter(entry.make_dataset(config, "train")))[0]
    model.save_weights(tmp_path / "m.weights.h5")
    clone = entry.build_model(config)
    clone.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_array_equal(model(x, training=False), clone(x, training=False))


def test_whole_model_round_trips_through_a_keras_file(setup, tmp_path):
    """Exports start from the whole saved model: every layer must serialise (custom layers are
    registered by importing loczoo.layers)."""
    import keras

    entry, config = setup
    model = entry.build_model(config)
    x = next(iter(entry.make_dataset(config, "train")))[0]
    model.save(tmp_path / "m.keras")
    clone = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(model(x, training=False), clone(x, training=False), rtol=1e-6)


def test_postprocess_returns_localizations(setup):
    entry, config = setup
    if entry.task != "localization":
        pytest.skip("classification entry")
    frames = np.random.default_rng(0).poisson(100, (2, 16, 16)).astype(np.float32)
    model = entry.build_model(config)
    out = model(entry.preprocess(frames, config), training=False)
    locs = entry.postprocess(out, config, pixel_size_nm=100.0, height=16, width=16)
    assert isinstance(locs, Localizations)
    assert np.all((locs.frame >= 1) & (locs.frame <= 2))


def test_presets_are_valid(setup):
    entry, _ = setup
    assert entry.default_preset is None or entry.default_preset in entry.presets
    for name, preset in entry.presets.items():
        assert preset.name == name and preset.entry == entry.name
        assert sha256_of(preset.weights_path()) == preset.weights.sha256
        assert isinstance(preset.build_config(), entry.config_cls)


def test_run_folder_holds_weights_without_optimizer_state(tiny_run):
    import h5py

    from loczoo.bundle import load_bundle

    with h5py.File(tiny_run / "model.weights.h5") as fh:
        assert "optimizer" not in fh
    bundle = load_bundle(str(tiny_run))
    assert bundle.entry.name == "deep_storm" and bundle.metadata["epochs_done"] == 1
