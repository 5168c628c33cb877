"""loczoo finetune MODEL --out RUN: start from a preset or run folder and train on

(a) the user's TIFF stack with its ground-truth CSV (``--data STACK --gt TRUTH.csv``), or
(b) the simulator set to the user's imaging conditions (``--data STACK`` without ``--gt``),
    estimated from the raw stack: camera baseline and gain from the mean-variance relation
    (or the stack's known camera, ``--camera``, as ``loczoo localize`` takes it),
    PSF sigma from isolated spots, emitter density and photons from a first localization pass
    (with the Deep-STORM preset, which needs no camera). The estimates are printed
    (``--estimate-only`` stops there). ``--set`` changes any of them, or sets the simulator by
    hand when there is no stack.

The result is a run folder like ``loczoo train`` writes (checkpoint every epoch, ``--resume``,
Ctrl-C leaves a usable folder, curves and a TensorBoard log). With the simulator, the detection
threshold is then re-chosen on simulated frames of the estimated conditions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loczoo.tools.common import (
    add_camera_argument,
    add_schedule_arguments,
    import_tensorflow_quietly,
    number,
    standalone,
)

# Frames localized to estimate density, photons (and the camera): at least 200, more while
# they hold under FIRST_PASS_PIXELS pixels in all (small frames hold few isolated spots each).
FIRST_PASS_FRAMES = 200
FIRST_PASS_PIXELS = 1_000_000
FIRST_PASS_MODEL = "deep_storm"
# The fine-tuning schedule of entries with a staircase decay (DECODE): down to
# FINETUNE_FINAL_LR of the start rate in FINETUNE_DECAY_STEPS stairs over the run.
FINETUNE_DECAY_STEPS = 10
FINETUNE_FINAL_LR = 0.03


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from loczoo.tools.train import add_psf_argument

    parser.add_argument("model", help="preset (entry or entry/preset) or run folder to start "
                                      "from")
    parser.add_argument("--out", required=True, help="run folder to write")
    parser.add_argument("--data", help="the user's TIFF stack (or folder of TIFFs); without "
                                       "--gt the simulator is set to its imaging conditions; "
                                       "without --data the simulator keeps the model's "
                                       "conditions (plus --set)")
    parser.add_argument("--gt", help="ground-truth CSV for --data: train on the frames "
                                     "themselves")
    parser.add_argument("--pixel-size", type=number(float, above=0),
                        help="pixel size (nm) of --data, if its metadata has none")
    parser.add_argument("--emccd", action="store_true",
                        help="the stack comes from an EMCCD camera (gain estimation accounts "
                             "for its excess noise factor 2; with --camera, its em_gain says "
                             "it)")
    add_camera_argument(
        parser, "the stack's known camera, changing the model's (imaging.camera): a named "
                "camera first (scmos, emccd, smlm2016), then KEY=VALUE changes (qe, em_gain "
                "(none: no EM gain), read_noise_e, e_per_adu, photons_per_adu, baseline_adu, "
                "saturation_adu, spurious_charge_e), e.g. --camera scmos --camera "
                "baseline_adu=500; the simulator uses it, and the estimate from --data then "
                "measures no gain or offset (repeatable)")
    add_psf_argument(parser)
    parser.add_argument("--estimate-only", action="store_true",
                        help="print the imaging estimates and the simulator settings, do not "
                             "train")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override after the estimates, e.g. --set "
                             "imaging.psf_sigma_nm=[120,140] (repeatable)")
    parser.add_argument("--learning-rate", type=number(float, above=0, max=1),
                        help="the start rate; default: a tenth of the model's training rate "
                             "(with --psf, a new PSF: the model's own rate). DECODE's rate "
                             "falls in 10 stairs to 3 %% of the start by the end of the run")
    add_schedule_arguments(parser, steps_per_epoch=200, epochs=10)
    parser.add_argument("--strategy", default="default",
                        choices=("default", "mirrored", "multiworker"),
                        help="tf.distribute strategy (multiworker: TF_CONFIG on every worker)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --out")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it is a run folder loczoo wrote")
    parser.add_argument("--quiet", action="store_true")


def estimate_conditions(stack, emccd: bool, quiet: bool, camera=None, elliptical=False,
                        psf=None, psf_source: str = ""):
    """Imaging estimate of ``stack`` (a read TIFF stack), with a first localization pass for
    density, photons and, in crowded data, the camera. The pass uses FIRST_PASS_MODEL, whatever
    model is fine-tuned: it normalises each frame, so it needs no camera, and the model being
    fine-tuned may be the one that fails on these data. ``camera`` (a ``CameraConfig``, from
    ``--camera``): the stack's known camera; its gain and offset are then not measured.
    ``elliptical``: 3D data, spots fitted as elliptical Gaussians; ``psf`` (a ``PsfModel``,
    from ``--psf``, read from ``psf_source``): the known astigmatic PSF, not estimated."""
    import numpy as np

    from loczoo.bundle import load_bundle
    from loczoo.progress import ProgressPrinter
    from loczoo.smlm.estimate import estimate_imaging

    frames, pixel = stack.frames, stack.pixel_size_nm
    count = max(FIRST_PASS_FRAMES, FIRST_PASS_PIXELS // (frames.shape[1] * frames.shape[2]))
    step = max(1, len(frames) // count)
    chosen = np.asarray(frames[np.arange(0, len(frames), step)[:count]])
    first_pass = load_bundle(FIRST_PASS_MODEL)
    locs = first_pass.localize(chosen, pixel_size_nm=pixel, progress=ProgressPrinter(
        f"first localization pass ({first_pass.source})", quiet=quiet))
    known = None
    if camera is not None:
        from loczoo.smlm.cameras import known_camera_estimate

        known = known_camera_estimate(camera)
    return estimate_imaging(chosen, pixel, localizations=locs,
                            excess_noise_factor=2.0 if emccd else 1.0, camera=known,
                            elliptical=elliptical, psf=psf, psf_source=psf_source)


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from loczoo.distribute import make_strategy, worker_info
    from loczoo.errors import LoczooError
    from loczoo.outputs import check_not_input, prepare_folder_output
    from loczoo.runfolder import read_metadata
    from loczoo.tools.train import (
        check_psf_data,
        load_training_data,
        read_psf_argument,
        report_run,
        training_inputs,
    )
    from loczoo.training import train

    if args.resume and args.overwrite:
        raise LoczooError("--resume and --overwrite exclude each other")
    if args.gt and not args.data:
        raise LoczooError("--gt needs --data STACK")
    args.psf_model, psf_record = read_psf_argument(args.psf)
    if args.resume:
        check_not_input(args.out, training_inputs(args))
    else:
        prepare_folder_output(args.out, args.overwrite, inputs=training_inputs(args))
    # Before any TensorFlow op: a multi-worker strategy configures the runtime at start-up.
    strategy = make_strategy(args.strategy)
    source = None
    if args.data and args.gt:
        source = load_training_data(args.data, args.gt, args.pixel_size)
        check_psf_data(args.psf_model, source.pixel_size_nm, args.data)
        description = f"{args.data} with ground truth {args.gt}"
    elif args.data:
        description = f"loczoo simulator set to the imaging conditions of {args.data}"
    else:
        description = "loczoo simulator"
    entry, config = finetuning_config(args)
    if args.estimate_only:
        return 0
    folder = train(entry, config, args.out, source=source, steps_per_epoch=args.steps_per_epoch,
                   epochs=args.epochs, validation_steps=args.validation_steps, seed=args.seed,
                   init=args.model, overwrite=args.overwrite, quiet=args.quiet,
                   data_description=description, command=args.command_line,
                   resume=args.resume, strategy=strategy, precision=args.precision,
                   extra_metadata={"psf": psf_record} if psf_record else None)
    if worker_info(strategy)[0] == 0 and not read_metadata(folder)["interrupted"]:
        recalibrate(folder, source, args.seed)
    return report_run(folder, strategy)


def finetuning_config(args):
    """(entry, config) to fine-tune with: the parent's configuration with the estimated imaging
    conditions of ``--data`` (simulator mode), a lower learning rate and ``--set``. A resumed
    run keeps the configuration it started with."""
    from dataclasses import replace

    from loczoo.bundle import load_bundle
    from loczoo.config import with_overrides
    from loczoo.errors import LoczooError
    from loczoo.registry import get_entry
    from loczoo.runfolder import CONFIG, read_config, read_metadata
    from loczoo.smlm.cameras import config_with_camera, describe_camera
    from loczoo.smlm.psf import check_config_z_range, config_with_psf, has_astigmatic_psf
    from loczoo.tools.train import check_psf_data, read_stack_with_pixel_size

    psf = getattr(args, "psf_model", None)
    where = f"--psf {args.psf}"
    hint = "start from a 3D preset (e.g. decode/sim-3d-smlm2016) or run folder"

    if args.resume:
        if not (Path(args.out) / CONFIG).is_file():
            raise LoczooError(f"{args.out} holds no run to resume")
        entry = get_entry(read_metadata(args.out).get("entry"))
        print(f"resuming {args.out} with the settings it started with")
        config = read_config(args.out, entry.config_cls)
        if config_with_camera(config, args.camera, "the run's camera") != config:
            raise LoczooError(f"--camera differs from the camera {args.out} was started with "
                              f"({describe_camera(config.imaging.camera)}); a resumed run keeps "
                              f"its settings")
        with_psf = config_with_psf(config, psf, where, hint)
        if (with_psf.imaging.astigmatism, with_psf.imaging.pixel_size_nm) != (
                config.imaging.astigmatism, config.imaging.pixel_size_nm):
            raise LoczooError(f"--psf {args.psf} differs from the PSF {args.out} was started "
                              f"with; a resumed run keeps its settings")
        return entry, config
    parent = load_bundle(args.model)
    entry, config = parent.entry, parent.config
    if entry.task != "localization":
        raise LoczooError(f"loczoo finetune is for localization models; train {entry.name} "
                          f"on labelled images with `loczoo train {entry.name} --init "
                          f"{args.model} --data FOLDER`")
    # The PSF first: the estimate narrows its z range to the data's, --set may change it.
    config = config_with_psf(config, psf, where, hint)
    # The stack's camera replaces the estimated one.
    camera = config_with_camera(config, args.camera, "the model's camera").imaging.camera \
        if args.camera else None
    if camera is not None and args.emccd and camera.em_gain is None:
        raise LoczooError("--emccd says the stack is from an EMCCD, but --camera gives a camera "
                          "without EM gain; drop --emccd or add --camera em_gain=G")
    overrides = []
    if args.data and not args.gt:
        stack = read_stack_with_pixel_size(args.data, args.pixel_size)
        check_psf_data(psf, stack.pixel_size_nm, args.data)
        emccd = args.emccd if camera is None else camera.em_gain is not None
        # 3D models (astigmatic PSF) or a given PSF: astigmatic spots, fitted as ellipses.
        elliptical = has_astigmatic_psf(config)
        estimate = estimate_conditions(stack, emccd, args.quiet, camera, elliptical, psf,
                                       str(args.psf or ""))
        print(f"estimated from {args.data} ({stack.frames.shape[0]} frames of "
              f"{stack.frames.shape[1]} x {stack.frames.shape[2]} px, "
              f"{stack.pixel_size_nm:g} nm):")
        for line in estimate.summary_lines():
            print(f"  {line}")
        overrides = estimate.imaging_overrides()  # the pixel size included
        if camera is not None:  # the given camera, not its estimate-shaped copy
            overrides = [item for item in overrides if not item.startswith("imaging.camera.")]
    if hasattr(config, "learning_rate"):
        # A new PSF changes what every spot shape means in z: the parent's own rate. Otherwise
        # the conditions move a little: a tenth of it.
        start = args.learning_rate or config.learning_rate / (1 if psf is not None else 10)
        overrides.append(f"learning_rate={start:g}")
        if hasattr(config, "lr_decay_samples"):
            # The rate falls in FINETUNE_DECAY_STEPS stairs to FINETUNE_FINAL_LR of itself by
            # the end of the run: most of the gain of a short run comes at a low final rate.
            samples = args.epochs * args.steps_per_epoch * config.batch_size
            overrides += [f"lr_decay_samples={max(1, samples // FINETUNE_DECAY_STEPS)}",
                          f"lr_decay={FINETUNE_FINAL_LR ** (1 / FINETUNE_DECAY_STEPS):.6g}"]
    if camera is not None:
        print(f"camera: {describe_camera(camera)} (given with --camera)")
    settings = ([f"psf {args.psf}"] * bool(psf) + overrides
                + [f"camera {' '.join(args.camera)}"] * bool(args.camera) + args.set)
    print(f"fine-tuning {parent.source} with {' '.join(settings) or 'its own settings'}")
    config = with_overrides(config, overrides)
    if camera is not None:
        config = replace(config, imaging=replace(config.imaging, camera=camera))
    config = with_overrides(config, args.set)
    check_config_z_range(config, psf, where)
    return entry, config


def recalibrate(folder, source, seed: int) -> None:
    """Re-choose the detection threshold for the fine-tuned weights: on the validation frames
    of the user's data, or on frames simulated with the fine-tuned conditions."""
    from loczoo.calibration import (
        NothingDetectedError,
        calibrate_run_folder,
        describe_sigma_scale,
    )

    data = None if source is None else source.subset(source.split_frames("validation"))
    try:
        best, _ = calibrate_run_folder(folder, frames=64, size=64, seed=seed + 12345, data=data,
                                       command="loczoo finetune (calibration)")
    except NothingDetectedError as err:  # the fine-tuned weights are kept; so is the threshold
        print(f"warning: {err}", file=sys.stderr)
        return
    where = ("64 simulated frames" if data is None else
             f"{data.frames.shape[0]} validation frames of the data")
    print(f"detection threshold {best['threshold']:.2f} chosen on {where}: "
          f"Jaccard {best['jaccard']:.3f}, RMSE {best['rmse_lateral']:.1f} nm")
    uncertainties = describe_sigma_scale(best)
    if uncertainties:
        print(uncertainties)


def main(argv=None) -> int:
    return standalone("finetune", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
