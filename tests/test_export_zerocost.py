"""ZeroCostDL4Mic exports: the notebook's own network (rebuilt here as its buildModel writes it)
loads best.weights.keras and, on frames normalised and upsampled the notebook's way, gives the
Keras outputs; the metadata holds the config's constants; other entries are refused."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import scipy.io

from loczoo.bundle import load_bundle
from loczoo.export import export_model
from loczoo.smlm.simulate import simulate_stack
from loczoo.tools import cli


def build_notebook_model(input_dim, filters):
    """Deep-STORM_2D_ZeroCostDL4Mic.ipynb v1.14.2 ``buildModel``, without compile."""
    def conv_bn_relu(x, nb_filter, rk, ck, name):
        x = keras.layers.Conv2D(nb_filter, (rk, ck), padding="same", use_bias=False,
                                kernel_initializer="Orthogonal", name="conv-" + name)(x)
        x = keras.layers.BatchNormalization(name="BN-" + name)(x)
        return keras.layers.Activation("relu", name="Relu-" + name)(x)

    f1, f2, f3, f4 = filters
    input_ = keras.layers.Input(shape=input_dim)
    act_ = conv_bn_relu(input_, f1, 3, 3, "F1")
    pool1 = keras.layers.MaxPooling2D(pool_size=(2, 2), padding="same")(act_)
    act_ = conv_bn_relu(pool1, f2, 3, 3, "F2")
    pool2 = keras.layers.MaxPooling2D(pool_size=(2, 2), padding="same")(act_)
    act_ = conv_bn_relu(pool2, f3, 3, 3, "F3")
    pool3 = keras.layers.MaxPooling2D(pool_size=(2, 2), padding="same")(act_)
    act_ = conv_bn_relu(pool3, f4, 3, 3, "F4")
    up3 = keras.layers.UpSampling2D(size=(2, 2))(act_)
    act_ = conv_bn_relu(up3, f3, 3, 3, "F5")
    up2 = keras.layers.UpSampling2D(size=(2, 2))(act_)
    act_ = conv_bn_relu(up2, f2, 3, 3, "F6")
    up1 = keras.layers.UpSampling2D(size=(2, 2))(act_)
    act_ = conv_bn_relu(up1, f1, 3, 3, "F7")
    density_pred = keras.layers.Conv2D(1, (1, 1), padding="same", activation="linear",
                                       use_bias=False, kernel_initializer="Orthogonal",
                                       name="Prediction")(act_)
    return keras.models.Model(inputs=input_, outputs=density_pred)


@pytest.mark.parametrize("name", ["deep_storm", "deepcel0"])
def test_notebook_network_gives_the_keras_outputs(name, tmp_path):
    out = export_model(name, "zerocost", tmp_path / "zc")
    bundle = load_bundle(name)
    config = bundle.config
    meta = scipy.io.loadmat(out / "model_metadata.mat")
    mean, std = float(meta["mean_test"].item()), float(meta["std_test"].item())
    up = int(meta["upsampling_factor"].item())
    assert (mean, std, up) == (config.norm_mean, config.norm_std, config.upsampling)
    assert float(meta["Normalization factor"].item()) == config.target_scale

    frames, _ = simulate_stack(config.imaging, 1, 16, 16, seed=1)
    frame = np.asarray(frames[0], np.float64)
    # The notebook: project_01, (x - mean_test) / std_test, np.kron upsampling.
    frame = (frame - frame.min()) / (frame.max() - frame.min())
    frame = np.kron((frame - mean) / std, np.ones((up, up)))
    notebook = build_notebook_model((16 * up, 16 * up, 1), config.filters)
    notebook.load_weights(out / "best.weights.keras")
    got = np.asarray(notebook.predict_on_batch(frame[None, :, :, None].astype(np.float32)))

    x = bundle.entry.preprocess(np.asarray(frames, np.float32), config)
    expected = np.asarray(bundle.model(x, training=False))
    if name == "deepcel0":  # ReLU output here, linear there: equal after the notebook's clamp
        got = np.maximum(got, 0)
    diff = float(np.abs(got - expected).max())
    print(f"{name}: max abs difference {diff:.3g} (output scale {np.abs(expected).max():.3g})")
    assert got.shape == expected.shape and np.abs(expected).max() > 0
    assert diff <= 1e-4 * np.abs(expected).max()

    with open(out / "Quality Control" / "training_evaluation.csv") as f:
        rows = list(csv.DictReader(f))
    history = bundle.metadata["history"]
    assert len(rows) == len(history)
    assert float(rows[-1]["learning rate"]) == pytest.approx(history[-1]["learning_rate"])
    card = (out / "model_card.md").read_text()
    assert "ZeroCostDL4Mic" in card and f"entry: `{name}`" in card


def test_other_entries_are_refused_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "zc"
    assert cli.main(["export", "dsir", "--format", "zerocost", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "deep_storm, deepcel0" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "zc"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert cli.main(["export", "deep_storm", "--format", "zerocost", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").exists()
