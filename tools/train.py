"""loczoo train ENTRY --out RUN: train a zoo entry on simulated data (default) or on a TIFF stack
with a ground-truth CSV, and write a run folder (config.json, model.weights.h5, metadata.json)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loczoo.distribute import STRATEGIES
from loczoo.tools.common import (
    add_camera_argument,
    add_schedule_arguments,
    import_tensorflow_quietly,
    number,
    standalone,
)


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
                        help="'sim' (the simulator, default); tfds:NAME/CONFIG (a "
                             "tensorflow-datasets set, e.g. tfds:smlm_challenge/"
                             "2013_bundled_tubes_hd or tfds:protein_localization/hela_2d); "
                             "localization: a TIFF stack or folder of TIFFs (with --gt); "
                             "classification: a folder with one subfolder of images per class")
    parser.add_argument("--tfds-dir", help="tensorflow-datasets data_dir for --data tfds:... "
                                           "(default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    parser.add_argument("--gt", help="ground-truth CSV for --data STACK")
    add_camera_argument(
        parser, "the simulator's camera (imaging.camera of the configuration), applied after "
                "--set: a named camera first (scmos, emccd, smlm2016), then KEY=VALUE changes "
                "(qe, em_gain (none: no EM gain), read_noise_e, e_per_adu, photons_per_adu, "
                "baseline_adu, saturation_adu, spurious_charge_e), e.g. --camera scmos --camera "
                "baseline_adu=500; models that read the camera (DECODE) also use it on --data "
                "STACK (repeatable)")
    add_psf_argument(parser)
    parser.add_argument("--folds", type=number(int, min=0, max=100), default=0,
                        help="classification: stratified k-fold cross-validation with this many "
                             "folds (one run folder per fold in --out, plus predictions, "
                             "accuracy and confusion matrix)")
    parser.add_argument("--pixel-size", type=number(float, above=0),
                        help="pixel size (nm) of --data STACK")
    add_schedule_arguments(parser, steps_per_epoch=400, epochs=100)
    parser.add_argument("--init", help="start from this preset or run folder: its weights, its "
                                       "configuration (plus --set) and its data constants")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it is a run folder loczoo wrote")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --out from its last epoch (repeat "
                             "its command; --epochs may change): the same result as an "
                             "uninterrupted run")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="default: one device; mirrored: all GPUs of this machine; "
                             "multiworker: several machines, each given TF_CONFIG (see "
                             "loczoo.distribute). The batch size is the global batch")
    parser.add_argument("--quiet", action="store_true")


def add_psf_argument(parser: argparse.ArgumentParser) -> None:
    """``--psf psf.json`` of ``train`` and ``finetune`` (``loczoo.smlm.psf.config_with_psf``)."""
    parser.add_argument("--psf", metavar="PSF.json",
                        help="a calibrated PSF (`loczoo calibrate-psf`): sets imaging."
                             "astigmatism, psf_sigma_nm and pixel_size_nm, and imaging."
                             "z_range_nm to the PSF's range (finetune --data: to the data's, "
                             "estimated with it); --set may change them; for 3D configurations "
                             "(e.g. decode --config 3d). The run folder records it in its "
                             "metadata (psf)")


def read_psf_argument(path: str | None):
    """(PsfModel, record) of ``--psf`` (None, None without it): the file checked field by field
    (``loczoo.smlm.psf.read_psf``); the record (file name, sha256, content) goes into the run
    folder's metadata.json as ``psf``."""
    if path is None:
        return None, None
    import hashlib
    import json

    from loczoo.smlm.psf import read_psf

    psf = read_psf(path)
    raw = Path(path).read_bytes()
    record = {"file": Path(path).name, "sha256": hashlib.sha256(raw).hexdigest(),
              "content": json.loads(raw.decode("utf-8"))}
    return psf, record


