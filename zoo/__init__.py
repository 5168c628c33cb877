"""loczoo: a Keras 3 / TensorFlow model zoo for deep-learning localization in fluorescence
microscopy.

    import loczoo
    loczoo.list_entries()                      # registered zoo entries
    bundle = loczoo.load_pretrained("deep_storm")
    locs = bundle.localize(frames, pixel_size_nm=100)

Importing ``loczoo`` does not import TensorFlow; entries are loaded on first use. When loczoo
imports TensorFlow, its C++ start-up notices are kept off the terminal (``loczoo.quiet``).
"""

from loczoo.errors import LoczooError
from loczoo.quiet import QuietTensorFlowImport
from loczoo.registry import get_entry, list_entries

QuietTensorFlowImport.install()

__version__ = "0.1.0"


def load_pretrained(name_or_path: str):
    """A ready model from a preset (``entry`` or ``entry/preset``) or a run folder."""
    from loczoo.bundle import load_bundle

    return load_bundle(name_or_path)


__all__ = ["LoczooError", "get_entry", "list_entries", "load_pretrained", "__version__"]
