"""loczoo localize STACK --out locs.csv: run a pretrained zoo model (default: Deep-STORM) on a
TIFF stack and write a ThunderSTORM-compatible CSV, optionally a super-resolved image."""

from __future__ import annotations

import argparse
import sys
import time

from loczoo.tools.common import add_camera_argument, import_tensorflow_quietly, number, standalone

DEFAULT_MODEL = "deep_storm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help="TIFF stack or folder of single-frame TIFFs")
    parser.add_argument("--out", required=True, help="localization CSV to write")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="entry name, ENTRY/PRESET, run folder or a .tflite export "
                             "(default: %(default)s)")
    parser.add_argument("--pixel-size", type=number(float, above=0),
                        help="camera pixel size in nm (default: from the TIFF, else the model's)")
    parser.add_argument("--threshold", type=number(float, min=0),
                        help="detection threshold (default: the one stored with the model)")
    add_camera_argument(
        parser, "the stack's camera where it differs from the model's: a named camera first "
                "(scmos, emccd, smlm2016), then KEY=VALUE changes (qe, em_gain (none: no EM "
                "gain), read_noise_e, e_per_adu, photons_per_adu, baseline_adu, "
                "saturation_adu, spurious_charge_e), e.g. --camera em_gain=none --camera "
                "photons_per_adu=1 --camera baseline_adu=500; used by models that read the "
                "camera, such as DECODE (repeatable)")
    parser.add_argument("--render", metavar="IMAGE",
                        help="also write a super-resolved image (.png or .tif)")
    parser.add_argument("--render-pixel", type=number(float, above=0), default=10.0,
                        help="pixel of the --render image in nm")
    parser.add_argument("--batch-size", type=number(int, min=1, max=4096), default=4,
                        help="frames per network call")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average the network's outputs over the "
                             "flipped (and, for non-astigmatic models, transposed) frames; "
                             "cancels learned sub-pixel bias, costs 4 or 8 network passes")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from dataclasses import replace

    from loczoo.bundle import load_bundle
    from loczoo.errors import LoczooError
    from loczoo.outputs import check_distinct, prepare_output
    from loczoo.progress import ProgressPrinter
    from loczoo.smlm.cameras import describe_camera
    from loczoo.smlm.io import LOCALIZATION_SUFFIXES, read_stack, write_localizations
    from loczoo.smlm.render import IMAGE_SUFFIXES

    inputs = [args.stack, args.model]
    prepare_output(args.out, args.overwrite, inputs=inputs, suffixes=LOCALIZATION_SUFFIXES)
    if args.render:
        prepare_output(args.render, args.overwrite, inputs=inputs, suffixes=IMAGE_SUFFIXES)
        check_distinct(args.out, args.render)
    stack = read_stack(args.stack, args.pixel_size)
    if args.model.lower().endswith(".tflite"):
        from loczoo.export.tflite import load_tflite_bundle

        bundle = load_tflite_bundle(args.model)
    else:
        bundle = load_bundle(args.model)
    if bundle.entry.task != "localization":
        raise LoczooError(f"{args.model} is a {bundle.entry.task} model, not a localization one")
    # Checks the items (names, fields, ranges, the EMCCD trap) for every model.
    bundle = bundle.with_camera(args.camera)
    if args.camera and not bundle.entry.reads_camera:
        print(f"note: {bundle.entry.name} normalises each frame and does not read the camera; "
              f"--camera is ignored", file=sys.stderr)
    elif bundle.entry.reads_camera:
        which = "given with --camera" if args.camera else "the model's; change with --camera"
        print(f"camera: {describe_camera(bundle.config.imaging.camera)} ({which})")
    if args.threshold is not None:
        bundle.config = replace(bundle.config, threshold=args.threshold)
    if args.tta:
        bundle = bundle.with_test_time_augmentation()
        print(f"test-time augmentation: {bundle.augmentation_passes()} network passes per "
              f"frame ({'flips' if bundle.astigmatic else 'flips and transposes'})")
    pixel_size = stack.pixel_size_nm
    if pixel_size is None:
        pixel_size = bundle.config.imaging.pixel_size_nm
        print(f"note: {args.stack} has no pixel size; using the model's {pixel_size:g} nm "
              f"(set --pixel-size)", file=sys.stderr)
    elif args.pixel_size is not None and stack.metadata_pixel_size_nm not in (
            None, args.pixel_size):
        print(f"note: --pixel-size {args.pixel_size:g} nm replaces the "
              f"{stack.metadata_pixel_size_nm:g} nm in {args.stack}'s metadata", file=sys.stderr)
    if args.render:
        from loczoo.smlm.render import check_render_size

        check_render_size((stack.frames.shape[1] * pixel_size,
                           stack.frames.shape[2] * pixel_size), args.render_pixel)
    for note in bundle.domain_notes(stack.frames):
        print(f"warning: {note}", file=sys.stderr)
    n, height, width = stack.frames.shape
    start = time.time()
    locs = bundle.localize(stack.frames, pixel_size_nm=pixel_size, batch_size=args.batch_size,
                           progress=ProgressPrinter("localize", quiet=args.quiet))
    elapsed = time.time() - start
    for note in bundle.domain_notes_after(locs, stack.frames.shape, pixel_size):
        print(f"warning: {note}", file=sys.stderr)
    write_localizations(args.out, locs, overwrite=args.overwrite)
    print(f"{len(locs)} localizations in {n} frames ({1000 * elapsed / n:.0f} ms/frame, "
          f"{bundle.source}, pixel {pixel_size:g} nm)")
    print(f"localizations: {args.out}")
    if args.render:
        from loczoo.smlm.render import render, save_image

        image = render(locs, (height * pixel_size, width * pixel_size),
                       pixel_size_nm=args.render_pixel)
        save_image(args.render, image, args.render_pixel, overwrite=args.overwrite)
        print(f"image: {args.render}")
    return 0


def main(argv=None) -> int:
    return standalone("localize", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