def check_psf_data(psf, pixel_size_nm: float | None, data: str) -> None:
    """The PSF's pixel size equals that of ``--data`` ``data`` (one line naming both)."""
    from loczoo.smlm.psf import check_psf_pixel_size

    if psf is not None:
        check_psf_pixel_size(psf, pixel_size_nm, f"--data {data}")


def training_inputs(args) -> list:
    """The files and folders a training command reads (never to be overwritten): ``--data``
    (unless the simulator or a tfds set), ``--gt`` and a run folder given as parent model."""
    from loczoo.datasets.loading import is_tfds_spec

    inputs = [args.gt, getattr(args, "init", None), getattr(args, "model", None)]
    if args.data and args.data != "sim" and not is_tfds_spec(args.data):
        inputs.append(args.data)
    return [path for path in inputs if path and Path(path).exists()]


def read_stack_with_pixel_size(stack_path: str, pixel_size_nm: float | None):
    """The stack at ``stack_path``; its pixel size from ``--pixel-size`` or its metadata, one
    of which must give it (training data does not borrow the model's)."""
    from loczoo.errors import LoczooError
    from loczoo.smlm.io import read_stack

    stack = read_stack(stack_path, pixel_size_nm)
    if stack.pixel_size_nm is None:
        raise LoczooError(f"{stack_path} has no pixel size in its metadata; pass --pixel-size")
    return stack


def load_training_data(stack_path: str, gt_path: str | None, pixel_size_nm: float | None):
    from loczoo.errors import LoczooError
    from loczoo.smlm.io import read_localizations
    from loczoo.smlm.trainingdata import TrainingData

    if gt_path is None:
        raise LoczooError("--data STACK needs --gt GROUND_TRUTH.csv")
    stack = read_stack_with_pixel_size(stack_path, pixel_size_nm)
    return TrainingData(frames=stack.frames, truth=read_localizations(gt_path),
                        pixel_size_nm=stack.pixel_size_nm)


def parent_config(entry, init: str, config_name: str | None):
    """The configuration of the preset or run folder that ``--init`` names: a continued or
    fine-tuned model must keep its parent's architecture and data constants."""
    from loczoo.bundle import resolve
    from loczoo.errors import LoczooError

    if config_name is not None:
        raise LoczooError("--config and --init exclude each other: --init starts from the "
                          "parent's configuration (change it with --set)")
    parent = resolve(init)
    if parent.entry.name != entry.name:
        raise LoczooError(f"--init {init} is a {parent.entry.name} model, not {entry.name}")
    return parent.config


def training_source(args, entry, config):
    """(source, description) for ``--data``: None for the simulator, else TrainingData
    (localization) or LabelledImages (classification)."""
    from loczoo.datasets.loading import (
        folder_images,
        is_tfds_spec,
        labelled_images,
        smlm_training_data,
    )
    from loczoo.errors import LoczooError

    if args.data == "sim":
        return None, "loczoo simulator"
    classify = entry.task == "classification"
    if is_tfds_spec(args.data):
        if classify:
            return labelled_images(args.data, config.input_size, args.tfds_dir), args.data
        return smlm_training_data(args.data, args.tfds_dir), args.data
    if classify:
        if args.gt:
            raise LoczooError("--gt is for localization data; classification data sets are "
                              "folders of class folders")
        return folder_images(args.data, config.input_size, args.quiet), f"class folders {args.data}"
    return (load_training_data(args.data, args.gt, args.pixel_size),
            f"{args.data} with ground truth {args.gt}")


