"""What every export shares: the model to export (from a preset or a run folder, through the
entry contract only), frozen graphs, sample inputs from the entry's simulator, and the model
card."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loczoo.bundle import ModelBundle, load_bundle
from loczoo.errors import LoczooError
from loczoo.layout import TensorLayout

INPUT_ID, OUTPUT_ID = "input", "output"  # tensor ids = signature keys (DeepImageJ looks them up)


@dataclass
class ExportSource:
    """A model ready to export: its bundle (entry, config, weights, metadata) and layout."""

    bundle: ModelBundle
    layout: TensorLayout
    name: str  # "entry/preset" or the run folder's name

    @property
    def entry(self):
        return self.bundle.entry

    @property
    def model(self):
        return self.bundle.model

    @property
    def slug(self) -> str:
        """A file-name-safe name, e.g. ``deep_storm-sim-dense-100nm``."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.name.replace("/", "-")).strip("-")

    def input_shape(self, size: tuple[int, int] | None = None, batch: int | None = None):
        """[batch, H, W, C] of the network input: a fixed size, or ``size``, or any."""
        channels = len(self.layout.input_channels)
        if self.layout.fixed_size is not None:
            return [batch, self.layout.fixed_size, self.layout.fixed_size, channels]
        height, width = size if size is not None else (None, None)
        return [batch, height, width, channels]

    def check_size(self, size: tuple[int, int]) -> None:
        """Refuse an input size the network cannot take, naming the rule."""
        layout = self.layout
        if layout.fixed_size is not None:
            if tuple(size) != (layout.fixed_size, layout.fixed_size):
                raise LoczooError(f"{self.name} takes {layout.fixed_size} x {layout.fixed_size} "
                                  f"inputs only, got {size[0]} x {size[1]}")
            return
        m = layout.input_multiple
        if min(size) < 1 or size[0] % m or size[1] % m:
            raise LoczooError(f"size {size[0]} x {size[1]}: {self.name} needs positive multiples "
                              f"of {m} px")
        if min(size) <= 2 * layout.tile_margin:
            raise LoczooError(f"size {size[0]} x {size[1]} is too small for {self.name}: tiles "
                              f"need more than twice the {layout.tile_margin} px margin")


def load_source(name_or_path: str) -> ExportSource:
    bundle = load_bundle(name_or_path)
    if bundle.entry.tensor_layout is None:
        raise LoczooError(f"entry {bundle.entry.name} does not describe its tensors "
                          f"(tensor_layout), so it cannot be exported")
    path = Path(name_or_path)
    name = path.name if path.is_dir() else bundle.source.removeprefix("preset ")
    return ExportSource(bundle=bundle, layout=bundle.entry.tensor_layout(bundle.config),
                        name=name)


def inference_function(model):
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False))


