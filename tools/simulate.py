"""loczoo simulate OUT.tif: an SMLM stack from loczoo's TensorFlow simulator, with its ground
truth as a ThunderSTORM-style CSV (frames 1-based, x = column, y = row, nm)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loczoo.tools.common import (
    add_camera_argument,
    check_pair,
    import_tensorflow_quietly,
    number,
    standalone,
)

# --flag: the --camera field it sets, its checked type, its help.
SHORTCUTS = (
    ("--em-gain", "em_gain", number(float, min=1), "EMCCD gain"),
    ("--qe", "qe", number(float, above=0, max=1), "quantum efficiency"),
    ("--read-noise", "read_noise_e", number(float, min=0), "read noise, electrons rms"),
    ("--e-per-adu", "e_per_adu", number(float, above=0), "electrons per ADU (camera gain)"),
    ("--baseline", "baseline_adu", number(float), "offset in ADU"),
)


def camera_items(args: argparse.Namespace) -> list[str]:
    """``--camera`` plus the shortcut flags as one list of items (a named camera first). The
    ``custom`` of earlier versions (the default camera, set by the shortcuts) is dropped."""
    from loczoo.errors import LoczooError

    items = list(args.camera)
    if items and items[0].lower() == "custom":
        items = items[1:]
    for flag, key, _, _ in SHORTCUTS:
        value = getattr(args, key_to_dest(flag))
        if value is None:
            continue
        if any(item.split("=", 1)[0].strip() == key for item in items):
            raise LoczooError(f"{flag} and --camera {key}=... both set {key}; give one")
        items.append(f"{key}={value!r}")
    return items


def key_to_dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="TIFF stack to write")
    parser.add_argument("--gt", help="ground-truth CSV (default: OUT stem + '_gt.csv')")
    parser.add_argument("--frames", type=number(int, min=1), default=20, help="frames to simulate")
    parser.add_argument("--size", type=number(int, min=1), nargs=2, default=(64, 64),
                        metavar=("H", "W"), help="frame size in camera pixels")
    parser.add_argument("--pixel-size", type=number(float, above=0),
                        help="nm (default: 100, with --psf the PSF's)")
    parser.add_argument("--density", type=number(float, min=0), nargs=2, default=(6.0, 6.0),
                        metavar=("LO", "HI"), help="emitters per um^2, drawn per frame")
    parser.add_argument("--photons", type=number(float, min=0), nargs=2, default=(2000.0, 2500.0),
                        metavar=("LO", "HI"), help="photons per emitter (uniform)")
    parser.add_argument("--sigma", type=number(float, above=0), nargs=2,
                        metavar=("LO", "HI"), help="PSF sigma in nm, per emitter (default: "
                                                   "106 115; with --psf the PSF's)")
    parser.add_argument("--background", type=number(float, min=0), nargs=2, default=(20.0, 20.0),
                        metavar=("LO", "HI"), help="background photons per pixel")
    add_camera_argument(
        parser, "the simulated camera: a named camera first (scmos: 1 photon/ADU, QE 1; emccd; "
                "smlm2016: the SMLM 2016 challenge EMCCD), then KEY=VALUE changes (qe, em_gain "
                "(none: no EM gain), read_noise_e, e_per_adu, photons_per_adu, baseline_adu, "
                "saturation_adu, spurious_charge_e), e.g. --camera scmos --camera "
                "baseline_adu=500 (repeatable; default: QE 1, no EM gain, read noise 1.5 e-, "
                "0.5 e-/ADU, baseline 100 ADU)", extra_names=("custom",))
    # The flags of earlier versions, kept as shortcuts for --camera KEY=VALUE items.
    for flag, key, kind, help_text in SHORTCUTS:
        parser.add_argument(flag, type=kind, help=f"{help_text} (shortcut for --camera "
                                                  f"{key}=...)")
    parser.add_argument("--z-range", type=number(float), nargs=2,
                        metavar=("LO", "HI"), help="z in nm, uniform per emitter (default: 2D; "
                                                   "with --psf the PSF's valid z range)")
    parser.add_argument("--astigmatism", action="store_true",
                        help="astigmatic PSF over z (foci -250/+250 nm, depth 280 nm)")
    parser.add_argument("--psf", metavar="PSF.json",
                        help="a calibrated astigmatic PSF (`loczoo calibrate-psf`): its widths "
                             "over z (implies --astigmatism), its pixel size and, unless "
                             "--z-range is given (inside it), its valid z range")
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
    astigmatism = psf_settings(args)
    import_tensorflow_quietly()
    from loczoo.outputs import check_distinct, prepare_output
    from loczoo.smlm.io import LOCALIZATION_SUFFIXES, STACK_SUFFIXES

    gt_path = Path(args.gt) if args.gt else Path(args.out).with_name(Path(args.out).stem
                                                                    + "_gt.csv")
    prepare_output(args.out, args.overwrite, suffixes=STACK_SUFFIXES)
    prepare_output(gt_path, args.overwrite, suffixes=LOCALIZATION_SUFFIXES)
    check_distinct(args.out, gt_path)
    # The configs validate every option before anything is written.
    from loczoo.smlm.cameras import describe_camera, parse_camera
    from loczoo.smlm.simulate import AstigmatismConfig, CameraConfig, ImagingConfig

    camera = parse_camera(camera_items(args), CameraConfig(), what="the default camera",
                          prefix="camera.")
    imaging = ImagingConfig(
        pixel_size_nm=args.pixel_size, density_per_um2=tuple(args.density),
        photon_params=tuple(args.photons), psf_sigma_nm=tuple(args.sigma),
        background_photons=tuple(args.background), z_range_nm=tuple(args.z_range),
        astigmatism=astigmatism or (AstigmatismConfig() if args.astigmatism else None),
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
    print(f"camera: {describe_camera(camera)}")
    if args.psf:
        print(f"PSF: {args.psf} (z {args.z_range[0]:g}..{args.z_range[1]:g} nm)")
    return 0


def psf_settings(args: argparse.Namespace):
    """The ``AstigmatismConfig`` of ``--psf`` (None without it), with ``args`` completed: the
    pixel size (checked against the PSF's), the widths and the z range (inside the PSF's valid
    range) from the file; the defaults without ``--psf``."""
    from loczoo.errors import LoczooError

    if args.psf is None:
        args.pixel_size = 100.0 if args.pixel_size is None else args.pixel_size
        args.sigma = (106.0, 115.0) if args.sigma is None else args.sigma
        args.z_range = (0.0, 0.0) if args.z_range is None else args.z_range
        return None
    from loczoo.smlm.psf import astigmatism_from_psf, check_psf_pixel_size, read_psf

    psf = read_psf(args.psf)
    if args.sigma is not None:
        raise LoczooError(f"--psf {args.psf} sets the PSF widths; drop --sigma")
    args.pixel_size = check_psf_pixel_size(psf, args.pixel_size,
                                           "the simulated stack (--pixel-size)")
    low, high = psf.z_range_nm
    if args.z_range is None:
        args.z_range = (low, high)
    elif args.z_range[0] < low or args.z_range[1] > high:
        raise LoczooError(f"--z-range {args.z_range[0]:g} {args.z_range[1]:g} nm lies outside "
                          f"the valid z range {low:g}..{high:g} nm of the PSF {args.psf}; "
                          f"choose a range inside it (or calibrate over a deeper bead stack)")
    astigmatism, args.sigma = astigmatism_from_psf(psf)
    return astigmatism


def main(argv=None) -> int:
    return standalone("simulate", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