def cross_validate_run(args, entry, config, source, description) -> int:
    from loczoo.crossval import cross_validate
    from loczoo.errors import LoczooError

    if entry.task != "classification":
        raise LoczooError("--folds is for classification entries")
    if source is None:
        raise LoczooError("--folds needs a data set (--data FOLDER or tfds:NAME/CONFIG), not "
                          "the simulator's endless stream")
    summary = cross_validate(entry, config, source, args.out, folds=args.folds,
                             overwrite=args.overwrite,
                             steps_per_epoch=args.steps_per_epoch, epochs=args.epochs,
                             seed=args.seed, quiet=args.quiet, data_description=description,
                             command=args.command_line)
    print(f"{args.folds}-fold cross-validation: accuracy {100 * summary['accuracy_mean']:.1f} "
          f"+/- {100 * summary['accuracy_std']:.1f} % (per fold: "
          f"{', '.join(f'{100 * a:.1f}' for a in summary['fold_accuracies'])})")
    print("| class | accuracy % |\n|---|---|")
    for name, acc in summary["per_class_accuracy"].items():
        print(f"| {name} | {100 * acc:.1f} |")
    print(f"results: {args.out} (predictions.csv, confusion.csv, confusion.png, summary.json)")
    return 0


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from loczoo.config import named_config, with_overrides
    from loczoo.distribute import make_strategy
    from loczoo.errors import LoczooError
    from loczoo.outputs import check_not_input, prepare_folder_output
    from loczoo.registry import get_entry
    from loczoo.smlm.cameras import config_with_camera, describe_camera
    from loczoo.smlm.psf import check_config_z_range, config_with_psf
    from loczoo.training import train

    if args.resume and args.overwrite:
        raise LoczooError("--resume and --overwrite exclude each other")
    if args.folds and (args.resume or args.strategy != "default"):
        raise LoczooError("--folds trains on one device: no --resume or --strategy")
    if args.folds and args.precision != "float32":
        raise LoczooError("--folds trains in float32: drop --precision")
    if args.folds == 1:
        raise LoczooError("--folds needs at least 2 folds (0: no cross-validation)")
    psf, psf_record = read_psf_argument(args.psf)
    if args.resume:
        check_not_input(args.out, training_inputs(args))
    else:
        prepare_folder_output(args.out, args.overwrite, inputs=training_inputs(args))
    # Before any TensorFlow op: a multi-worker strategy configures the runtime at start-up.
    strategy = make_strategy(args.strategy)
    entry = get_entry(args.entry)
    if args.init is None:
        config = named_config(entry.config_cls, args.config or "default")
    else:
        config = parent_config(entry, args.init, args.config)
    where = f"--psf {args.psf}"
    config = with_overrides(config_with_psf(config, psf, where), args.set)
    check_config_z_range(config, psf, where)
    config = config_with_camera(config, args.camera, "the configuration's camera")
    if args.camera:
        print(f"camera: {describe_camera(config.imaging.camera)}")
    source, description = training_source(args, entry, config)
    if source is not None and hasattr(source, "pixel_size_nm"):
        check_psf_data(psf, source.pixel_size_nm, args.data)
    if args.folds:
        return cross_validate_run(args, entry, config, source, description)
    folder = train(entry, config, args.out, source=source, steps_per_epoch=args.steps_per_epoch,
                   epochs=args.epochs, validation_steps=args.validation_steps, seed=args.seed,
                   init=args.init, overwrite=args.overwrite, resume=args.resume,
                   quiet=args.quiet, data_description=description, command=args.command_line,
                   strategy=strategy, extra_metadata={"psf": psf_record} if psf else None,
                   precision=args.precision)
    return report_run(folder, strategy)


def report_run(folder, strategy) -> int:
    """Say where the run folder is (or that another worker wrote it) and whether training was
    interrupted; the exit code: 130 after an interruption, else 0."""
    from loczoo.distribute import worker_info
    from loczoo.runfolder import read_metadata

    worker, _ = worker_info(strategy)
    if worker > 0:
        print(f"worker {worker} done; worker 0 wrote the run folder {folder}")
        return 0
    print(f"run folder: {folder}")
    meta = read_metadata(folder)
    if meta["interrupted"]:
        print(f"interrupted after {meta['epochs_done']} of {meta['epochs_requested']} epochs; "
              f"{folder} holds the best weights so far; continue with --resume", file=sys.stderr)
        return 130
    return 0


def main(argv=None) -> int:
    return standalone("train", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
