"""loczoo export MODEL --format savedmodel|tflite|bioimageio|zerocost --out PATH: export a zoo
model (entry, ENTRY/PRESET or run folder) where users deploy it. Every export carries a model
card; outputs are written under a temporary name and renamed."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import import_tensorflow_quietly, number, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="entry name, ENTRY/PRESET or run folder")
    parser.add_argument("--format", required=True, metavar="FORMAT",
                        help="savedmodel, tflite, bioimageio or zerocost")
    parser.add_argument("--out", required=True,
                        help="output: a folder (savedmodel, zerocost), a .tflite file or a "
                             ".zip package (bioimageio)")
    parser.add_argument("--size", type=number(int, min=8, max=4096), nargs=2, metavar=("H", "W"),
                        help="tflite: the fixed input size in camera pixels (default 64 64; "
                             "larger frames are tiled)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out (and the model card beside a .tflite) if loczoo "
                             "wrote it")


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from loczoo.errors import LoczooError
    from loczoo.export import FORMATS, export_model

    if args.size is not None and args.format != "tflite":
        raise LoczooError("--size is for --format tflite (the other exports take any size)")
    out = export_model(args.model, args.format, args.out,
                       size=tuple(args.size) if args.size else None, overwrite=args.overwrite)
    print(f"{args.format} export of {args.model}: {out} ({FORMATS[args.format][0]})")
    return 0


def main(argv=None) -> int:
    return standalone("export", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
