"""loczoo render LOCS.csv --out IMAGE: a super-resolved image (Gaussian or histogram) as a
float32 TIFF with its pixel size or as a PNG."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("localizations", help="localization CSV")
    parser.add_argument("--out", required=True, help="image to write (.png, .tif)")
    parser.add_argument("--method", choices=("gaussian", "histogram"), default="gaussian")
    parser.add_argument("--pixel-size", type=float, default=10.0, help="render pixel in nm")
    parser.add_argument("--sigma", type=float,
                        help="Gaussian sigma in nm (default: each localization's uncertainty, "
                             "else 20 nm)")
    parser.add_argument("--fov", type=float, nargs=2, metavar=("H_NM", "W_NM"),
                        help="field of view in nm (default: the extent of the localizations)")
    parser.add_argument("--color-by", choices=("density", "z"), default="density",
                        help="z: colour each pixel by the mean z of its localizations (an RGB "
                             "image)")
    parser.add_argument("--z-range", type=float, nargs=2, metavar=("LOW_NM", "HIGH_NM"),
                        help="z range of the colour scale (default: 1st-99th percentile)")
    parser.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    import math

    from loczoo.errors import LoczooError
    from loczoo.outputs import prepare_output
    from loczoo.smlm.io import read_localizations
    from loczoo.smlm.render import render, render_colored_by_z, save_image

    prepare_output(args.out, args.overwrite)
    if args.pixel_size <= 0:
        raise LoczooError(f"--pixel-size must be > 0 nm, got {args.pixel_size}")
    locs = read_localizations(args.localizations)
    if args.fov:
        fov = tuple(args.fov)
    elif len(locs):
        # Round the extent up to whole 100 nm so images of one acquisition line up.
        fov = (math.ceil(locs.y.max() / 100 + 1e-9) * 100, math.ceil(locs.x.max() / 100
                                                                       + 1e-9) * 100)
    else:
        raise LoczooError(f"{args.localizations} has no localizations; pass --fov to render "
                          "an empty image")
    if args.color_by == "z":
        image = render_colored_by_z(locs, fov, method=args.method,
                                    pixel_size_nm=args.pixel_size, sigma_nm=args.sigma,
                                    z_range_nm=args.z_range)
    else:
        image = render(locs, fov, method=args.method, pixel_size_nm=args.pixel_size,
                       sigma_nm=args.sigma)
    save_image(args.out, image, args.pixel_size, overwrite=args.overwrite)
    print(f"image: {args.out} ({image.shape[0]} x {image.shape[1]} px of "
          f"{args.pixel_size:g} nm, {len(locs)} localizations)")
    return 0


def main(argv=None) -> int:
    return standalone("render", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
