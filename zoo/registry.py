"""The zoo registry: every entry registers one ``ZooEntry`` describing how to build, train,
run and post-process its model. Tools and exports use only this contract, never an entry's
internals.

The contract is typed: each callable field has a ``Protocol`` below that says how the runtime
calls it, and the config attributes the runtime reads are ``TrainableConfig``,
``LocalizationConfig`` and ``ClassificationConfig``. Leading data arguments are positional-only
(callers pass them by position, so an entry may name them as it likes: ``frames``, ``images``);
options are keyword-only. ``signature_mismatches`` checks an entry's function against its
Protocol (tests/test_contract.py runs it for every entry). Keras, TensorFlow and NumPy are
imported only for type checkers, so that ``import loczoo`` stays light.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from loczoo.errors import LoczooError

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf

    from loczoo.layout import TensorLayout
    from loczoo.presets import Preset
    from loczoo.smlm.localizations import Localizations
    from loczoo.smlm.simulate import ImagingConfig

# Entry folders under loczoo/, imported on first use so that ``import loczoo`` stays light.
KNOWN_ENTRIES = ("deep_storm", "deepcel0", "dsir", "subpixel_dt", "decode", "plcnn")

_REGISTRY: dict[str, "ZooEntry"] = {}


# --- What the runtime reads from configs ------------------------------------------------------
# Read-only properties: configs are frozen dataclasses, and a dataclass field or a property
# both satisfy them.


@runtime_checkable
class TrainableConfig(Protocol):
    """Every entry config: what training (``loczoo.training``, ``ZooEntry.optimizer``) reads.
    ``batch_size`` is the global batch of one step."""

    @property
    def batch_size(self) -> int: ...

    @property
    def learning_rate(self) -> float: ...


@runtime_checkable
class LocalizationConfig(TrainableConfig, Protocol):
    """Configs of localization entries: ``imaging`` describes the training data (camera, pixel
    size; ``ModelBundle`` and calibration read it), ``threshold`` is the detection threshold
    calibration tunes, frame sides must be multiples of ``input_multiple``, and the output
    grid is ``upsampling`` times finer than the camera's (1: the camera grid)."""

    @property
    def imaging(self) -> ImagingConfig: ...

    @property
    def threshold(self) -> float: ...

    @property
    def input_multiple(self) -> int: ...

    @property
    def upsampling(self) -> int: ...


@runtime_checkable
class ClassificationConfig(TrainableConfig, Protocol):
    """Configs of classification entries: images of ``channels`` channels are brought to
    ``input_size`` squares (training from class folders reads it), and the network gives one
    probability per name in ``class_names`` (``n_classes`` of them)."""

    @property
    def class_names(self) -> tuple[str, ...]: ...

    @property
    def channels(self) -> int: ...

    @property
    def input_size(self) -> int: ...

    @property
    def n_classes(self) -> int: ...


# The config Protocol of each task.
CONFIG_PROTOCOLS: dict[str, type] = {
    "localization": LocalizationConfig,
    "classification": ClassificationConfig,
}


# --- The callable fields ---------------------------------------------------------------------


class ModelBuilder(Protocol):
    """``build_model(config) -> keras.Model``, pure: no compile, no I/O."""

    def __call__(self, config: Any, /) -> keras.Model: ...


class LossFactory(Protocol):
    """``make_loss(config) -> keras.losses.Loss``: a registered, serializable loss."""

    def __call__(self, config: Any, /) -> keras.losses.Loss: ...


class DatasetFactory(Protocol):
    """``make_dataset(config, split, *, source=None, seed=0) -> tf.data.Dataset`` of (x, y)
    batches; ``split`` is "train" or "validation", ``source`` None means the simulator, else
    the entry's data (``loczoo.smlm.trainingdata.TrainingData`` for localization entries)."""

    def __call__(self, config: Any, split: str, /, *, source: Any = None,
                 seed: int = 0) -> tf.data.Dataset: ...


