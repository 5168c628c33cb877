"""Training data from tensorflow-datasets: ``--data tfds:NAME/CONFIG`` in the training tools.

loczoo's own builders (smlm_simulated, smlm_challenge, protein_localization) are registered by
importing their package; any other registered tfds data set with the same features works too.
The data set is prepared on first use in ``data_dir`` (default: $TFDS_DATA_DIR, else
~/tensorflow_datasets); builders that need a manual download read it from
``data_dir/downloads/manual``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from loczoo.errors import LoczooError

PREFIX = "tfds:"
OWN_BUILDERS = ("smlm_simulated", "smlm_challenge", "protein_localization")


def is_tfds_spec(data: str) -> bool:
    return data.startswith(PREFIX)


def load_builder(spec: str, data_dir: str | None = None):
    """The prepared builder for ``tfds:NAME/CONFIG``; one LoczooError if it cannot be built."""
    import tensorflow_datasets as tfds

    name = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    base = name.split("/", 1)[0].split(":", 1)[0]
    if base in OWN_BUILDERS:
        importlib.import_module(f"loczoo.datasets.{base}")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        builder.download_and_prepare()
    except LoczooError:
        raise
    except (AssertionError, tfds.core.registered.DatasetNotFoundError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LoczooError(f"cannot prepare {spec}: {first}") from None
    return builder


def smlm_training_data(spec: str, data_dir: str | None = None):
    """All frames of the ``train`` split of an SMLM data set (``smlm_simulated``: sequences of
    frames; ``smlm_challenge``: single frames) with their ground truth, as TrainingData."""
    import tensorflow_datasets as tfds

    from loczoo.smlm.localizations import Localizations
    from loczoo.smlm.trainingdata import TrainingData

    builder = load_builder(spec, data_dir)
    config = builder.builder_config
    pixel = getattr(config, "pixel_size_nm", None)
    if pixel is None:
        raise LoczooError(f"{spec} does not say its pixel size (not an SMLM data set?)")
    frames, tables, count = [], [], 0
    for example in tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)):
        stack = example["frames"] if "frames" in example else example["image"][None]
        emitters = example["emitters"]
        local = emitters["frame"] if "frame" in emitters else np.ones(len(emitters["x"]), int)
        z = emitters["z"] if np.any(emitters["z"]) else None
        tables.append(Localizations(frame=np.asarray(local) + count, x=emitters["x"],
                                    y=emitters["y"], z=z, photons=emitters["photons"]))
        frames.append(stack)
        count += len(stack)
    if not frames:
        raise LoczooError(f"{spec} has no frames in its train split")
    return TrainingData(frames=np.concatenate(frames).astype(np.float32),
                        truth=Localizations.concatenate(tables), pixel_size_nm=float(pixel))


def labelled_images(spec: str, input_size: int, data_dir: str | None = None,
                    split: str = "train"):
    """A classification data set (features ``image`` and ``label``) as LabelledImages at the
    network's input size."""
    import tensorflow_datasets as tfds

    from loczoo.proteins.images import LabelledImages, fit_to_square

    builder = load_builder(spec, data_dir)
    label = builder.info.features["label"]
    images, labels, names = [], [], []
    for i, example in enumerate(tfds.as_numpy(builder.as_dataset(split=split,
                                                                  shuffle_files=False))):
        image = np.asarray(example["image"], np.float32)
        images.append(fit_to_square(image if image.ndim == 3 else image[..., None], input_size))
        labels.append(int(example["label"]))
        name = example.get("name", b"")
        names.append(name.decode() if isinstance(name, bytes) and name else f"{split}[{i}]")
    if not images:
        raise LoczooError(f"{spec} has no images in its {split} split")
    return LabelledImages(np.stack(images), np.asarray(labels), tuple(label.names),
                          tuple(names))


def folder_images(root: str | Path, input_size: int, quiet: bool = False):
    """Class folders (``loczoo.proteins.folders.read_class_folders``) as LabelledImages."""
    from loczoo.proteins.folders import read_class_folders
    from loczoo.proteins.images import LabelledImages, fit_to_square

    data = read_class_folders(root, quiet=quiet)
    images = np.stack([fit_to_square(im, input_size) for im in data.images])
    return LabelledImages(images, data.labels, data.class_names, data.names)
