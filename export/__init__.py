"""Exports of zoo models where users deploy them (``loczoo export``): SavedModel (native and
frozen), TFLite, bioimage.io packages with DeepImageJ settings, and ZeroCostDL4Mic model
folders. Everything here reads the entry contract (``ZooEntry``, ``TensorLayout``) only."""

from __future__ import annotations

from pathlib import Path

from loczoo.errors import LoczooError

# format -> (what it writes, the file suffix the output must have; "" for a folder)
FORMATS = {
    "savedmodel": ("a folder with native/ and frozen/ SavedModels and model_card.md", ""),
    "tflite": ("a .tflite model for one input size (larger frames are tiled), and a "
               "model card beside it", ".tflite"),
    "bioimageio": ("a bioimage.io model package (.zip) with DeepImageJ settings", ".zip"),
    "zerocost": ("a ZeroCostDL4Mic Deep-STORM model folder (best.weights.keras, "
                 "model_metadata.mat) and model_card.md", ""),
}


def export_model(model: str, export_format: str, out: str | Path, *,
                 size: tuple[int, int] | None = None, overwrite: bool = False) -> Path:
    """Export ``model`` (entry, entry/preset or run folder) as ``export_format`` to ``out``.
    Everything is written under a temporary name beside ``out`` and renamed at the end."""
    from loczoo.export.common import load_source, model_card
    from loczoo.outputs import atomic_folder, atomic_path, prepare_folder_output, prepare_output

    if export_format not in FORMATS:
        raise LoczooError(f"unknown export format {export_format!r}; formats: "
                          f"{', '.join(FORMATS)}")
    suffix = FORMATS[export_format][1]
    if suffix and Path(out).suffix.lower() != suffix:
        raise LoczooError(f"--out for {export_format} must end in {suffix}, got {out}")
    out = Path(out)
    inputs = [model]
    if suffix:
        prepare_output(out, overwrite, inputs=inputs)
    else:
        prepare_folder_output(out, overwrite, inputs=inputs)
    if export_format == "tflite":  # the model card beside it is checked before anything too
        prepare_output(out.with_suffix(".md"), overwrite, inputs=inputs)
    source = load_source(model)
    if export_format == "tflite":
        from loczoo.export.tflite import DEFAULT_SIZE, export_tflite

        with atomic_path(out) as tmp:
            details = export_tflite(source, tmp, size or DEFAULT_SIZE)
        with atomic_path(out.with_suffix(".md")) as tmp:
            tmp.write_text(model_card(source, export_format, details))
    elif export_format == "bioimageio":
        from loczoo.export.bioimageio import export_bioimageio

        with atomic_path(out) as tmp:
            export_bioimageio(source, tmp)
    else:
        with atomic_folder(out, kind=f"{export_format} export") as tmp:
            if export_format == "savedmodel":
                from loczoo.export.saved_model import export_saved_model

                export_saved_model(source, tmp, model_card(source, export_format, {}))
            else:
                from loczoo.export.zerocost import export_zerocost

                export_zerocost(source, tmp)
    return out
