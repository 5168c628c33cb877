"""bioimage.io model packages (model format 0.5) that DeepImageJ, bioimageio.core and the
BioImage Model Zoo load.

The rdf.yaml is written here, not re-serialised by bioimageio.spec: DeepImageJ's reader (JDLL)
expects plain strings for ``documentation`` and ``covers``, which spec >= 0.5.11 writes as
file descriptions, so the file declares format 0.5.4 (spec upgrades it in memory when it
validates). The network weights are the frozen TF1-style SavedModel (it loads in DeepImageJ's
TF 2.10 and TF 2.7 engines), zipped with its files at the zip root as JDLL unzips it."""

from __future__ import annotations

import gc
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from loczoo.errors import LoczooError
from loczoo.export.common import (
    INPUT_ID,
    OUTPUT_ID,
    ExportSource,
    model_card,
    network_input,
    sample_raw_input,
)
from loczoo.presets import sha256_of
from loczoo.quiet import stderr_silenced

FORMAT_VERSION = "0.5.4"
SAVED_MODEL_ZIP = "tf_saved_model.zip"
KERAS_H5 = "keras_model.h5"
LICENSE_FILE = Path(__file__).resolve().parents[1] / "LICENSE"


def _file(path: Path) -> dict:
    return {"source": path.name, "sha256": sha256_of(path)}


def space_axes(source: ExportSource, output: bool) -> list[dict]:
    """y and x axes: the input's sizes ``min + n * step`` in nanometres of the camera pixel;
    the output's a reference to the input, ``upsampling`` times finer, with a halo of the
    tiling margin so that tiled outputs stitch like the whole image."""
    layout = source.layout
    unit = {}
    if layout.pixel_size_nm:
        # Nanometres: readers compute the output size as int(input size x input scale /
        # output scale) and need halo x output scale / input scale to be an integer, which
        # whole-nanometre pixels keep exact (0.1 / (0.1 / 7) is 6.999... in micrometres).
        pixel = layout.pixel_size_nm
        unit = {"unit": "nanometer", "scale": pixel / layout.upsampling if output else pixel}
    axes = []
    for axis in ("y", "x"):
        if output:
            size = {"tensor_id": INPUT_ID, "axis_id": axis}
            extra = {"halo": layout.tile_margin * layout.upsampling}
        elif layout.fixed_size is not None:
            size, extra = layout.fixed_size, {}
        else:
            size, extra = {"min": layout.min_size(), "step": layout.input_multiple}, {}
        axes.append({"type": "space", "id": axis, "size": size, **unit, **extra})
    return axes


def _keras_hdf5(source: ExportSource, path: Path, x, expected) -> bool:
    """Write the legacy HDF5 full model (uncompiled: what Keras 2 tools, ZeroCostDL4Mic and
    bioimageio.core read) if it can stand alone: only stock Keras layers (no loczoo import at
    load time) and a reload that reproduces the outputs (the legacy format loses, e.g.,
    LayerNormalization's axes)."""
    import keras

    model = source.model
    if not all(type(layer).__module__.startswith("keras.")
               for layer in model._flatten_layers(include_self=False)):
        return False
    with stderr_silenced():  # Keras warns that HDF5 is a legacy format: that is the point
        keras.saving.save_model(model, path)
        reloaded = keras.saving.load_model(path, compile=False)
    if np.abs(np.asarray(reloaded(x, training=False)) - expected).max() \
            <= 1e-5 * max(1.0, float(np.abs(expected).max())):
        return True
    path.unlink()
    return False