class ConfigPreparer(Protocol):
    """``prepare_config(config, source=None, seed=0, *, batches=...) -> config`` with the
    data-dependent fields filled in (normalisation constants, class names) before training;
    ``batches`` bounds the data it may read."""

    def __call__(self, config: Any, source: Any = None, seed: int = 0, /, *,
                 batches: int = 32) -> Any: ...


class Preprocessor(Protocol):
    """``preprocess(frames, config) -> model input batch``: camera frames [N, H, W] in ADU
    (localization) or images (classification)."""

    def __call__(self, frames: Any, config: Any, /) -> np.ndarray: ...


class Postprocessor(Protocol):
    """``postprocess(outputs, config, *, pixel_size_nm, height, width) -> Localizations``,
    frames numbered from 1 within the batch."""

    def __call__(self, outputs: Any, config: Any, /, *, pixel_size_nm: float, height: int,
                 width: int) -> Localizations: ...


class OptimizerFactory(Protocol):
    """``make_optimizer(config) -> keras optimizer``."""

    def __call__(self, config: Any, /) -> keras.optimizers.Optimizer: ...


class MetricsFactory(Protocol):
    """``make_metrics(config) -> keras metrics`` reported during training."""

    def __call__(self, config: Any, /) -> Sequence[keras.metrics.Metric]: ...


class ForwardFactory(Protocol):
    """``make_forward(model, config) -> function`` equal to the model on ``preprocess`` output
    but faster for whole stacks."""

    def __call__(self, model: keras.Model, config: Any, /) -> Callable[[Any], Any]: ...


class TargetDescriber(Protocol):
    """``describe_targets(targets, config, height, width) -> Localizations``: the ground truth
    in a batch of targets (frames numbered from 1)."""

    def __call__(self, targets: Any, config: Any, height: int, width: int, /
                 ) -> Localizations: ...


class LayoutFactory(Protocol):
    """``tensor_layout(config) -> loczoo.layout.TensorLayout``."""

    def __call__(self, config: Any, /) -> TensorLayout: ...


class RawSimulator(Protocol):
    """``simulate_raw(config, count, height, width, *, seed=0)``: raw data as ``preprocess``
    takes it, from the entry's simulator: ``count`` consecutive camera frames [count, H, W] in
    ADU (localization) or ``count`` images [count, H, W, C] (classification). Exports make
    their sample and test inputs with it."""

    def __call__(self, config: Any, count: int, height: int, width: int, /, *,
                 seed: int = 0) -> np.ndarray: ...


class Explainer(Protocol):
    """``explain(model, inputs, config) -> maps``: one explanation map per input (e.g. Grad-CAM
    [N, H, W] in [0, 1]) for network inputs as ``preprocess`` makes them."""

    def __call__(self, model: keras.Model, inputs: Any, config: Any, /) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class ZooEntry:
    """The contract between an entry and the rest of loczoo.

    config_cls: frozen dataclass with ``default()`` (paper settings) and ``tiny()`` (tests);
        its instances satisfy ``CONFIG_PROTOCOLS[task]``.
    build_model, make_loss, make_dataset, prepare_config, preprocess, postprocess: see their
        Protocols (``ModelBuilder`` ...). ``postprocess`` is None for classifiers (the output
        is the class probabilities).
    presets: name -> Preset; ``default_preset`` names the one used when only the entry is given.
    make_optimizer: None means Adam at ``config.learning_rate``.
    make_metrics: keras metrics reported during training (e.g. accuracy).
    frame_context: frames on each side of a frame that ``preprocess`` needs (0: frames are
        independent); callers give it those frames and keep the inputs of the middle ones.
    make_forward: None means the model itself.
    describe_targets: for entries whose targets are not maps on the output grid.
    reads_camera: the network turns ADU into photons with ``config.imaging.camera``, so data
        from another camera needs that camera (``ModelBundle.with_camera``); False for entries
        that normalise each frame.
    tensor_layout: what the network takes and gives, for exports (axes, channel names, tiling
        margin, pre-processing of the raw data).
    citations: (text, "doi:..." or URL) of the method's papers, for model cards and packages.
    explain: explanation maps of the network's decisions (PLCNN: Grad-CAM); None if the entry
        has none.
    simulate_raw: raw input data from the entry's simulator, for exports' sample and test
        inputs.
    """

    name: str
    task: Literal["localization", "classification"]
    description: str
    config_cls: type
    build_model: ModelBuilder
    make_loss: LossFactory
    make_dataset: DatasetFactory
    prepare_config: ConfigPreparer
    preprocess: Preprocessor
    postprocess: Postprocessor | None
    presets: Mapping[str, Preset] = field(default_factory=dict)
    default_preset: str | None = None
    make_optimizer: OptimizerFactory | None = None
    make_metrics: MetricsFactory | None = None
    frame_context: int = 0
    make_forward: ForwardFactory | None = None
    describe_targets: TargetDescriber | None = None
    reads_camera: bool = False
    tensor_layout: LayoutFactory | None = None
    citations: tuple[tuple[str, str], ...] = ()
    explain: Explainer | None = None
    simulate_raw: RawSimulator | None = None

    def optimizer(self, config: TrainableConfig):
        import keras

        if self.make_optimizer is not None:
            return self.make_optimizer(config)
        return keras.optimizers.Adam(config.learning_rate)


