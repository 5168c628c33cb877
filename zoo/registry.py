"""The zoo registry: every entry registers one ``ZooEntry`` describing how to build, train,
run and post-process its model. Tools and exports use only this contract, never an entry's
internals."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from loczoo.errors import LoczooError

# Entry folders under loczoo/, imported on first use so that ``import loczoo`` stays light.
KNOWN_ENTRIES = ("deep_storm", "deepcel0", "dsir", "subpixel_dt", "decode", "plcnn")

_REGISTRY: dict[str, "ZooEntry"] = {}


@dataclass(frozen=True, kw_only=True)
class ZooEntry:
    """The contract between an entry and the rest of loczoo.

    config_cls: frozen dataclass with ``default()`` (paper settings) and ``tiny()`` (tests).
    build_model(config) -> keras.Model, pure: no compile, no I/O.
    make_loss(config) -> keras.losses.Loss.
    make_dataset(config, split, *, source=None, seed=0) -> tf.data.Dataset of (x, y) batches;
        ``source`` None means the simulator, else a ``loczoo.smlm.io.TrainingData``.
    prepare_config(config, source, seed) -> config with data-dependent fields filled in
        (normalisation constants) before training.
    preprocess(frames [N, H, W] ADU, config) -> model input batch.
    postprocess(outputs, config, *, pixel_size_nm, height, width) -> Localizations (frames
        numbered from 1 within the batch).
    presets: name -> Preset; ``default_preset`` names the one used when only the entry is given.
    make_optimizer(config) -> keras optimizer; None means Adam at ``config.learning_rate``.
    make_metrics(config) -> list of keras metrics reported during training (e.g. accuracy).
    frame_context: frames on each side of a frame that ``preprocess`` needs (0: frames are
        independent); callers give it those frames and keep the inputs of the middle ones.
    make_forward(model, config) -> function equal to the model on ``preprocess`` output but
        faster for whole stacks; None means the model itself.
    describe_targets(targets, config, height, width) -> Localizations: the ground truth in a
        batch of targets, for entries whose targets are not maps on the output grid.
    tensor_layout(config) -> loczoo.layout.TensorLayout: what the network takes and gives, for
        exports (axes, channel names, tiling margin, pre-processing of the raw data).
    citations: (text, "doi:..." or URL) of the method's papers, for model cards and packages.
    reads_camera: the network turns ADU into photons with ``config.imaging.camera``, so data
        from another camera needs that camera (``ModelBundle.with_camera``); False for entries
        that normalise each frame.
    """

    name: str
    task: Literal["localization", "classification"]
    description: str
    config_cls: type
    build_model: Callable
    make_loss: Callable
    make_dataset: Callable
    prepare_config: Callable
    preprocess: Callable
    postprocess: Callable | None
    presets: Mapping[str, object] = field(default_factory=dict)
    default_preset: str | None = None
    make_optimizer: Callable | None = None
    make_metrics: Callable | None = None
    frame_context: int = 0
    make_forward: Callable | None = None
    describe_targets: Callable | None = None
    reads_camera: bool = False
    tensor_layout: Callable | None = None
    citations: tuple[tuple[str, str], ...] = ()

    def optimizer(self, config):
        import keras

        if self.make_optimizer is not None:
            return self.make_optimizer(config)
        return keras.optimizers.Adam(config.learning_rate)


def register(entry: ZooEntry) -> ZooEntry:
    if entry.name in _REGISTRY and _REGISTRY[entry.name] is not entry:
        raise ValueError(f"zoo entry {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def get_entry(name: str) -> ZooEntry:
    """The registered entry called ``name`` (imports its folder on first use)."""
    if name not in KNOWN_ENTRIES:
        raise LoczooError(f"unknown zoo entry {name!r}; known entries: {', '.join(KNOWN_ENTRIES)}")
    if name not in _REGISTRY:
        importlib.import_module(f"loczoo.{name}")
    return _REGISTRY[name]


def list_entries() -> list[ZooEntry]:
    return [get_entry(name) for name in KNOWN_ENTRIES]
