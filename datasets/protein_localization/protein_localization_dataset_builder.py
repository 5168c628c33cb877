"""Protein subcellular localization image sets as tensorflow-datasets, built from the folders a
user downloaded and unpacked (their terms forbid redistribution: loczoo never ships them).

    import loczoo.datasets.protein_localization  # registers the builder
    builder = tfds.builder("protein_localization/hela_2d", data_dir=DATA_DIR)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=DIR))

Each example: ``image`` [H, W, C] uint16 (sizes as in the archive), ``label``, ``name`` (the
path inside the data set). HeLa, CHO and LOCATE have one ``train`` split; cross-validate with
``loczoo train plcnn --folds K`` (stratified) or ``tfds.even_splits("train", K)``. DeepYeast
has its published train / validation / test lists.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from loczoo.errors import LoczooError
from loczoo.proteins.folders import ImageSet, read_class_folders, read_image_list


@dataclasses.dataclass
class ProteinConfig(tfds.core.BuilderConfig):
    """``folder``: the unpacked data set's folder inside the manual directory; ``classes`` in
    label order (class folders match them ignoring case, spaces, '-' and '_'); ``channels``
    per image; ``channel_suffixes`` pairs single-channel files (LOCATE); ``split_lists``
    maps splits to list files (DeepYeast)."""

    folder: str = ""
    classes: tuple[str, ...] = ()
    channels: int = 1
    channel_suffixes: tuple[str, ...] | None = None
    split_lists: tuple[tuple[str, str], ...] = ()
    source: str = ""


CONFIGS = [
    ProteinConfig(
        name="hela_2d", folder="hela_2d", channels=1,
        classes=("actin", "dna", "endosome", "er", "golgia", "golgpp", "lysosome",
                 "microtubules", "mitochondria", "nucleolus"),
        description="2D HeLa (Boland & Murphy 2001), IICBU 2008 version: 862 images of "
                    "382 x 382, 16-bit TIFF, one folder per class",
        source="Murphy lab, Carnegie Mellon / IICBU 2008 benchmark "
               "(ome.grc.nia.nih.gov/iicbu2008)"),
    ProteinConfig(
        name="cho", folder="cho", channels=1,
        classes=("giantin", "hoechst", "lamp2", "nop4", "tubulin"),
        description="CHO (Boland, Markey & Murphy 1998): 16-bit TIFF, one folder per class",
        source="Murphy lab, Carnegie Mellon / IICBU 2008 benchmark"),
    ProteinConfig(
        name="locate_endogenous", folder="locate_endogenous", channels=2,
        channel_suffixes=("_myc", "_dapi"),
        classes=("actin_cytoskeleton", "endosome", "er", "golgi", "lysosome", "microtubule",
                 "mitochondria", "nucleus", "peroxisome", "pm"),
        description="LOCATE endogenous (Hamilton et al. 2007): class folders of paired "
                    "*_myc.tif (protein, channel 0) and *_dapi.tif (DNA, channel 1) images",
        source="LOCATE SubCellLoc (locate.imb.uq.edu.au)"),
    ProteinConfig(
        name="locate_transfected", folder="locate_transfected", channels=2,
        channel_suffixes=("_myc", "_dapi"),
        classes=("actin_cytoskeleton", "cytoplasm", "endosome", "er", "golgi", "lysosome",
                 "microtubule", "mitochondria", "nucleus", "peroxisome", "pm"),
        description="LOCATE transfected (Hamilton et al. 2007): as endogenous, 11 classes",
        source="LOCATE SubCellLoc (locate.imb.uq.edu.au)"),
    ProteinConfig(
        name="deepyeast", folder="deepyeast", channels=2,
        classes=("cell_periphery", "cytoplasm", "endosome", "er", "golgi", "mitochondria",
                 "nuclear_periphery", "nucleolus", "nucleus", "peroxisome", "spindle_pole",
                 "vacuole"),
        split_lists=(("train", "train.txt"), ("validation", "val.txt"), ("test", "test.txt")),
        description="DeepYeast (Parnamaa & Parts 2017): 64 x 64 two-channel images listed "
                    "with their labels in train.txt, val.txt and test.txt",
        source="DeepYeast (kodu.ut.ee/~leopoldp/2016_DeepYeast)"),
]


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.lower())


class Builder(tfds.core.GeneratorBasedBuilder):
    """Protein localization images from a manual download."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = CONFIGS
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download the data set from its source (terms: non-commercial research use, cite the source, no
redistribution) and unpack it into the manual directory (default
<data_dir>/downloads/manual), in the folder the config names:
  hela_2d/<class>/*.tif               2D HeLa: actin, dna, endosome, er, golgia, golgpp,
                                      lysosome, microtubules, mitochondria, nucleolus
  cho/<class>/*.tif                   CHO: giantin, hoechst, lamp2, nop4, tubulin
  locate_endogenous/<class>/X_myc.tif + X_dapi.tif   (10 classes)
  locate_transfected/<class>/X_myc.tif + X_dapi.tif  (11 classes)
  deepyeast/train.txt, val.txt, test.txt (lines 'relative/path.png LABEL') + the images
Class folders are matched ignoring case, spaces, '-' and '_'. No checksums are published for
these archives, so none are enforced; each build records the files it read.
"""

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        return tfds.core.DatasetInfo(
            builder=self,
            description=c.description,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(None, None, c.channels), dtype=np.uint16,
                                              encoding=tfds.features.Encoding.ZLIB),
                "label": tfds.features.ClassLabel(names=list(c.classes)),
                "name": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            homepage=c.source,
        )

    def _split_generators(self, dl_manager):
        c = self.builder_config
        root = Path(dl_manager.manual_dir) / c.folder
        if not root.is_dir():
            raise LoczooError(f"{root} does not exist; unpack the {c.name} data set there "
                              f"(see MANUAL_DOWNLOAD_INSTRUCTIONS)")
        if c.split_lists:
            return {split: self._generate_examples(
                read_image_list(root, root / file, c.classes)) for split, file in c.split_lists}
        return {"train": self._generate_examples(self._read_folders(root))}

    def _read_folders(self, root: Path) -> ImageSet:
        c = self.builder_config
        by_key = {_key(p.name): p.name for p in root.iterdir() if p.is_dir()}
        missing = [name for name in c.classes if _key(name) not in by_key]
        if missing:
            raise LoczooError(f"{root} lacks class folders for {', '.join(missing)} (found: "
                              f"{', '.join(sorted(by_key.values())) or 'none'})")
        folders = tuple(by_key[_key(name)] for name in c.classes)
        data = read_class_folders(root, folders, c.channel_suffixes)
        data.class_names = c.classes
        return data

    def _generate_examples(self, data: ImageSet):
        c = self.builder_config
        for image, label, name in zip(data.images, data.labels, data.names):
            if image.shape[-1] != c.channels:
                raise LoczooError(f"{name} has {image.shape[-1]} channels; {c.name} images "
                                  f"have {c.channels}")
            if image.min() < 0 or image.max() > 65535:
                raise LoczooError(f"{name} has values outside 0-65535 (not a camera image)")
            yield name, {"image": np.round(image).astype(np.uint16), "label": int(label),
                         "name": name}
