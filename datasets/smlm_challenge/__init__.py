"""tensorflow-datasets builder ``smlm_challenge``: the EPFL SMLM challenge training sets from a
manual download."""

from loczoo.datasets.smlm_challenge.smlm_challenge_dataset_builder import (
    CONFIGS,
    Builder,
    ChallengeConfig,
)

CONFIGS_BY_NAME = {c.name: c for c in CONFIGS}
__all__ = ["Builder", "CONFIGS_BY_NAME", "ChallengeConfig"]