def callable_fields() -> dict[str, type]:
    """``ZooEntry`` field name -> the Protocol its value satisfies (read from the field's
    annotation, so a new callable field needs only its Protocol above)."""
    out = {}
    for f in fields(ZooEntry):
        name = str(f.type).removesuffix(" | None")
        protocol = globals().get(name)
        if isinstance(protocol, type) and "__call__" in vars(protocol):  # a Protocol above
            out[f.name] = protocol
    return out


def signature_mismatches(fn: Callable, protocol: type) -> list[str]:
    """How ``fn`` fails to accept the calls ``protocol.__call__`` describes (empty: it accepts
    them). Positional-only parameters of the Protocol need a positional parameter at the same
    place, whatever its name; keyword parameters need one of the same name that takes a
    keyword; a parameter with a default there needs one here; and ``fn`` may have more
    parameters only with defaults."""
    P = inspect.Parameter
    wanted = list(inspect.signature(protocol.__call__).parameters.values())[1:]  # no self
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [f"{fn!r} has no inspectable signature"]
    positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    var_positional = any(p.kind is P.VAR_POSITIONAL for p in params)
    var_keyword = any(p.kind is P.VAR_KEYWORD for p in params)
    by_name = {p.name: p for p in params}
    problems, bound, index = [], set(), 0
    for want in wanted:
        if want.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
            have = positional[index] if index < len(positional) else None
            index += 1
            if have is None:
                if not var_positional:
                    problems.append(f"takes no positional argument {index} ({want.name})")
                continue
            if want.kind is P.POSITIONAL_OR_KEYWORD and (
                    have.name != want.name or have.kind is not P.POSITIONAL_OR_KEYWORD):
                problems.append(f"positional argument {index} must be {want.name!r} and also "
                                f"accept a keyword, got {have}")
        elif want.kind is P.KEYWORD_ONLY:
            have = by_name.get(want.name)
            if have is None or have.kind not in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY) or (
                    have.name in bound):
                if not var_keyword:
                    problems.append(f"takes no keyword argument {want.name!r}")
                continue
        else:  # *args / **kwargs in a Protocol: not used by this contract
            continue
        bound.add(have.name)
        if want.default is not P.empty and have.default is P.empty:
            problems.append(f"{have.name!r} needs a default (callers may leave it out)")
    for p in params:
        if p.name not in bound and p.default is P.empty and p.kind not in (
                P.VAR_POSITIONAL, P.VAR_KEYWORD):
            problems.append(f"extra parameter {p.name!r} has no default (callers never pass it)")
    return problems


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
