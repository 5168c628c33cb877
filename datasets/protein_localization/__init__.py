"""tensorflow-datasets builder ``protein_localization`` (2D HeLa, CHO, LOCATE, DeepYeast) from
a manual download."""

from loczoo.datasets.protein_localization.protein_localization_dataset_builder import (
    CONFIGS,
    Builder,
    ProteinConfig,
)

CONFIGS_BY_NAME = {c.name: c for c in CONFIGS}

__all__ = ["Builder", "CONFIGS_BY_NAME", "ProteinConfig"]
