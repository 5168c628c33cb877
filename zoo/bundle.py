"""A ready-to-run model: entry + config + weights, loaded from a preset or a run folder."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from loczoo import runfolder
from loczoo.config import load_json
from loczoo.errors import LoczooError
from loczoo.presets import download_progress
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
    camera_given: bool = False  # the camera was changed for the data (``with_camera``)
    # Average the outputs over flipped (and transposed) frames (``with_test_time_augmentation``).
    test_time_augmentation: bool = False

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
            outputs = np.asarray(self._forward(inputs))
            if self.test_time_augmentation:
                outputs = self._augmented(np.asarray(inputs), outputs)
            yield start, outputs

    @property
    def astigmatic(self) -> bool:
        """The model's PSF is astigmatic (3D): its x and y are not interchangeable."""
        from loczoo.smlm.psf import has_astigmatic_psf

        return has_astigmatic_psf(self.config)

    def augmentation_passes(self) -> int:
        """Network passes per frame with test-time augmentation (``loczoo.smlm.tta``)."""
        from loczoo.smlm.tta import symmetries

        return len(symmetries(self.astigmatic))

    def with_test_time_augmentation(self) -> ModelBundle:
        """This model with its outputs averaged over the flipped (and, unless astigmatic,
        transposed) frames (``loczoo.smlm.tta``): ``augmentation_passes()`` times the network
        time. Localization models only."""
        if self.entry.task != "localization" or self.entry.tensor_layout is None:
            raise LoczooError(f"test-time augmentation is for localization models, not "
                              f"{self.entry.name}")
        return replace(self, test_time_augmentation=True)

    def _augmented(self, inputs: np.ndarray, plain: np.ndarray) -> np.ndarray:
        from loczoo.smlm.tta import averaged

        channels = self.entry.tensor_layout(self.config).output_channels
        return averaged(lambda x: self._forward(x), inputs, channels, self.astigmatic, plain)

    def network_outputs(self, frames, batch_size: int = 4) -> list[tuple[int, np.ndarray]]:
        """``predict_batches`` kept in memory: (first frame index, raw outputs) per batch, to
        post-process several times (``postprocess_outputs``) after one forward pass."""
        return list(self.predict_batches(frames, batch_size))

    def postprocess_outputs(self, batches, *, pixel_size_nm: float, height: int, width: int,
                            threshold: float | None = None) -> Localizations:
        """Localizations (frames numbered from 1) from (first frame index, raw outputs) batches
        of frames of ``height`` x ``width`` px: ``network_outputs``, or ``predict_batches`` as
        it runs. ``threshold`` replaces the config's detection threshold."""
        config = (self.config if threshold is None else
                  replace(self.config, threshold=float(threshold)))
        tables = []
        for start, outputs in batches:
            locs = self.entry.postprocess(outputs, config, pixel_size_nm=pixel_size_nm,
                                          height=height, width=width)
            locs.frame += start
            tables.append(locs)
        return Localizations.concatenate(tables)

    def localize(self, frames, *, pixel_size_nm: float, batch_size: int = 4,
                 progress: Callable[[int, int], None] | None = None) -> Localizations:
        """Localizations (frames numbered from 1) for a stack [N, H, W] in ADU: the network
        outputs, post-processed batch by batch as they come (never all held at once)."""
        n, height, width = frames.shape

        def batches():
            for start, outputs in self.predict_batches(frames, batch_size):
                yield start, outputs
                if progress is not None:  # once the batch is post-processed
                    progress(min(start + batch_size, n), n)

        return self.postprocess_outputs(batches(), pixel_size_nm=pixel_size_nm, height=height,
                                        width=width)

    def classify(self, images, batch_size: int = 8,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Class probabilities [N, classes] (in the order of ``config.class_names``) for images
        of any size: a stack [N, H, W(, C)] or a list of [H, W(, C)] arrays, brought to the
        network's input by ``entry.preprocess``; ``progress(done, total)`` after each batch."""
        from loczoo.proteins.images import predict_probabilities

        self._require_classifier()
        inputs = self.entry.preprocess(images, self.config)
        return predict_probabilities(self.model, inputs, batch_size, progress)

    def explain(self, images, batch_size: int = 8) -> list[np.ndarray]:
        """One map per image (a stack [N, H, W(, C)] or a list of [H, W(, C)] arrays), at the
        image's own size [H, W] with values in 0..1: where the image drove its predicted class,
        by the entry's ``explain`` (PLCNN: Grad-CAM) on the network's input, mapped back onto
        the image (``loczoo.proteins.images.square_to_image``)."""
        from loczoo.proteins.images import square_to_image

        self._require_classifier()
        if self.entry.explain is None:
            raise LoczooError(f"the {self.entry.name} entry gives no explanation maps")
        maps = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            inputs = self.entry.preprocess(batch, self.config)
            squares = np.asarray(self.entry.explain(self.model, inputs, self.config))
            for image, square in zip(batch, squares):
                height, width = np.shape(image)[:2]
                maps.append(np.clip(square_to_image(square, height, width), 0.0, 1.0))
        return maps

    def _require_classifier(self) -> None:
        if self.entry.task != "classification":
            raise LoczooError(f"{self.source} is a {self.entry.task} model, not a classifier")

    def domain_notes(self, frames) -> list[str]:
        """Warnings when a stack lies outside what a camera-reading model was trained on: its
        background (the median of frame medians, in photons by the model's camera, or by the
        camera given with ``with_camera``) is compared with the simulator's training range."""
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
        which = "the given" if self.camera_given else "the model's"
        advice = ("fine-tune the model for these conditions (loczoo finetune --data STACK)"
                  if self.camera_given else
                  "give the stack's camera with --camera, or fine-tune for these conditions")
        return [f"the stack's background is about {background:.0f} photons/pixel by {which} "
                f"camera (baseline {camera.baseline_adu:g} ADU, {camera.photons_per_adu:.4g} "
                f"photons/ADU), outside its training range {low:g}-{high:g}: results are "
                f"unreliable; {advice}"]

    def domain_notes_after(self, locs: Localizations, stack_shape: tuple[int, ...],
                           pixel_size_nm: float) -> list[str]:
        """Warnings, after localization, when the localizations lie well outside (a factor 2)
        the model's training conditions (``config.imaging``): their density per um^2 and frame
        against ``density_per_um2``, and, for entries that measure photons, their median
        photons against the middle 90 % of the training photon distribution. ``stack_shape``
        is the stack's (frames, height, width); ``pixel_size_nm`` its camera pixel."""
        imaging = getattr(self.config, "imaging", None)
        density_range = getattr(imaging, "density_per_um2", None)
        n, height, width = (int(v) for v in tuple(stack_shape)[-3:])
        area = height * width * (pixel_size_nm / 1000.0) ** 2
        if density_range is None or n < 1 or not area > 0:
            return []
        notes = []
        density = len(locs) / n / area
        low, high = density_range
        if density > 2 * high:
            notes.append(f"about {density:.3g} localizations per um^2 and frame, over twice the "
                         f"model's training density {low:g}-{high:g}: overlapping emitters are "
                         f"missed or merged and false detections grow; results are unreliable "
                         f"(check --threshold, or fine-tune for denser data)")
        photons = locs.photons[np.isfinite(locs.photons)] if len(locs) else locs.photons
        training = _photon_range(imaging)
        if photons.size and training is not None:
            median = float(np.median(photons))
            p_low, p_high = training
            if median > 2 * p_high or median < p_low / 2:
                notes.append(f"the localizations' median is {median:.0f} photons, outside the "
                             f"model's training range {p_low:.0f}-{p_high:.0f} (middle 90 %): "
                             f"photons and uncertainties are unreliable; check the camera "
                             f"(--camera) or fine-tune for these conditions")
        return notes

    def with_camera(self, overrides: list[str]) -> ModelBundle:
        """This model for frames from another camera: ``--camera`` items
        (``loczoo.smlm.cameras.parse_camera``: a named camera first, e.g. ``scmos``, then
        ``KEY=VALUE`` such as ``em_gain=none``, ``photons_per_adu=1``, ``baseline_adu=500``)
        change the training camera (``config.imaging.camera``). Entries that turn ADU into
        photons inside the network (``entry.reads_camera``) are rebuilt with it and keep their
        weights; the others normalise each frame, so they are returned unchanged (the items
        are still checked)."""
        from loczoo.smlm.cameras import config_with_camera

        # Checks names, keys, values (finite, in range) and the EMCCD trap of the items.
        config = config_with_camera(self.config, overrides)
        if not overrides or not self.entry.reads_camera:
            return self
        model = self.entry.build_model(config)
        model.set_weights(self.model.get_weights())
        return ModelBundle(entry=self.entry, config=config, model=model, metadata=self.metadata,
                           source=f"{self.source}, camera {' '.join(overrides)}",
                           weights_file=self.weights_file, model_card=self.model_card,
                           camera_given=True)


def _photon_range(imaging) -> tuple[float, float] | None:
    """The 5th and 95th percentiles of the training photons per emitter (None if the imaging
    config has no photon distribution)."""
    kind = getattr(imaging, "photon_distribution", None)
    p = getattr(imaging, "photon_params", ())
    z = 1.6449  # the 95th percentile of a standard normal
    if kind == "uniform" and len(p) == 2:
        return p[0] + 0.05 * (p[1] - p[0]), p[1] - 0.05 * (p[1] - p[0])
    if kind == "normal" and len(p) == 2:
        return max(1.0, p[0] - z * p[1]), p[0] + z * p[1]
    if kind == "lognormal" and len(p) == 2:
        return p[0] * math.exp(-z * p[1]), p[0] * math.exp(z * p[1])
    if kind == "exponential" and len(p) == 1:
        return p[0] * -math.log(0.95), p[0] * math.log(20.0)
    return None


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
        if metadata["entry"] not in KNOWN_ENTRIES:
            raise LoczooError(f"{path / runfolder.METADATA}: unknown zoo entry "
                              f"{metadata['entry']!r}; known entries: {', '.join(KNOWN_ENTRIES)}")
        entry = get_entry(metadata["entry"])
        config = load_json(entry.config_cls, path / runfolder.CONFIG)
        check_weights_file(path / runfolder.WEIGHTS)
        return ResolvedModel(entry, config, path / runfolder.WEIGHTS, metadata,
                             f"run folder {path}", _read_card(runfolder.model_card_path(path)))
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
                         f"preset {preset.id}",
                         _read_card(runfolder.model_card_path(preset.package_folder)))