def write_cover(path: Path, raw: np.ndarray, output: np.ndarray, spatial: bool) -> None:
    """A 2:1 cover: the input (middle channel) beside the output (first channel), or the
    class probabilities as bars for a classifier."""
    from PIL import Image, ImageDraw

    def gray(a):
        lo, hi = np.percentile(a, [0.5, 99.5])
        return Image.fromarray(np.uint8(255 * np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1)))

    side = 256
    left = gray(raw[0, ..., raw.shape[-1] // 2]).resize((side, side), Image.NEAREST)
    cover = Image.new("L", (2 * side, side))
    cover.paste(left, (0, 0))
    if spatial:
        cover.paste(gray(output[0, ..., 0]).resize((side, side), Image.BILINEAR), (side, 0))
    else:
        draw = ImageDraw.Draw(cover)
        width = side / len(output[0])
        for i, p in enumerate(output[0]):
            top = min(side - 1, side * (1 - float(p)))
            draw.rectangle([side + i * width + 2, top, side + (i + 1) * width - 2, side - 1],
                           fill=255)
    cover.save(path, format="PNG")


def documentation(source: ExportSource, checks: dict) -> str:
    layout = source.layout
    meta = source.bundle.metadata
    text = [f"# {source.name} (loczoo)", "", source.entry.description + ".", "",
            "## Input and output", "",
            f"- input `{INPUT_ID}`: [batch, y, x, channel] with channels "
            f"{', '.join(layout.input_channels)}"
            + (f"; y and x multiples of {layout.input_multiple} px" if not layout.fixed_size
               else f"; {layout.fixed_size} x {layout.fixed_size} px"),
            f"- output `{OUTPUT_ID}`: channels {', '.join(layout.output_channels)}"
            + (f", on a grid {layout.upsampling} times finer than the input"
               if layout.spatial_output else ""),
            "- pre-processing: " + (", ".join(step["id"] for step in layout.preprocessing)
                                    or "none outside the network"), ""]
    if layout.spatial_output:
        text += ["The output is a map; molecule positions come from loczoo's post-processing "
                 "(`loczoo localize`), whose parameters are in `loczoo_config.json`. The "
                 "package also holds loczoo's own files (`loczoo_config.json`, "
                 "`loczoo_model.weights.h5`, `loczoo_metadata.json`).", ""]
    text += ["## Training", "", f"- data: {meta.get('data', 'not recorded')}",
             f"- command: `{meta.get('command', 'not recorded')}`", "",
             "## Validation", "",
             "`test_input.npy` is a simulated input and `test_output.npy` the Keras model's "
             "output on it (TensorFlow " + checks["tensorflow"] + "). At export the frozen "
             f"SavedModel reproduced it within {checks['saved_model_max_abs_diff']:.2g} "
             "(max abs difference)."]
    calibration = meta.get("calibration")
    if calibration:
        text.append(f"On simulated frames (`{calibration.get('command', '')}`): Jaccard "
                    f"{calibration['jaccard']:.3f} and lateral RMSE "
                    f"{calibration['rmse_lateral']:.1f} nm at the "
                    f"{calibration['tolerance_nm']:g} nm tolerance.")
    text += ["", "## Cite", ""] + [f"- {t} ({link})" for t, link in source.entry.citations]
    return "\n".join(text) + "\n"


def _cite(text: str, link: str) -> dict:
    if link.startswith("doi:"):
        return {"text": text, "doi": link.removeprefix("doi:")}
    return {"text": text, "url": link}


def rdf(source: ExportSource, files: dict, tensorflow_version: str) -> dict:
    layout = source.layout
    channel = {"type": "channel", "channel_names": list(layout.input_channels)}
    out_channel = {"type": "channel", "channel_names": list(layout.output_channels)}
    inputs = [{"id": INPUT_ID, "description": "camera frames in ADU" if layout.pixel_size_nm
               else "images", "axes": [{"type": "batch"}, *space_axes(source, False), channel],
               "test_tensor": files["test_input"], "data": {"type": "float32"},
               "preprocessing": list(layout.preprocessing)}]
    out_axes = [{"type": "batch"}, *(space_axes(source, True) if layout.spatial_output else []),
                out_channel]
    outputs = [{"id": OUTPUT_ID, "axes": out_axes, "test_tensor": files["test_output"],
                "data": {"type": "float32"}}]
    weights = {"tensorflow_saved_model_bundle": {**files["saved_model"],
                                                 "tensorflow_version": tensorflow_version}}
    if "keras" in files:
        weights["keras_hdf5"] = {**files["keras"], "tensorflow_version": tensorflow_version}
        weights["tensorflow_saved_model_bundle"]["parent"] = "keras_hdf5"
    preset = source.bundle.metadata
    name = f"loczoo {source.name.replace('/', ' ')}"
    return {
        "format_version": FORMAT_VERSION,
        "type": "model",
        "name": "".join(c if c.isalnum() or c in "_+- ()" else " " for c in name)[:64],
        "description": source.entry.description[:500],
        "authors": [{"name": "loczoo contributors"}],
        "cite": [_cite(t, link) for t, link in source.entry.citations],
        "license": "MIT",
        "documentation": files["documentation"]["source"],
        "covers": [files["cover"]["source"]],
        "tags": ["loczoo", source.entry.name.replace("_", "-"), "tensorflow", "deepimagej",
                 *(["smlm", "super-resolution", "localization"] if layout.spatial_output
                   else ["classification", "protein-localization"])],
        "inputs": inputs,
        "outputs": outputs,
        "weights": weights,
        "attachments": files["attachments"],
        "config": {
            # What DeepImageJ 3 (JDLL) reads: no macros (it no longer runs them), tiling
            # allowed for fully convolutional networks.
            "deepimagej": {"pyramidal_model": False, "allow_tiling": layout.spatial_output,
                           "model_keys": None,
                           "prediction": {"preprocess": [{"spec": None}],
                                          "postprocess": [{"spec": None}]}},
            "loczoo": {"entry": source.entry.name, "model": source.name,
                       "training_command": preset.get("command")},
        },
    }


def _zip_folder(folder: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())


def export_bioimageio(source: ExportSource, out: Path) -> None:
    """Write the package ``out`` (a .zip) and validate it with bioimageio.spec."""
    import tempfile

    import tensorflow as tf
    import yaml

    from loczoo.config import save_json
    from loczoo.export.saved_model import run_saved_model, write_frozen

    layout = source.layout
    size = (layout.min_size(),) * 2
    raw = sample_raw_input(source, size)
    x = network_input(source, raw)
    expected = np.asarray(source.model(x, training=False), np.float32)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        pkg = work / "package"
        pkg.mkdir()
        write_frozen(source, work / "frozen")
        _zip_folder(work / "frozen", pkg / SAVED_MODEL_ZIP)
        # The frozen model runs from the raw input through the package's own pre-processing,
        # so check it on the network input the entry makes.
        diff = float(np.abs(run_saved_model(work / "frozen", x) - expected).max())
        np.save(pkg / "test_input.npy", raw.astype(np.float32))
        np.save(pkg / "test_output.npy", expected)
        write_cover(pkg / "cover.png", raw, expected, layout.spatial_output)
        checks = {"tensorflow": tf.__version__, "saved_model_max_abs_diff": diff}
        (pkg / "README.md").write_text(documentation(source, checks))
        card = model_card(source, "bioimageio", {"saved model max abs diff": f"{diff:.2g}"})
        (pkg / "model_card.md").write_text(card)
        save_json(source.bundle.config, pkg / "loczoo_config.json")
        source.model.save_weights(pkg / "loczoo_model.weights.h5")
        (pkg / "loczoo_metadata.json").write_text(json.dumps(source.bundle.metadata, indent=2))
        attached = ["model_card.md", "loczoo_config.json", "loczoo_model.weights.h5",
                    "loczoo_metadata.json"]
        if LICENSE_FILE.is_file():  # in a source checkout; the rdf names the SPDX id anyway
            (pkg / "LICENSE").write_text(LICENSE_FILE.read_text())
            attached.append("LICENSE")
        files = {"test_input": _file(pkg / "test_input.npy"),
                 "test_output": _file(pkg / "test_output.npy"),
                 "saved_model": _file(pkg / SAVED_MODEL_ZIP),
                 "documentation": _file(pkg / "README.md"), "cover": _file(pkg / "cover.png"),
                 "attachments": [_file(pkg / name) for name in attached]}
        if _keras_hdf5(source, pkg / KERAS_H5, x, expected):
            files["keras"] = _file(pkg / KERAS_H5)
        description = rdf(source, files, tf.__version__)
        (pkg / "rdf.yaml").write_text(yaml.safe_dump(description, sort_keys=False))
        _zip_folder(pkg, out)
    problems = validate(out)
    if problems:  # the caller's temporary file is removed, nothing reaches the output
        raise LoczooError(f"the bioimage.io package of {source.name} is invalid: {problems}")


def validate(package: Path) -> str:
    """'' if bioimageio.spec accepts ``package`` (hashes and files checked, offline), else
    its first error."""
    from bioimageio.spec import ValidationContext, load_description

    # bioimageio.spec leaves the package's zip file open: a ResourceWarning when collected.
    with ValidationContext(perform_io_checks=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        summary = load_description(package).validation_summary
        gc.collect()
    if summary.status in ("valid-format", "passed"):
        return ""
    errors = [f"{'.'.join(map(str, e.loc))}: {e.msg}" for d in summary.details
              for e in d.errors]
    return "; ".join(errors[:3]) or summary.status
