"""The EPFL SMLM challenge data sets with ground truth (2013 2D training sets, 2016 MT0 sets)
as tensorflow-datasets, from the files a user downloaded from srm.epfl.ch and unpacked.

Each example is one frame: ``image`` [H, W] uint16 ADU, ``frame`` (1-based) and its
ground-truth ``emitters`` (``x``, ``y``, ``z`` in nm, z 0 where the set is 2D, and
``photons``). One ``train`` split in frame order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from loczoo.errors import LoczooError
from loczoo.smlm.io import read_localizations, read_stack

PIXEL_NM = 100.0  # both challenges


@dataclasses.dataclass
class ChallengeConfig(tfds.core.BuilderConfig):
    """``folder``: where the set is unpacked inside the manual directory."""

    folder: str = ""
    pixel_size_nm: float = PIXEL_NM


def _config(name: str, description: str) -> ChallengeConfig:
    return ChallengeConfig(name=name, folder=name, description=description)


CONFIGS = [
    _config("2013_tubulins_i", "SMLM 2013 training set Tubulins I (long sequence)"),
    _config("2013_tubulins_ii", "SMLM 2013 training set Tubulins II (high density)"),
    _config("2013_bundled_tubes_ls", "SMLM 2013 training set Bundled Tubes Long Sequence"),
    _config("2013_bundled_tubes_hd", "SMLM 2013 training set Bundled Tubes High Density"),
    *[_config(f"2016_mt0_{n}_{d}_{m}",
              f"SMLM 2016 MT0.{n.upper()}.{d.upper()}, {'2D' if m == '2d' else 'astigmatic'}")
      for n in ("n1", "n2") for d in ("ld", "hd") for m in ("2d", "as")],
]


def _stack_path(root: Path) -> Path:
    """``sequence/`` (a folder of single-frame TIFFs, as the 2013 archives unpack), else the
    one multi-page TIFF in the folder (the 2016 'sequence-as-stack' file)."""
    if (root / "sequence").is_dir():
        return root / "sequence"
    tiffs = sorted(p for p in root.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    if len(tiffs) != 1:
        raise LoczooError(f"{root} needs a sequence/ folder of TIFFs or exactly one TIFF stack; "
                          f"found {len(tiffs)} TIFF files")
    return tiffs[0]


def _truth_path(root: Path) -> Path:
    """``activations.csv`` (2013) or ``ground-truth*.csv``, else the one CSV in the folder."""
    csvs = sorted(root.glob("*.csv"))
    preferred = [p for p in csvs if p.name.lower() == "activations.csv"
                 or p.name.lower().startswith("ground")]
    if len(preferred) == 1:
        return preferred[0]
    if len(csvs) != 1:
        raise LoczooError(f"{root} needs its ground-truth CSV (activations.csv); found "
                          f"{len(csvs)} CSV files")
    return csvs[0]


class Builder(tfds.core.GeneratorBasedBuilder):
    """EPFL SMLM challenge frames with ground truth."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = CONFIGS
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download the training data sets with ground truth from the SMLM challenge site
(srm.epfl.ch: 2013 'Training datasets', 2016 'MT0' sets) and unpack each into the manual
directory (default <data_dir>/downloads/manual) in a folder named like its config:
  2013_bundled_tubes_hd/sequence/00001.tif ...   + 2013_bundled_tubes_hd/activations.csv
  2016_mt0_n1_hd_2d/<the sequence-as-stack .tif> + its ground-truth CSV
The CSV columns are read by name (frame, xnano, ynano, znano, intensity, or x, y, z).
"""

    def _info(self) -> tfds.core.DatasetInfo:
        column = tfds.features.Tensor(shape=(None,), dtype=np.float32)
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{self.builder_config.description}; {PIXEL_NM:g} nm pixels",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(None, None), dtype=np.uint16,
                                              encoding=tfds.features.Encoding.ZLIB),
                "frame": tfds.features.Scalar(dtype=np.int32),
                "emitters": tfds.features.FeaturesDict(
                    {"x": column, "y": column, "z": column, "photons": column}),
            }),
            homepage="https://srm.epfl.ch",
        )

    def _split_generators(self, dl_manager):
        root = Path(dl_manager.manual_dir) / self.builder_config.folder
        if not root.is_dir():
            raise LoczooError(f"{root} does not exist; unpack the {self.builder_config.name} "
                              f"set there (see MANUAL_DOWNLOAD_INSTRUCTIONS)")
        return {"train": self._generate_examples(root)}

    def _generate_examples(self, root: Path):
        stack = read_stack(_stack_path(root), PIXEL_NM)
        truth = read_localizations(_truth_path(root))
        n = stack.frames.shape[0]
        if len(truth) and (truth.frame.min() < 1 or truth.frame.max() > n):
            raise LoczooError(f"ground truth frames {truth.frame.min()}-{truth.frame.max()} do "
                              f"not fit the {n} frames of {root}")
        z = truth.z if truth.z is not None else np.zeros(len(truth))
        photons = truth.photons if truth.photons is not None else np.full(len(truth), np.nan)
        for index in range(n):
            rows = truth.frame == index + 1
            image = np.asarray(stack.frames[index])
            if image.min() < 0 or image.max() > 65535:
                raise LoczooError(f"frame {index + 1} of {root} has values outside 0-65535")
            yield index, {
                "image": np.round(image).astype(np.uint16), "frame": index + 1,
                "emitters": {"x": truth.x[rows].astype(np.float32),
                             "y": truth.y[rows].astype(np.float32),
                             "z": z[rows].astype(np.float32),
                             "photons": photons[rows].astype(np.float32)},
            }
