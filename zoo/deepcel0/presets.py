"""DeepCEL0 weights trained by the loczoo project (none yet; see README.md)."""

from loczoo.presets import Preset

PRESETS: dict[str, Preset] = {}
DEFAULT_PRESET = None
