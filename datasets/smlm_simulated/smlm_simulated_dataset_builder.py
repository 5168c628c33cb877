"""Fixed training / validation sets from loczoo's simulator, one BuilderConfig per imaging
condition the presets use. Deterministic: the same config gives the same frames on any machine
(stateless TensorFlow seeds). Nothing is downloaded.

Each example is a sequence of ``frames_per_example`` consecutive frames (independent frames
without blinking) with its emitter table: ``frames`` [T, S, S] uint16 ADU, ``emitters`` with
``frame`` (1-based within the example), ``x``, ``y``, ``z`` (nm; z 0 in 2D) and ``photons``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow_datasets as tfds

from loczoo.smlm.pipeline import SPLIT_SEED_OFFSET
from loczoo.smlm.simulate import (
    ImagingConfig,
    dense_2d_blinking_imaging,
    dense_2d_imaging,
    simulate_stack,
    smlm2016_3d_imaging,
)


@dataclasses.dataclass
class SimulatedConfig(tfds.core.BuilderConfig):
    """``imaging`` builds the ImagingConfig; sizes in frames and pixels."""

    imaging: Callable[[], ImagingConfig] = dense_2d_imaging
    size: int = 64
    frames_per_example: int = 16
    train_examples: int = 64
    validation_examples: int = 8
    seed: int = 0

    @property
    def pixel_size_nm(self) -> float:
        return self.imaging().pixel_size_nm


CONFIGS = [
    SimulatedConfig(name="dense_2d", imaging=dense_2d_imaging,
                    description="The 2D presets' conditions (dense_2d_imaging): 100 nm pixels, "
                                "PSF sigma 90-135 nm, 0.5-10 emitters/um^2, 800-6000 photons; "
                                "independent frames; 1024 + 128 frames of 64 x 64"),
    SimulatedConfig(name="dense_2d_blinking", imaging=dense_2d_blinking_imaging,
                    description="dense_2d with blinking (mean on-time 1 frame), DECODE's 2D "
                                "preset; sequences of 16 frames"),
    SimulatedConfig(name="astigmatic_3d", imaging=smlm2016_3d_imaging,
                    description="DECODE's 3D preset: astigmatic PSF, z -750..750 nm, SMLM "
                                "2016 EMCCD, blinking; sequences of 16 frames"),
    SimulatedConfig(name="tiny", size=16, frames_per_example=2, train_examples=2,
                    validation_examples=1, description="dense_2d at 16 x 16: for tests"),
]


class Builder(tfds.core.GeneratorBasedBuilder):
    """Simulated SMLM frames with ground truth."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = CONFIGS

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        column = tfds.features.Tensor(shape=(None,), dtype=np.float32)
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{c.description}. Pixel size {c.imaging().pixel_size_nm:g} nm.",
            features=tfds.features.FeaturesDict({
                "frames": tfds.features.Tensor(
                    shape=(c.frames_per_example, c.size, c.size), dtype=np.uint16,
                    encoding=tfds.features.Encoding.ZLIB),
                "emitters": tfds.features.FeaturesDict({
                    "frame": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                    "x": column, "y": column, "z": column, "photons": column}),
            }),
            supervised_keys=None,
            homepage="https://github.com/loczoo/loczoo",
        )

    def _split_generators(self, dl_manager):
        c = self.builder_config
        return {"train": self._generate_examples("train", c.train_examples),
                "validation": self._generate_examples("validation", c.validation_examples)}

    def _generate_examples(self, split: str, count: int):
        c = self.builder_config
        imaging = c.imaging()
        for index in range(count):
            # One seed per (config seed, split, example): splits never share frames.
            seed = (c.seed + SPLIT_SEED_OFFSET[split]) * 1_000_003 + index
            frames, truth = simulate_stack(imaging, c.frames_per_example, c.size, c.size,
                                           seed=seed, sequence_frames=c.frames_per_example)
            z = truth.z if truth.z is not None else np.zeros(len(truth))
            yield index, {
                "frames": np.round(frames).astype(np.uint16),
                "emitters": {"frame": truth.frame.astype(np.int32),
                             "x": truth.x.astype(np.float32), "y": truth.y.astype(np.float32),
                             "z": z.astype(np.float32),
                             "photons": truth.photons.astype(np.float32)},
            }
