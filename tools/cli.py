"""The ``loczoo`` console script: one subcommand per tool module in ``loczoo.tools``.

Tool modules are imported only for the chosen subcommand, and none imports TensorFlow at module
level, so ``loczoo --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from loczoo.tools.common import ToolParser, run_tool

# subcommand -> (module in loczoo.tools, one-line help)
SUBCOMMANDS = {
    "list": ("list", "list zoo entries, their pretrained presets, sizes and whether cached"),
    "simulate": ("simulate", "simulate an SMLM stack (TIFF) and its ground truth (CSV)"),
    "train": ("train", "train a zoo entry and write a run folder"),
    "finetune": ("finetune", "fine-tune a preset or run folder on your stack (with ground truth, "
                             "or the simulator set to its estimated imaging conditions)"),
    "calibrate": ("calibrate", "choose a localization model's detection threshold on "
                               "simulated frames"),
    "calibrate-psf": ("calibrate_psf", "fit an astigmatic PSF model (widths against z) to a "
                                       "bead z-stack, write psf.json"),
    "localize": ("localize", "localize molecules in a TIFF stack, write a CSV (and an image)"),
    "evaluate": ("evaluate", "compare localizations with ground truth (SMLM challenge metrics)"),
    "render": ("render", "render localizations to a super-resolved TIFF or PNG image"),
    "drift": ("drift", "correct the stage drift of a localization table (no fiducials; x, y "
                       "and z), write the trace"),
    "filter": ("filter", "keep the localizations that satisfy an expression over the table's "
                         "columns"),
    "simulate-cells": ("simulate_cells", "simulate labelled images of single cells (synthetic "
                                         "protein patterns), one folder per class"),
    "export": ("export", "export a model: SavedModel, TFLite, bioimage.io package or "
                         "ZeroCostDL4Mic folder"),
    "mirror": ("mirror", "copy the verified preset weights into a download-mirror folder"),
    "make-preset": ("make_preset", "turn a trained run folder into a preset (float16 weights, "
                                   "registry declaration)"),
    "classify": ("classify", "classify protein localization in cell images, write a CSV of "
                             "class probabilities (and Grad-CAM maps)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = ToolParser(prog="loczoo",
                        description="Deep-learning localization microscopy model zoo.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        tool = sub.add_parser(name, help=help_text, description=help_text)
        tool.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    # Parse the subcommand name first; its module adds its own arguments only when chosen.
    try:
        known, _ = parser.parse_known_args(argv[:1] or ["--help"])
    except SystemExit as done:
        return int(done.code or 0)
    module = importlib.import_module(f"loczoo.tools.{known._module}")
    tool_parser = ToolParser(prog=f"loczoo {known.command}",
                             description=SUBCOMMANDS[known.command][1])
    module.add_arguments(tool_parser)
    try:
        args = tool_parser.parse_args(argv[1:])
    except SystemExit as done:  # --help, or a usage error already printed as one line
        return int(done.code or 0)
    args.command_line = shlex.join(["loczoo", *argv])
    return run_tool(module.run, args)


if __name__ == "__main__":
    sys.exit(main())
