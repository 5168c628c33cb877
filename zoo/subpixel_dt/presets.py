"""Sub-pixel distance-transform CNN weights trained by the loczoo project."""

from loczoo.presets import Preset

CITATION = ("Yee K., Hagen G., Ventura M. Localizing fluorescent proteins using super-resolution "
            "neural networks (2013 Bundled Tubes and 2016 SMLM challenge entries)")

PRESETS: dict[str, Preset] = {}
DEFAULT_PRESET = None
