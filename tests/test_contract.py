"""The entry contract, run for every registered entry with its TINY config."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from loczoo.presets import sha256_of
from loczoo.registry import (
    CONFIG_PROTOCOLS,
    KNOWN_ENTRIES,
    callable_fields,
    get_entry,
    signature_mismatches,
)
from loczoo.smlm.localizations import Localizations

# The files every entry folder has (design.md, "Layout"); entries may add their own.
ENTRY_FILES = ("__init__.py", "config.py", "model.py", "loss.py", "presets.py", "README.md")


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


def test_callable_fields_satisfy_their_protocols(setup):
    """Every callable the entry registers accepts the calls its Protocol describes."""
    import dataclasses

    from loczoo.registry import ZooEntry

    entry, _ = setup
    protocols = callable_fields()
    optional = {f.name for f in dataclasses.fields(ZooEntry) if str(f.type).endswith("| None")}
    assert {"build_model", "make_loss", "make_dataset", "explain"} <= set(protocols)
    for name, protocol in protocols.items():
        fn = getattr(entry, name)
        if fn is None:
            assert name in optional, f"{entry.name}.{name} is required"
            continue
        assert callable(fn)
        assert signature_mismatches(fn, protocol) == [], f"{entry.name}.{name}"
    if entry.task == "localization":
        assert entry.postprocess is not None and entry.tensor_layout is not None


def test_signature_check_catches_what_callers_would_trip_on():
    from loczoo.registry import DatasetFactory, Postprocessor, Preprocessor

    def good(config, split="train", *, source=None, seed=0, extra=1):
        pass

    def no_seed(config, split, *, source=None):
        pass

    def positional_seed(config, split, source=None, seed=0):  # keywords work on these too
        pass

    def extra_required(config, split, mode, *, source=None, seed=0):
        pass

    def seed_required(config, split, *, source=None, seed):
        pass

    assert signature_mismatches(good, DatasetFactory) == []
    assert signature_mismatches(positional_seed, DatasetFactory) == []
    assert signature_mismatches(lambda *args, **kwargs: None, DatasetFactory) == []
    assert signature_mismatches(no_seed, DatasetFactory) == ["takes no keyword argument 'seed'"]
    assert "extra parameter 'mode'" in " ".join(signature_mismatches(extra_required,
                                                                     DatasetFactory))
    assert "'seed' needs a default" in " ".join(signature_mismatches(seed_required,
                                                                     DatasetFactory))
    assert signature_mismatches(lambda frames: None, Preprocessor) == [
        "takes no positional argument 2 (config)"]
    assert signature_mismatches(lambda out, cfg, px, height, width: None, Postprocessor) == [
        "takes no keyword argument 'pixel_size_nm'", "extra parameter 'px' has no default "
        "(callers never pass it)"]


def test_config_satisfies_the_protocol_of_its_task(setup):
    """The attributes the runtime reads are real dataclass fields (or properties computed
    from them), with values of the right kind, in the TINY and the paper configs."""
    import dataclasses
    import inspect

    entry, config = setup
    protocol = CONFIG_PROTOCOLS[entry.task]
    members = {name for cls in protocol.__mro__ for name, value in vars(cls).items()
               if isinstance(value, property)}
    assert {"batch_size", "learning_rate"} <= members
    field_names = {f.name for f in dataclasses.fields(entry.config_cls)}
    for name in sorted(members):
        assert name in field_names or isinstance(
            inspect.getattr_static(entry.config_cls, name), property), (
            f"{entry.config_cls.__name__}.{name} is neither a field nor a property")
    for c in (config, entry.config_cls.default()):
        assert isinstance(c, protocol)
        assert isinstance(c.batch_size, int) and c.batch_size >= 1
        assert isinstance(c.learning_rate, float) and c.learning_rate > 0
        if entry.task == "localization":
            assert isinstance(c.threshold, float) and c.threshold > 0
            assert isinstance(c.input_multiple, int) and c.input_multiple >= 1
            assert isinstance(c.upsampling, int) and c.upsampling >= 1
            assert c.imaging.pixel_size_nm > 0
        else:
            assert all(isinstance(n, str) for n in c.class_names)
            assert c.n_classes == len(c.class_names) >= 2
            assert isinstance(c.channels, int) and isinstance(c.input_size, int)
    other = [p for task, p in CONFIG_PROTOCOLS.items() if task != entry.task]
    assert not any(isinstance(config, p) for p in other)


def test_decode_config_json_from_before_the_upsampling_field_still_loads():
    """``upsampling`` became a DECODE field (it was a class constant): run folders written
    before it still load, and only the camera grid is accepted."""
    from dataclasses import replace

    from loczoo.config import from_dict, to_dict
    from loczoo.errors import LoczooError

    cls = get_entry("decode").config_cls
    data = to_dict(cls.tiny())
    assert data.pop("upsampling") == 1
    assert from_dict(cls, data) == cls.tiny()
    with pytest.raises(LoczooError, match="upsampling must be 1, got 2"):
        replace(cls.tiny(), upsampling=2)


def test_entry_folder_has_the_shape_of_every_entry(setup):
    import ast
    from pathlib import Path

    import loczoo

    entry, _ = setup
    folder = Path(loczoo.__file__).parent / entry.name
    missing = [name for name in ENTRY_FILES if not (folder / name).is_file()]
    assert not missing, f"{folder} lacks {missing}"
    assert entry.make_loss.__module__ == f"loczoo.{entry.name}.loss"
    assert entry.build_model.__module__ == f"loczoo.{entry.name}.model"
    assert entry.config_cls.__module__ == f"loczoo.{entry.name}.config"
    # The loss is written in keras.ops: no TensorFlow in loss.py.
    tree = ast.parse((folder / "loss.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name and name.split(".")[0] == "tensorflow" for name in imported)


def test_loss_is_a_registered_keras_loss_that_round_trips(setup):
    """The loss serialises by its registered name (a compiled model saved to .keras keeps it)
    and its clone gives the same value on a TINY batch."""
    import json

    import keras

    entry, config = setup
    loss = entry.make_loss(config)
    cls = type(loss)
    assert isinstance(loss, keras.losses.Loss)
    assert cls.__module__ == f"loczoo.{entry.name}.loss"
    assert keras.saving.get_registered_name(cls) == f"loczoo>{cls.__name__}"
    assert keras.saving.get_registered_object(f"loczoo>{cls.__name__}") is cls
    assert "get_config" in vars(cls)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(loss)))
    clone = keras.saving.deserialize_keras_object(serialized)
    assert type(clone) is cls and clone.get_config() == loss.get_config()

    keras.utils.set_random_seed(0)
    model = entry.build_model(config)
    x, y = next(iter(entry.make_dataset(config, "train", seed=0)))
    out = model(x, training=False)
    value = float(loss(y, out))
    assert np.isfinite(value)
    assert float(clone(y, out)) == value


@pytest.mark.parametrize("name, builtin", [
    ("subpixel_dt", "MeanSquaredError"),
    ("plcnn", "SparseCategoricalCrossentropy"),
])
def test_losses_that_replaced_keras_builtins_keep_their_values(name, builtin):
    import keras

    entry = get_entry(name)
    config = entry.prepare_config(entry.config_cls.tiny(), None, 0, batches=2)
    keras.utils.set_random_seed(0)
    model = entry.build_model(config)
    x, y = next(iter(entry.make_dataset(config, "train", seed=0)))
    out = model(x, training=False)
    assert float(entry.make_loss(config)(y, out)) == float(getattr(keras.losses, builtin)()(y, out))