def frozen_function(model, shape):
    """The model as a concrete function with its weights folded into constants (no variables:
    the graph loads in old TensorFlow runtimes and converts to TFLite without resource ops)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    concrete = inference_function(model).get_concrete_function(
        tf.TensorSpec(shape, tf.float32, name=INPUT_ID))
    return convert_variables_to_constants_v2(concrete)


def sample_raw_input(source: ExportSource, size: tuple[int, int], seed: int = 1) -> np.ndarray:
    """Raw data the exported pipeline starts from, [1, H, W, C] float32, from the entry's own
    simulator (the contract's ``simulate_raw``): camera frames in ADU for localization entries
    (frames t-1, t, t+1 as channels for a 3-frame model), a cell image for classifiers."""
    layout, config, entry = source.layout, source.bundle.config, source.entry
    simulate_raw = entry.simulate_raw
    if simulate_raw is None:
        raise LoczooError(f"{entry.name} registers no simulate_raw: exports need sample input")
    if not layout.spatial_output:
        images = np.asarray(simulate_raw(config, 1, *size, seed=seed), np.float32)
        return images[..., :len(layout.input_channels)]
    frames = simulate_raw(config, 2 * entry.frame_context + 1, *size, seed=seed)
    return np.moveaxis(np.asarray(frames, np.float32), 0, -1)[None]


def network_input(source: ExportSource, raw: np.ndarray) -> np.ndarray:
    """The entry's own pre-processing of ``sample_raw_input`` data: what the network takes."""
    if not source.layout.spatial_output:
        return np.asarray(source.entry.preprocess(list(raw), source.bundle.config), np.float32)
    frames = np.moveaxis(raw[0], -1, 0)  # [frames, H, W]
    inputs = np.asarray(source.entry.preprocess(frames, source.bundle.config), np.float32)
    middle = source.entry.frame_context
    return inputs[middle:middle + 1]


def psf_line(record: dict) -> str:
    """The calibrated PSF a run was trained on (metadata.json ``psf``: file, sha256, content),
    in one line for a model card."""
    psf = record.get("content") if isinstance(record.get("content"), dict) else {}

    def nm(key):
        value = psf.get(key)
        return f"{value:g}" if isinstance(value, (int, float)) else "?"

    parts = [f"{record.get('file', 'psf.json')} (sha256 {str(record.get('sha256', '?'))[:12]})"]
    if psf:
        z = psf.get("z_range_nm") or ["?", "?"]
        parts.append(f"astigmatic Gaussian, in-focus sigma {nm('sigma0_x_nm')} / "
                     f"{nm('sigma0_y_nm')} nm, foci {nm('focus_x_nm')} / {nm('focus_y_nm')} nm, "
                     f"depth {nm('depth_nm')} nm, valid z {z[0]}..{z[1]} nm, "
                     f"{nm('pixel_size_nm')} nm pixels"
                     + (f", from {psf['source']}" if psf.get("source") else ""))
    return ", ".join(parts)


def model_card(source: ExportSource, export_format: str, details: dict) -> str:
    """A short Markdown card: entry, preset, training data and command, measured figures,
    versions, and what this export contains; then the preset's own model card, if any."""
    from loczoo.runfolder import versions

    meta = source.bundle.metadata
    layout = source.layout
    lines = [f"# {source.name}: {export_format} export", "",
             f"- entry: `{source.entry.name}`: {source.entry.description}",
             f"- model: {source.bundle.source}",
             f"- training data: {meta.get('data', 'not recorded')}",
             f"- training command: `{meta.get('command', 'not recorded')}`",
             f"- parameters: {meta.get('parameters', source.model.count_params())}"]
    calibration = meta.get("calibration")
    if calibration:
        lines.append(f"- calibration: {json.dumps(calibration)}")
    if meta.get("best_val_loss") is not None:
        lines.append(f"- best validation loss: {meta['best_val_loss']:.4g}")
    if isinstance(meta.get("psf"), dict):
        lines.append(f"- PSF: {psf_line(meta['psf'])}")
    lines += [f"- input: [batch, y, x, {len(layout.input_channels)}] "
              f"({', '.join(layout.input_channels)})",
              f"- output: {'[batch, y, x, ' if layout.spatial_output else '[batch, '}"
              f"{len(layout.output_channels)}] ({', '.join(layout.output_channels)})"]
    if layout.spatial_output:
        lines.append(f"- output grid: {layout.upsampling}x finer than the input; input sides "
                     f"multiples of {layout.input_multiple} px")
    if layout.pixel_size_nm:
        lines.append(f"- trained for {layout.pixel_size_nm:g} nm camera pixels")
    lines += [f"- {key}: {value}" for key, value in details.items()]
    lines += ["", "## Versions", ""]
    lines += [f"- exported with {name} {version}" for name, version in versions().items()]
    if "versions" in meta:
        lines += [f"- trained with {name} {version}" for name, version in meta["versions"].items()]
    lines += ["", "## Cite", ""] + [f"- {text} ({link})" for text, link in source.entry.citations]
    if source.bundle.model_card:  # the preset's own card: its measured figures and limitations
        card = source.bundle.model_card.replace("\n#", "\n##").removeprefix("# ")
        lines += ["", f"## {card.strip()}"]
    return "\n".join(lines) + "\n"
