"""loczoo calibrate-psf BEADS.tif --z-step NM --out psf.json: an astigmatic PSF model (widths
against z) from a bead z-stack, for simulating training data that looks like your microscope.

The method and the psf.json format are described in ``loczoo.smlm.psf``. Planes are z_step
apart and z grows with the plane index; z = 0 of the model lies midway between the x and y
foci. Without ``--camera`` the baseline is estimated from the stack and 1 photon per ADU is
assumed (the widths hardly depend on either).
"""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import add_camera_argument, number, standalone

# Keys that set the ADU conversion (photons_per_adu = e_per_adu / (em_gain or 1) / qe).
_CONVERSION_KEYS = ("photons_per_adu", "e_per_adu", "em_gain", "qe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("beads", help="bead z-stack: a TIFF (one plane per page) or a folder "
                                      "of single-plane TIFFs, in z order")
    parser.add_argument("--z-step", type=number(float, above=0, max=100_000), required=True,
                        metavar="NM",
                        help="distance between planes in nm (z grows with the plane index)")
    parser.add_argument("--out", required=True, help="PSF model to write (.json)")
    parser.add_argument("--plot", metavar="PNG",
                        help="also write a plot of the widths against z and the fit (.png)")
    parser.add_argument("--pixel-size", type=number(float, above=0, max=100_000), metavar="NM",
                        help="camera pixel in nm (default: from the TIFF)")
    add_camera_argument(parser, help="the camera, e.g. --camera scmos --camera baseline_adu=500 "
                        "(the same items as every loczoo command: a named camera first, then "
                        "KEY=VALUE; repeatable); without it the baseline is estimated and 1 "
                        "photon/ADU assumed")
    parser.add_argument("--box", type=number(int, min=5, max=81), metavar="PX",
                        help="fit box side in px, odd (default: about 2 um)")
    parser.add_argument("--skip-saturated", action="store_true",
                        help="leave saturated beads out instead of refusing the stack")
    parser.add_argument("--overwrite", action="store_true")


def _camera(items: list[str]) -> dict:
    """baseline_adu, photons_per_adu (None where not given) and saturation_adu from the
    --camera items (``loczoo.smlm.cameras``)."""
    if not items:
        return {"baseline_adu": None, "photons_per_adu": None, "saturation_adu": None}
    from loczoo.smlm.cameras import named_camera, parse_camera
    from loczoo.tools.common import import_tensorflow_quietly

    import_tensorflow_quietly()  # the camera is a loczoo.smlm.simulate.CameraConfig
    named = "=" not in items[0]
    keys = {item.split("=", 1)[0].strip() for item in items if "=" in item}
    camera = parse_camera(items, named_camera("scmos"), what="the default camera",
                          prefix="camera.")
    return {
        "baseline_adu": camera.baseline_adu if named or "baseline_adu" in keys else None,
        "photons_per_adu": (camera.photons_per_adu
                            if named or keys & set(_CONVERSION_KEYS) else None),
        "saturation_adu": camera.saturation_adu if named or "saturation_adu" in keys else None,
    }


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from loczoo.errors import LoczooError
    from loczoo.outputs import atomic_path, check_distinct, prepare_output
    from loczoo.smlm.io import read_stack
    from loczoo.smlm.psf import bead_rms, calibrate_psf, plot_calibration, write_psf

    if args.box is not None and args.box % 2 == 0:
        raise LoczooError(f"--box must be odd (a centre pixel), got {args.box}")
    prepare_output(args.out, args.overwrite, inputs=[args.beads], suffixes=(".json",))
    if args.plot:
        prepare_output(args.plot, args.overwrite, inputs=[args.beads], suffixes=(".png",))
        check_distinct(args.out, args.plot)
    camera = _camera(args.camera)
    stack = read_stack(args.beads, args.pixel_size)
    if stack.pixel_size_nm is None:
        raise LoczooError(f"{args.beads} does not say its pixel size; pass --pixel-size NM")
    frames = stack.frames
    cal = calibrate_psf(frames, args.z_step, stack.pixel_size_nm,
                        box_radius=None if args.box is None else args.box // 2,
                        skip_saturated=args.skip_saturated, source=Path(args.beads).name,
                        **camera)
    psf = cal.psf
    print(f"stack: {args.beads}: {frames.shape[0]} planes of {frames.shape[1]} x "
          f"{frames.shape[2]} px, {stack.pixel_size_nm:g} nm pixels, z step {args.z_step:g} nm")
    print(cal.camera_note)
    for note in cal.notes:
        print(f"note: {note}")
    print(f"{'bead':>4} {'x px':>7} {'y px':>7} {'planes':>6} {'z=0 at nm':>10} {'plane':>6} "
          f"{'rms x':>6} {'rms y':>6}")
    for i, bead in enumerate(cal.beads, start=1):
        rx, ry = bead_rms(bead, psf, cal.z_stack_nm)
        used = int((bead.inlier_x | bead.inlier_y).sum())
        x_px = float(bead.x_nm[bead.good].mean()) / stack.pixel_size_nm
        y_px = float(bead.y_nm[bead.good].mean()) / stack.pixel_size_nm
        print(f"{i:>4} {x_px:7.1f} {y_px:7.1f} {used:>6} {bead.z0_nm:10.1f} "
              f"{bead.z0_nm / args.z_step + 1:6.1f} {rx:6.1f} {ry:6.1f}")
    print("(z=0 at: stack z from plane 1, and the plane, where the bead sits midway between "
          "the foci)")
    print(f"PSF: sigma0 x {psf.sigma0_x_nm:.1f} nm, y {psf.sigma0_y_nm:.1f} nm; foci x "
          f"{psf.focus_x_nm:+.1f} nm, y {psf.focus_y_nm:+.1f} nm; depth {psf.depth_nm:.1f} nm")
    print(f"     a_x {psf.a_x:+.4f}, b_x {psf.b_x:+.4f}, a_y {psf.a_y:+.4f}, b_y {psf.b_y:+.4f}")
    print(f"residuals: x {psf.residuals_nm['x']:.2f} nm, y {psf.residuals_nm['y']:.2f} nm rms "
          f"({cal.outliers[0]} + {cal.outliers[1]} outlier planes left out)")
    print(f"valid z range: {psf.z_range_nm[0]:.0f} to {psf.z_range_nm[1]:.0f} nm")
    # The plot is drawn before anything is written: a failure leaves no output at all.
    image = plot_calibration(cal) if args.plot else None
    write_psf(args.out, psf)
    print(f"wrote {args.out}")
    if image is not None:
        with atomic_path(args.plot) as tmp:
            image.save(tmp, format="PNG")
        print(f"wrote {args.plot}")
    return 0


def main(argv=None) -> int:
    return standalone("calibrate-psf", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