def _read_card(path: Path) -> str:
    try:
        return path.read_text() if path.is_file() else ""
    except (OSError, ValueError) as err:  # unreadable, or not text
        raise LoczooError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None


def _one_line(err: Exception, limit: int = 300) -> str:
    """An exception's message on one line (Keras's span paragraphs), at most ``limit`` chars."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_weights_file(path: Path) -> None:
    """Refuse a weights file that is not a complete HDF5 file (truncated, garbage, empty)
    before anything is built from it."""
    import h5py

    try:
        with h5py.File(path, "r"):
            pass
    except Exception as err:  # noqa: BLE001 - h5py raises OSError, ValueError, ...
        raise LoczooError(f"cannot read weights {path}: {_one_line(err)} (a truncated or "
                          f"damaged file?)") from None


def load_weights(model, path: str | Path) -> None:
    """``model.load_weights(path)`` with every failure (a damaged file, weights of another
    architecture or configuration) as one LoczooError that names the file."""
    import warnings

    # Keras warns about each part it skips before it fails: kept back, so that a failure is
    # one line; repeated after a load that succeeds.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except Exception as err:  # noqa: BLE001 - Keras raises many types for bad weight files
            raise LoczooError(f"cannot load weights {path} into the {model.name} model: "
                              f"{_one_line(err)}") from None
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno)


def load_bundle(name_or_path: str) -> ModelBundle:
    resolved = resolve(name_or_path)
    model = resolved.entry.build_model(resolved.config)
    load_weights(model, resolved.weights)
    return ModelBundle(entry=resolved.entry, config=resolved.config, model=model,
                       metadata=resolved.metadata, source=resolved.description,
                       weights_file=resolved.weights, model_card=resolved.model_card)
