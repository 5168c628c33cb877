"""One camera interface for every tool: ``--camera`` items -> ``CameraConfig``, and a camera
in one line of words.

An item is a named camera or ``KEY=VALUE``::

    --camera scmos --camera baseline_adu=500            # a named camera, then changes
    --camera em_gain=none --camera photons_per_adu=1    # changes to the model's camera

Named cameras (a name must come first; it replaces the camera it starts from):

- ``scmos``: the "1 photon per ADU" sCMOS that simulated data sets and many converted stacks
  use: QE 1, no EM gain, read noise 1.5 e- rms, 1 e-/ADU, baseline 100 ADU. Counts above the
  baseline are detected photons. (``CameraConfig.scmos()`` is a data-sheet sCMOS instead, QE 0.8
  and 0.46 e-/ADU; give a real camera's numbers as fields.)
- ``emccd``: ``CameraConfig.emccd()``, EM gain 100, QE 0.9, read noise 60 e-, 12 e-/ADU.
- ``smlm2016``: ``CameraConfig.smlm2016()``, the SMLM 2016 challenge EMCCD (EM gain 300,
  45 e-/ADU, baseline 100 ADU).

Fields: those of ``CameraConfig`` (qe, em_gain, read_noise_e, e_per_adu, baseline_adu,
saturation_adu, quantize, spurious_charge_e; ``em_gain=none`` or ``null``: no EM gain) and
``photons_per_adu=P``, which sets the ADU conversion directly: ``e_per_adu = P x (em_gain or 1)
x qe`` with the em_gain and qe the camera ends up with. ``em_gain=none`` on an EMCCD also sets
its read noise and spurious charge to the ``scmos`` camera's (1.5 e-, 0) unless the list gives
them: an EMCCD's tens of electrons of read noise are hidden by its gain, an sCMOS has none of
that.

The trap this module refuses: an EMCCD camera (say a model trained with the SMLM 2016 EMCCD)
given a new ADU conversion (``e_per_adu`` or ``photons_per_adu``) without ``em_gain`` in the same
list keeps its EM gain, so ``e_per_adu=1`` would read the stack at 1/300 photon per ADU. Say
``em_gain=none`` (an sCMOS or CCD stack) or ``em_gain=G``.

Nothing here imports TensorFlow until a camera is built: ``check_camera_item`` (a syntax check
for argparse) stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from loczoo.errors import LoczooError

if TYPE_CHECKING:
    from loczoo.smlm.estimate import CameraEstimate
    from loczoo.smlm.simulate import CameraConfig

NAMED_CAMERAS = ("scmos", "emccd", "smlm2016")
# CameraConfig's fields (a test checks this list against the dataclass).
FIELDS = ("qe", "em_gain", "read_noise_e", "e_per_adu", "baseline_adu", "saturation_adu",
          "quantize", "spurious_charge_e")
DERIVED = ("photons_per_adu",)
_NONE_WORDS = ("none", "null")
_CONVERSION = ("e_per_adu", "photons_per_adu")


def named_camera(name: str) -> CameraConfig:
    """The camera called ``name`` (one of ``NAMED_CAMERAS``, case-insensitive)."""
    from loczoo.smlm.simulate import CameraConfig

    key = name.strip().lower()
    if key == "scmos":
        return CameraConfig(qe=1.0, em_gain=None, read_noise_e=1.5, e_per_adu=1.0,
                            baseline_adu=100.0)
    if key == "emccd":
        return CameraConfig.emccd()
    if key == "smlm2016":
        return CameraConfig.smlm2016()
    raise LoczooError(f"unknown camera {name!r}; a --camera item is a named camera "
                      f"({', '.join(NAMED_CAMERAS)}) or KEY=VALUE with KEY one of "
                      f"{', '.join(FIELDS + DERIVED)}")


def _is_name(item: str) -> bool:
    return "=" not in item


def _parse_item(item: str, prefix: str = "") -> tuple[str, object]:
    """(key, value) of one ``KEY=VALUE`` item: the key known, the value of the field's kind
    (a finite number; ``none``/``null`` for em_gain; true/false for quantize)."""
    key, text = (part.strip() for part in item.split("=", 1))
    if key not in FIELDS + DERIVED:
        raise LoczooError(f"no field {key!r} in --camera {item}; known: "
                          f"{', '.join(FIELDS + DERIVED)} (or a named camera first: "
                          f"{', '.join(NAMED_CAMERAS)})")
    name = f"{prefix}{key}"
    if key == "em_gain" and text.lower() in _NONE_WORDS:
        return key, None
    if key == "quantize":
        if text.lower() not in ("true", "false"):
            raise LoczooError(f"{name} must be true or false, got {text!r}")
        return key, text.lower() == "true"
    try:
        value = float(text)  # also "NaN", "inf", "Infinity": refused below, by name
    except ValueError:
        none = " or none" if key == "em_gain" else ""
        raise LoczooError(f"{name} must be a finite number{none}, got {text!r}") from None
    if not math.isfinite(value):
        raise LoczooError(f"{name} must be a finite number, got {value}")
    return key, value


def check_camera_item(item: str) -> str:
    """``item`` if it is a named camera or a ``KEY=VALUE`` of a known field with a value of the
    right kind, else LoczooError naming it. Ranges, and whatever depends on the camera the
    items change, are checked by ``parse_camera``. Imports no TensorFlow (an argparse type)."""
    item = item.strip()
    if _is_name(item):
        if item.lower() not in NAMED_CAMERAS:
            named_camera(item)  # raises, naming the known cameras and fields
        return item
    _parse_item(item)
    return item


def _ratio(value: float) -> str:
    """0.00333 -> '1/300', 6.67 -> '6.67'."""
    return f"1/{1 / value:.4g}" if 0 < value < 1 else f"{value:.4g}"


def parse_camera(items: Sequence[str], base: CameraConfig, *, what: str = "the model's camera",
                 prefix: str = "imaging.camera.") -> CameraConfig:
    """The camera that ``--camera`` ``items`` describe, starting from ``base`` (the model's or
    the configuration's camera; ``what`` names it in messages): a named camera first (it
    replaces ``base``), then ``KEY=VALUE`` changes (the last of a key wins; see the module
    docstring). Every problem is one LoczooError naming the item or the field (``prefix`` goes
    before field names, as in ``loczoo.config``): an unknown name or key, a value that is not a
    finite number or out of range, ``e_per_adu`` with ``photons_per_adu``, and a new ADU
    conversion for an EMCCD ``base`` without ``em_gain``."""
    from loczoo.config import from_dict, to_dict

    items = [str(item).strip() for item in items]
    camera, named = base, None
    if items and _is_name(items[0]):
        named = items[0]
        camera = named_camera(named)
        items = items[1:]
    values: dict[str, object] = {}
    given: dict[str, str] = {}  # key -> the item that gave it (for messages)
    for item in items:
        if _is_name(item):
            if item.lower() in NAMED_CAMERAS:
                raise LoczooError(f"--camera {item}: a named camera must come first (it "
                                  f"replaces the camera; the KEY=VALUE items then change it)")
            named_camera(item)  # raises: unknown name
        key, value = _parse_item(item, prefix)
        values[key], given[key] = value, item
    if "photons_per_adu" in values and "e_per_adu" in values:
        raise LoczooError(f"--camera {given['e_per_adu']} and --camera "
                          f"{given['photons_per_adu']} both set the ADU conversion; give one")
    photons_per_adu = values.pop("photons_per_adu", None)
    if photons_per_adu is not None and not photons_per_adu > 0:
        raise LoczooError(f"{prefix}photons_per_adu must be > 0, got {photons_per_adu:g}")
    if "em_gain" in values and values["em_gain"] is None and camera.em_gain is not None:
        # An EMCCD turned into an sCMOS: its read noise (tens of electrons, small behind the EM
        # gain) and clock-induced charge are not an sCMOS's; take the scmos camera's.
        scmos = named_camera("scmos")
        values = {"read_noise_e": scmos.read_noise_e,
                  "spurious_charge_e": scmos.spurious_charge_e, **values}
    camera = from_dict(type(camera), {**to_dict(camera), **values}, prefix)
    conversion = [key for key in _CONVERSION if key in given]
    if named is None and base.em_gain is not None and conversion and "em_gain" not in values:
        key = conversion[0]
        if key == "e_per_adu":
            meaning = (f"would mean {_ratio(camera.photons_per_adu)} photon per ADU "
                       f"(e_per_adu / EM gain / QE)")
        else:
            meaning = (f"would keep that EM gain (e_per_adu "
                       f"{photons_per_adu * camera.em_gain * camera.qe:.4g}, EMCCD noise)")
        raise LoczooError(
            f"{what} is an EMCCD (EM gain {base.em_gain:g}): --camera {given[key]} {meaning}; "
            f"add --camera em_gain=none for an sCMOS or CCD stack, or --camera em_gain=G for "
            f"an EMCCD of gain G")
    if photons_per_adu is not None:
        camera = replace(camera, e_per_adu=photons_per_adu * (camera.em_gain or 1.0) * camera.qe)
    if not camera.saturation_adu > camera.baseline_adu:
        raise LoczooError(f"{prefix}saturation_adu ({camera.saturation_adu:g}) must be above "
                          f"the baseline ({camera.baseline_adu:g} ADU)")
    return camera


def config_with_camera(config, items: Sequence[str], what: str = "the model's camera"):
    """``config`` with ``imaging.camera`` changed by ``--camera`` ``items`` (``parse_camera``);
    unchanged without items. A configuration without a simulated camera refuses them."""
    if not items:
        return config
    imaging = getattr(config, "imaging", None)
    if not hasattr(imaging, "camera"):
        raise LoczooError(f"--camera: a {type(config).__name__} has no camera "
                          f"(imaging.camera); drop --camera")
    camera = parse_camera(items, imaging.camera, what=what)
    return replace(config, imaging=replace(imaging, camera=camera))


def describe_camera(camera: CameraConfig) -> str:
    """One line: ``sCMOS (no EM gain), 1 photon/ADU above a baseline of 500 ADU, QE 1, read
    noise 1.5 e-`` or ``EMCCD gain 300, 0.15 photon/ADU above a baseline of 100 ADU, ...``.
    Photons are those reaching the camera (before QE)."""
    kind = ("sCMOS (no EM gain)" if camera.em_gain is None
            else f"EMCCD gain {camera.em_gain:g}")
    text = (f"{kind}, {camera.photons_per_adu:.3g} photon/ADU above a baseline of "
            f"{camera.baseline_adu:g} ADU, QE {camera.qe:g}, read noise {camera.read_noise_e:g} e-")
    if camera.spurious_charge_e:
        text += f", spurious charge {camera.spurious_charge_e:g} e-/px"
    return text


def known_camera_estimate(camera: CameraConfig) -> CameraEstimate:
    """``camera`` as the noise model of ``loczoo.smlm.estimate`` (``estimate_imaging(...,
    camera=...)``), so that a stack's photons and background are estimated in this camera's
    photons without measuring its gain and offset."""
    from loczoo.smlm.estimate import CameraEstimate

    estimate = CameraEstimate.known(camera.baseline_adu, 1.0 / camera.photons_per_adu,
                                    camera.excess_noise_factor,
                                    camera.read_noise_e / camera.e_per_adu)
    # Shot noise is Poisson in detected photons (qe x photons): the variance per ADU of mean
    # signal is excess_noise x ADU per detected photon.
    return replace(estimate, variance_slope=estimate.variance_slope / camera.qe)
