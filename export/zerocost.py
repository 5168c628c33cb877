"""ZeroCostDL4Mic export: a model folder the Deep-STORM 2D notebook (v1.14.2, Keras 3) loads as
a pretrained model, with ``best.weights.keras``, ``model_metadata.mat`` and, when the training
history is known, ``Quality Control/training_evaluation.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

from loczoo.errors import LoczooError
from loczoo.export.common import ExportSource, model_card

SUPPORTED = ("deep_storm", "deepcel0")  # entries built on the Deep-STORM encoder-decoder
NOTEBOOK = "Deep-STORM_2D_ZeroCostDL4Mic.ipynb"


def notebook_network(filters, input_shape=(None, None, 1)):
    """The notebook's ``buildModel`` network, layer for layer and with its layer names: no
    upsampling inside (the notebook upsamples frames with np.kron) and a linear output."""
    import keras

    def conv_bn_relu(x, nb_filter, name):
        x = keras.layers.Conv2D(nb_filter, (3, 3), padding="same", use_bias=False,
                                kernel_initializer="Orthogonal", name=f"conv-{name}")(x)
        x = keras.layers.BatchNormalization(name=f"BN-{name}")(x)
        return keras.layers.Activation("relu", name=f"Relu-{name}")(x)

    f1, f2, f3, f4 = filters
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for level, f in enumerate((f1, f2, f3), start=1):
        x = keras.layers.MaxPooling2D((2, 2), padding="same")(conv_bn_relu(x, f, f"F{level}"))
    x = conv_bn_relu(x, f4, "F4")
    for level, f in enumerate((f3, f2, f1), start=5):
        x = conv_bn_relu(keras.layers.UpSampling2D((2, 2))(x), f, f"F{level}")
    outputs = keras.layers.Conv2D(1, (1, 1), padding="same", activation="linear", use_bias=False,
                                  kernel_initializer="Orthogonal", name="Prediction")(x)
    return keras.Model(inputs, outputs)


def check_architecture(source: ExportSource):
    """The notebook network holding our weights, or one error line when the model is not the
    Deep-STORM encoder-decoder (checked by structure, so run folders of these entries pass)."""
    import keras

    refuse = LoczooError(f"{source.name} ({source.entry.name}) cannot be exported for "
                         f"ZeroCostDL4Mic: its Deep-STORM notebook runs only the Deep-STORM "
                         f"encoder-decoder (entries {', '.join(SUPPORTED)})")
    config, model = source.bundle.config, source.model
    if not all(hasattr(config, key) for key in ("filters", "upsampling", "norm_mean",
                                                 "norm_std", "target_scale")):
        raise refuse
    first = model.layers[1] if len(model.layers) > 1 else None
    # Ours upsamples inside the model; the notebook feeds np.kron (nearest) upsampled frames.
    if not (isinstance(first, keras.layers.UpSampling2D) and first.interpolation == "nearest"
            and tuple(first.size) == (config.upsampling,) * 2):
        raise refuse
    network = notebook_network(config.filters)
    ours = model.get_weights()
    if [w.shape for w in ours] != [w.shape for w in network.get_weights()]:
        raise refuse
    network.set_weights(ours)
    return network


def write_history(history: list[dict], path: Path) -> None:
    """The notebook's training log; it reads the last ``learning rate`` to continue training."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["loss", "val_loss", "learning rate"])
        for row in history:
            writer.writerow([row.get("loss"), row.get("val_loss"), row.get("learning_rate")])


def export_zerocost(source: ExportSource, folder: Path) -> None:
    import scipy.io

    network = check_architecture(source)  # before anything is written
    config = source.bundle.config
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Uncompiled: loading never needs our loss; load_weights matches layers by class and order.
    network.save(folder / "best.weights.keras")
    scipy.io.savemat(folder / "model_metadata.mat", {
        "mean_test": float(config.norm_mean), "std_test": float(config.norm_std),
        "upsampling_factor": int(config.upsampling),
        "Normalization factor": float(config.target_scale)})
    history = source.bundle.metadata.get("history")
    if history:
        write_history(history, folder / "Quality Control" / "training_evaluation.csv")
    details = {
        "ZeroCostDL4Mic": f"open {NOTEBOOK} (v1.14.2, Keras 3); for prediction (or under "
                          f"'Using a pretrained model' to continue training) set the model "
                          f"folder to this folder",
        "upsampling factor": config.upsampling,
        "normalisation": f"each frame min-max scaled to [0, 1], then (x - {config.norm_mean:g})"
                         f" / {config.norm_std:g} (mean_test, std_test), then upsampled "
                         f"{config.upsampling}x by np.kron (nearest neighbour)",
        "normalization factor (L2_weighting_factor)": f"{config.target_scale:g}",
        "suggested notebook settings": f"threshold {config.threshold:g}, neighborhood_size "
                                       f"{config.neighborhood}",
    }
    if source.model.layers[-1].get_config().get("activation") != "linear":
        details["output activation"] = (
            f"{source.model.layers[-1].get_config()['activation']} here, linear in the notebook "
            f"network: outputs agree after the notebook clamps negative predictions to 0")
    (folder / "model_card.md").write_text(model_card(source, "zerocost", details))
