"""DECODE weights trained by the loczoo project."""

from loczoo.presets import Preset

CITATION = ("Speiser A., Mueller L.-R., Hoess P., Matti U., Obara C. J., Legant W. R., Kreshuk "
            "A., Macke J. H., Ries J., Turaga S. C. Deep learning enables fast and dense "
            "single-molecule localization with high accuracy. Nat Methods 18, 1082-1090 (2021)")

PRESETS: dict[str, Preset] = {}
DEFAULT_PRESET = None
