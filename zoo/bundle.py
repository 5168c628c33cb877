"""A ready-to-run model: entry + config + weights, loaded from a preset or a run folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from loczoo import runfolder
from loczoo.config import load_json, with_overrides
from loczoo.errors import LoczooError
from loczoo.presets import MODEL_CARD, download_progress
from loczoo.registry import KNOWN_ENTRIES, ZooEntry, get_entry
from loczoo.smlm.localizations import Localizations


@dataclass
class ModelBundle:
    entry: ZooEntry
    config: object
    model: object
    metadata: dict
    source: str
    weights_file: Path | None = None  # where the weights were loaded from (None: built here)
    model_card: str = ""  # the preset's (or run folder's) MODEL_CARD.md, if it has one

    def __post_init__(self):
        import tensorflow as tf

        forward = (self.entry.make_forward(self.model, self.config)
                   if self.entry.make_forward else lambda x: self.model(x, training=False))
        # One trace per input shape: relaxed (None) spatial sizes break layers such as
        # UpSampling2D(bilinear) that need them.
        self._forward = tf.function(forward)

    def predict_batches(self, frames, batch_size: int = 4):
        """(first frame index, raw outputs) per batch of ``batch_size`` frames of a stack
        [N, H, W] in ADU. Frames are edge-padded to the input multiple (outputs keep the
        padding; post-processing drops peaks found there), and entries that look at
        neighbouring frames get them from the stack."""
        n, height, width = frames.shape
        multiple = self.config.input_multiple
        pad_h, pad_w = -height % multiple, -width % multiple
        context = self.entry.frame_context
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            lo, hi = max(0, start - context), min(n, stop + context)
            chunk = np.asarray(frames[lo:hi], dtype=np.float32)
            if pad_h or pad_w:
                chunk = np.pad(chunk, ((0, 0), (0, pad_h), (0, pad_w)), mode="edge")
            inputs = self.entry.preprocess(chunk, self.config)[start - lo:stop - lo]
            yield start, np.asarray(self._forward(inputs))

    def localize(self, frames, *, pixel_size_nm: float, batch_size: int = 4,
                 progress: Callable[[int, int], None] | None = None) -> Localizations:
        """Localizations (frames numbered from 1) for a stack [N, H, W] in ADU."""
        n, height, width = frames.shape
        tables = []
        for start, outputs in self.predict_batches(frames, batch_size):
            locs = self.entry.postprocess(outputs, self.config, pixel_size_nm=pixel_size_nm,
                                          height=height, width=width)
            locs.frame += start
            tables.append(locs)
            if progress is not None:
                progress(min(start + batch_size, n), n)
        return Localizations.concatenate(tables)

    def domain_notes(self, frames) -> list[str]:
        """Warnings when a stack lies outside what a camera-reading model was trained on: its
        background (the median of frame medians, in photons by the model's camera) is
        compared with the simulator's training range."""
        if not self.entry.reads_camera or frames.size == 0:
            return []
        imaging = self.config.imaging
        camera = imaging.camera
        # At most 64 evenly spaced frames: a memory-mapped stack is not read or copied whole.
        step = max(1, len(frames) // 64)
        medians = [np.median(np.asarray(frame, np.float32)) for frame in frames[::step]]
        background = float(np.median(medians) - camera.baseline_adu) * camera.photons_per_adu
        low, high = imaging.background_photons
        high *= 1.0 + imaging.background_field_fraction
        if low / 2 <= background <= 2 * high:
            return []
        return [f"the stack's background is about {background:.0f} photons/pixel by the model's "
                f"camera (baseline {camera.baseline_adu:g} ADU, {camera.photons_per_adu:.4g} "
                f"photons/ADU), outside its training range {low:g}-{high:g}: results are "
                f"unreliable; give the stack's camera with --camera, or fine-tune for these "
                f"conditions"]

    def with_camera(self, overrides: list[str]) -> ModelBundle:
        """This model for frames from another camera: ``["baseline_adu=500", "e_per_adu=1",
        ...]`` change the training camera (``config.imaging.camera``). Entries that turn ADU
        into photons inside the network (``entry.reads_camera``) are rebuilt with it and keep
        their weights; the others normalise each frame, so they are returned unchanged."""
        camera = with_overrides(self.config.imaging.camera, overrides)  # checks the keys
        if not overrides or not self.entry.reads_camera:
            return self
        config = replace(self.config, imaging=replace(self.config.imaging, camera=camera))
        model = self.entry.build_model(config)
        model.set_weights(self.model.get_weights())
        return ModelBundle(entry=self.entry, config=config, model=model, metadata=self.metadata,
                           source=f"{self.source}, camera {' '.join(overrides)}",
                           weights_file=self.weights_file, model_card=self.model_card)


@dataclass(frozen=True)
class ResolvedModel:
    """What a model name points to: its entry, configuration, verified weights file and
    training record."""

    entry: ZooEntry
    config: object
    weights: Path
    metadata: dict
    description: str
    model_card: str = ""


def resolve(name_or_path: str) -> ResolvedModel:
    """A run folder, ``entry`` (its default preset) or ``entry/preset``. A preset's weights come
    from the user cache, the package or a download mirror (``loczoo.presets``), verified."""
    path = Path(name_or_path)
    if path.is_dir():
        if not runfolder.is_run_folder(path):
            raise LoczooError(f"{path} is not a run folder (it needs {runfolder.CONFIG}, "
                              f"{runfolder.WEIGHTS} and {runfolder.METADATA})")
        metadata = runfolder.read_metadata(path)
        entry = get_entry(metadata.get("entry"))
        return ResolvedModel(entry, load_json(entry.config_cls, path / runfolder.CONFIG),
                             path / runfolder.WEIGHTS, metadata, f"run folder {path}",
                             _read_card(path / MODEL_CARD))
    entry_name, _, preset_name = name_or_path.partition("/")
    if entry_name not in KNOWN_ENTRIES:
        raise LoczooError(f"--model {name_or_path!r} is neither a run folder nor a preset; "
                          f"entries: {', '.join(KNOWN_ENTRIES)}")
    entry = get_entry(entry_name)
    preset_name = preset_name or entry.default_preset
    if preset_name not in entry.presets:
        raise LoczooError(f"entry {entry_name!r} has no preset {preset_name!r}; presets: "
                          f"{', '.join(entry.presets) or 'none'}")
    preset = entry.presets[preset_name]
    weights = preset.weights_path(download_progress(f"downloading {preset.id}"))
    return ResolvedModel(entry, preset.build_config(), weights, preset.metadata(),
                         f"preset {preset.id}", _read_card(preset.package_folder / MODEL_CARD))


def _read_card(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def load_bundle(name_or_path: str) -> ModelBundle:
    resolved = resolve(name_or_path)
    model = resolved.entry.build_model(resolved.config)
    try:
        model.load_weights(resolved.weights)
    except Exception as err:  # noqa: BLE001 - Keras raises many types for bad weight files
        raise LoczooError(f"cannot load weights {resolved.weights}: {err}") from None
    return ModelBundle(entry=resolved.entry, config=resolved.config, model=model,
                       metadata=resolved.metadata, source=resolved.description,
                       weights_file=resolved.weights, model_card=resolved.model_card)
