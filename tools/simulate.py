"""loczoo simulate OUT.tif: an SMLM stack from loczoo's TensorFlow simulator, with its ground
truth as a ThunderSTORM-style CSV (frames 1-based, x = column, y = row, nm)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loczoo.tools.common import check_pair, import_tensorflow_quietly, number, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="TIFF stack to write")
    parser.add_argument("--gt", help="ground-truth CSV (default: OUT stem + '_gt.csv')")
    parser.add_argument("--frames", type=number(int, min=1), default=20, help="frames to simulate")
    parser.add_argument("--size", type=number(int, min=1), nargs=2, default=(64, 64),
                        metavar=("H", "W"), help="frame size in camera pixels")
    parser.add_argument("--pixel-size", type=number(float, above=0), default=100.0, help="nm")
    parser.add_argument("--density", type=number(float, min=0), nargs=2, default=(6.0, 6.0),
                        metavar=("LO", "HI"), help="emitters per um^2, drawn per frame")
    parser.add_argument("--photons", type=number(float, min=0), nargs=2, default=(2000.0, 2500.0),
                        metavar=("LO", "HI"), help="photons per emitter (uniform)")
    parser.add_argument("--sigma", type=number(float, above=0), nargs=2, default=(106.0, 115.0),
                        metavar=("LO", "HI"), help="PSF sigma in nm, per emitter")
    parser.add_argument("--background", type=number(float, min=0), nargs=2, default=(20.0, 20.0),
                        metavar=("LO", "HI"), help="background photons per pixel")
    parser.add_argument("--em-gain", type=number(float, min=1),
                        help="EMCCD gain (default: no EM gain)")
    parser.add_argument("--qe", type=number(float, above=0, max=1), default=1.0,
                        help="quantum efficiency")
    parser.add_argument("--read-noise", type=number(float, min=0), default=1.5,
                        help="electrons rms")
    parser.add_argument("--e-per-adu", type=number(float, above=0), default=0.5,
                        help="electrons per ADU (camera gain)")
    parser.add_argument("--baseline", type=number(float), default=100.0, help="ADU")
    parser.add_argument("--camera", choices=("custom", "smlm2016"), default="custom",
                        help="smlm2016: the SMLM 2016 challenge EMCCD (replaces the camera "
                             "options above)")
    parser.add_argument("--z-range", type=number(float), nargs=2, default=(0.0, 0.0),
                        metavar=("LO", "HI"), help="z in nm, uniform per emitter (default: 2D)")
    parser.add_argument("--astigmatism", action="store_true",
                        help="astigmatic PSF over z (foci -250/+250 nm, depth 280 nm)")
    parser.add_argument("--on-time", type=number(float, min=0), default=0.0, metavar="FRAMES",
                        help="mean on-time of blinking emitters (default 0: independent "
                             "frames)")
    parser.add_argument("--structure", choices=("uniform", "filaments"), default="uniform",
                        help="where emitters are: uniformly random (default) or on random "
                             "filaments; with filaments, --density applies on the filaments")
    parser.add_argument("--seed", type=number(int, min=0, max=2**31 - 1), default=0,
                        help="the same seed gives the same stack")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    for flag in ("density", "photons", "sigma", "background", "z_range"):
        check_pair(f"--{flag.replace('_', '-')}", getattr(args, flag))
    import_tensorflow_quietly()
    from loczoo.outputs import check_distinct, prepare_output
    from loczoo.smlm.io import LOCALIZATION_SUFFIXES, STACK_SUFFIXES

    gt_path = Path(args.gt) if args.gt else Path(args.out).with_name(Path(args.out).stem
                                                                    + "_gt.csv")
    prepare_output(args.out, args.overwrite, suffixes=STACK_SUFFIXES)
    prepare_output(gt_path, args.overwrite, suffixes=LOCALIZATION_SUFFIXES)
    check_distinct(args.out, gt_path)
    # The configs validate every option before anything is written.
    from loczoo.smlm.simulate import AstigmatismConfig, CameraConfig, ImagingConfig

    if args.camera == "smlm2016":
        camera = CameraConfig.smlm2016()
    else:
        camera = CameraConfig(qe=args.qe, em_gain=args.em_gain, read_noise_e=args.read_noise,
                              e_per_adu=args.e_per_adu, baseline_adu=args.baseline)
    imaging = ImagingConfig(
        pixel_size_nm=args.pixel_size, density_per_um2=tuple(args.density),
        photon_params=tuple(args.photons), psf_sigma_nm=tuple(args.sigma),
        background_photons=tuple(args.background), z_range_nm=tuple(args.z_range),
        astigmatism=AstigmatismConfig() if args.astigmatism else None,
        on_time_frames=args.on_time, camera=camera)
    from loczoo.progress import ProgressPrinter
    from loczoo.smlm.simulate import check_stack_memory, simulate_stack

    # Refuse a stack that cannot fit in memory before the mask or any frame is made (the
    # filament mask has 8 x 8 cells per pixel).
    cells = 64 * args.size[0] * args.size[1] if args.structure == "filaments" else 0
    check_stack_memory(imaging, args.frames, *args.size, density_mask_cells=cells, write=True)

    mask = None
    if args.structure == "filaments":
        from loczoo.smlm.structures import filament_mask

        mask = filament_mask(*args.size, seed=args.seed)
    frames, truth = simulate_stack(imaging, args.frames, *args.size, seed=args.seed,
                                   progress=ProgressPrinter("simulate", quiet=args.quiet),
                                   density_mask=mask)
    from loczoo.smlm.io import write_localizations, write_stack

    write_stack(args.out, frames, pixel_size_nm=args.pixel_size, overwrite=args.overwrite)
    write_localizations(gt_path, truth, overwrite=args.overwrite)
    print(f"stack: {args.out} ({args.frames} frames of {args.size[0]} x {args.size[1]} px, "
          f"{args.pixel_size:g} nm pixels)")
    print(f"ground truth: {gt_path} ({len(truth)} emitters)")
    return 0


def main(argv=None) -> int:
    return standalone("simulate", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
