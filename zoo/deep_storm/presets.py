"""Deep-STORM weights trained by the loczoo project (see README.md for the figures)."""

from loczoo.presets import Preset

PRESETS: dict[str, Preset] = {}
DEFAULT_PRESET = None
