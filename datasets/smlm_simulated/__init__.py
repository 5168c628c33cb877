"""tensorflow-datasets builder ``smlm_simulated``: fixed simulated SMLM sets."""

from loczoo.datasets.smlm_simulated.smlm_simulated_dataset_builder import (
    CONFIGS,
    Builder,
    SimulatedConfig,
)

CONFIGS_BY_NAME = {c.name: c for c in CONFIGS}
__all__ = ["Builder", "CONFIGS_BY_NAME", "SimulatedConfig"]
