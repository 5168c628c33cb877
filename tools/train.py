"""loczoo train ENTRY --out RUN: train a zoo entry on simulated data (default) or on a TIFF stack
with a ground-truth CSV, and write a run folder (config.json, model.weights.h5, metadata.json)."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import import_tensorflow_quietly, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("entry", help="zoo entry name (see `loczoo list`)")
    parser.add_argument("--out", required=True, help="run folder to write")
    parser.add_argument("--config",
                        help="starting configuration: default (the paper's), tiny (tests) or a "
                             "variant the entry names (e.g. subpixel_dt: 2016); with --init the "
                             "parent's configuration")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set upsampling=4 (repeatable)")
    parser.add_argument("--data", default="sim",
                        help="'sim' (the simulator, default) or a TIFF stack / folder of TIFFs")
    parser.add_argument("--gt", help="ground-truth CSV for --data STACK")
    parser.add_argument("--pixel-size", type=float, help="pixel size (nm) of --data STACK")
    parser.add_argument("--steps-per-epoch", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--validation-steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", help="start from this preset or run folder: its weights, its "
                                       "configuration (plus --set) and its data constants")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")


def load_training_data(stack_path: str, gt_path: str | None, pixel_size_nm: float | None):
    from loczoo.errors import LoczooError
    from loczoo.smlm.io import read_localizations, read_stack
    from loczoo.smlm.trainingdata import TrainingData

    if gt_path is None:
        raise LoczooError("--data STACK needs --gt GROUND_TRUTH.csv")
    stack = read_stack(stack_path, pixel_size_nm)
    if stack.pixel_size_nm is None:
        raise LoczooError(f"{stack_path} has no pixel size in its metadata; pass --pixel-size")
    return TrainingData(frames=stack.frames, truth=read_localizations(gt_path),
                        pixel_size_nm=stack.pixel_size_nm)


def parent_config(entry, init: str, config_name: str | None):
    """The configuration of the preset or run folder that ``--init`` names: a continued or
    fine-tuned model must keep its parent's architecture and data constants."""
    from loczoo.bundle import resolve
    from loczoo.config import load_json
    from loczoo.errors import LoczooError
    from loczoo.runfolder import CONFIG

    if config_name is not None:
        raise LoczooError("--config and --init exclude each other: --init starts from the "
                          "parent's configuration (change it with --set)")
    parent_entry, folder, _ = resolve(init)
    if parent_entry.name != entry.name:
        raise LoczooError(f"--init {init} is a {parent_entry.name} model, not {entry.name}")
    return load_json(entry.config_cls, folder / CONFIG)


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from loczoo.config import named_config, with_overrides
    from loczoo.outputs import prepare_output
    from loczoo.registry import get_entry
    from loczoo.training import train

    prepare_output(args.out, args.overwrite)
    entry = get_entry(args.entry)
    if args.init is None:
        config = named_config(entry.config_cls, args.config or "default")
    else:
        config = parent_config(entry, args.init, args.config)
    config = with_overrides(config, args.set)
    source = None
    description = "loczoo simulator (config.imaging)"
    if args.data != "sim":
        source = load_training_data(args.data, args.gt, args.pixel_size)
        description = f"{args.data} with ground truth {args.gt}"
    folder = train(entry, config, args.out, source=source, steps_per_epoch=args.steps_per_epoch,
                   epochs=args.epochs, validation_steps=args.validation_steps, seed=args.seed,
                   init=args.init, overwrite=args.overwrite, quiet=args.quiet,
                   data_description=description,
                   command=args.command_line)
    print(f"run folder: {folder}")
    return 0


def main(argv=None) -> int:
    return standalone("train", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
