"""Exports of zoo models where users deploy them (``loczoo export``): SavedModel (native and
frozen), TFLite, bioimage.io packages with DeepImageJ settings, and ZeroCostDL4Mic model
folders. Everything here reads the entry contract (``ZooEntry``, ``TensorLayout``) only."""

from __future__ import annotations

import os
import shutil
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


def check_output(out: Path, export_format: str, overwrite: bool) -> None:
    suffix = FORMATS[export_format][1]
    if suffix and out.suffix.lower() != suffix:
        raise LoczooError(f"--out for {export_format} must end in {suffix}, got {out}")
    if out.exists() and not overwrite:
        raise LoczooError(f"output {out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise LoczooError(f"output folder {out.parent} does not exist")


def export_model(model: str, export_format: str, out: str | Path, *,
                 size: tuple[int, int] | None = None, overwrite: bool = False) -> Path:
    """Export ``model`` (entry, entry/preset or run folder) as ``export_format`` to ``out``.
    Everything is written under a temporary name beside ``out`` and renamed at the end."""
    from loczoo.export.common import load_source, model_card

    if export_format not in FORMATS:
        raise LoczooError(f"unknown export format {export_format!r}; formats: "
                          f"{', '.join(FORMATS)}")
    out = Path(out)
    check_output(out, export_format, overwrite)
    source = load_source(model)
    if size is not None and source.layout.fixed_size is None:
        source.check_size(size)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if export_format == "tflite":
            from loczoo.export.tflite import DEFAULT_SIZE, export_tflite

            details = export_tflite(source, tmp, size or DEFAULT_SIZE)
            card_path = out.with_suffix(".md")
            card_tmp = card_path.with_name(f".{card_path.name}.tmp{os.getpid()}")
            card_tmp.write_text(model_card(source, export_format, details))
            os.replace(card_tmp, card_path)
        else:
            tmp.mkdir()
            if export_format == "savedmodel":
                from loczoo.export.saved_model import export_saved_model

                export_saved_model(source, tmp, model_card(source, export_format, {}))
            elif export_format == "bioimageio":
                from loczoo.export.bioimageio import export_bioimageio

                tmp.rmdir()
                export_bioimageio(source, tmp)
            else:
                from loczoo.export.zerocost import export_zerocost

                export_zerocost(source, tmp)
        if out.is_dir():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()
    return out
