"""loczoo render LOCS.csv --out IMAGE: a super-resolved image (Gaussian or histogram) as a
float32 TIFF with its pixel size or as a PNG."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import number, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("localizations", help="localization CSV")
    parser.add_argument("--out", required=True, help="image to write (.png, .tif)")
    parser.add_argument("--method", choices=("gaussian", "histogram"), default="gaussian",
                        help="each localization as a Gaussian, or counts per pixel")
    parser.add_argument("--pixel-size", type=number(float, above=0), default=10.0,
                        help="render pixel in nm")
    parser.add_argument("--sigma", type=number(float, above=0),
                        help="Gaussian sigma in nm (default: each localization's uncertainty, "
                             "else 20 nm)")
    parser.add_argument("--fov", type=number(float, above=0), nargs=2, metavar=("H_NM", "W_NM"),
                        help="field of view in nm (default: the extent of the localizations)")
    parser.add_argument("--color-by", choices=("density", "z"), default="density",
                        help="z: colour each pixel by the mean z of its localizations (an RGB "
                             "image with a colour bar strip below it)")
    parser.add_argument("--z-range", type=number(float), nargs=2, metavar=("LOW_NM", "HIGH_NM"),
                        help="z range of the colour scale (default: 1st-99th percentile)")
    parser.add_argument("--no-color-bar", action="store_true",
                        help="with --color-by z: leave out the colour bar strip")
    parser.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    import math

    from loczoo.errors import LoczooError
    from loczoo.outputs import prepare_output
    from loczoo.smlm.io import read_localizations
    from loczoo.smlm.render import (
        COLOUR_BAR_HEIGHT,
        IMAGE_SUFFIXES,
        render,
        render_colored_by_z,
        save_image,
        with_colour_bar,
        z_colour_range,
    )
    from loczoo.tools.common import check_pair

    check_pair("--z-range", args.z_range)
    prepare_output(args.out, args.overwrite, inputs=(args.localizations,),
                   suffixes=IMAGE_SUFFIXES)
    locs = read_localizations(args.localizations)
    if args.fov:
        fov = tuple(args.fov)
    elif len(locs):
        import numpy as np

        finite = np.isfinite(locs.x) & np.isfinite(locs.y)
        top = (float(locs.y[finite].max()), float(locs.x[finite].max())) if finite.any() else (
            math.nan, math.nan)
        if not (top[0] > 0 and top[1] > 0):
            raise LoczooError(f"the localizations in {args.localizations} span no positive "
                              "field of view (largest finite y, x: "
                              f"{top[0]:g}, {top[1]:g} nm); pass --fov H_NM W_NM")
        # Round the extent up to whole 100 nm so images of one acquisition line up.
        fov = tuple(math.ceil(v / 100 + 1e-9) * 100 for v in top)
    else:
        raise LoczooError(f"{args.localizations} has no localizations; pass --fov to render "
                          "an empty image")
    note = ""
    if args.color_by == "z":
        low, high = z_colour_range(locs, args.z_range)
        source = "--z-range" if args.z_range else "1st to 99th percentile"
        image = render_colored_by_z(locs, fov, method=args.method,
                                    pixel_size_nm=args.pixel_size, sigma_nm=args.sigma,
                                    z_range_nm=(low, high))
        shape = image.shape
        print(f"colour: z from {low:.1f} to {high:.1f} nm ({source}), blue to red")
        if not args.no_color_bar:
            image = with_colour_bar(image, low, high)
            note = f"; colour bar in the {COLOUR_BAR_HEIGHT} rows below"
    else:
        image = render(locs, fov, method=args.method, pixel_size_nm=args.pixel_size,
                       sigma_nm=args.sigma)
        shape = image.shape
    save_image(args.out, image, args.pixel_size, overwrite=args.overwrite)
    print(f"image: {args.out} ({shape[0]} x {shape[1]} px of {args.pixel_size:g} nm, "
          f"{len(locs)} localizations{note})")
    return 0


def main(argv=None) -> int:
    return standalone("render", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
