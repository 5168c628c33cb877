"""DSIR weights trained by the loczoo project."""

from loczoo.presets import Preset

CITATION = ("Duarte A. DSIR: Deep-Learning Super-Resolution Image Reconstruction, convolutional "
            "auto-encoder for SMLM (2018), "
            "github.com/leaxsd/Deep-Learning-Super-Resolution-Image-Reconstruction-DSIR")

PRESETS: dict[str, Preset] = {}
DEFAULT_PRESET = None
