"""loczoo simulate-cells OUT_FOLDER: synthetic fluorescence images of single cells from
``loczoo.proteins.simulate``, one folder per protein pattern (the class-folder layout that
``loczoo train plcnn --data`` and ``loczoo classify`` read). SYNTHETIC: for tests and demos,
not a benchmark of real cells."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import import_tensorflow_quietly, number, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="folder to write (one sub-folder per pattern)")
    parser.add_argument("--per-class", type=number(int, min=1, max=100_000), default=4,
                        help="images per pattern")
    parser.add_argument("--size", type=number(int, min=32, max=2048), default=128,
                        help="image side in px")
    parser.add_argument("--patterns", nargs="+", metavar="PATTERN",
                        help="default: all eight (nucleus nucleoli er golgi vesicles "
                             "mitochondria actin microtubules)")
    parser.add_argument("--dna-channel", action="store_true",
                        help="a second channel with the nucleus (a DNA counterstain)")
    parser.add_argument("--seed", type=number(int, min=0, max=2**31 - 1), default=0,
                        help="seed of the simulated cells")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    import numpy as np
    import tifffile

    from loczoo.outputs import atomic_folder, prepare_folder_output
    from loczoo.progress import ProgressPrinter
    from loczoo.proteins.simulate import PATTERNS, CellImagingConfig, simulate_cells

    out = prepare_folder_output(args.out, args.overwrite)
    imaging = CellImagingConfig(size=args.size, patterns=tuple(args.patterns or PATTERNS),
                                dna_channel=args.dna_channel)
    progress = ProgressPrinter("simulate-cells", unit="images", quiet=args.quiet)
    total = args.per_class * len(imaging.patterns)
    with atomic_folder(out, kind="simulated cells") as tmp:
        for label, pattern in enumerate(imaging.patterns):
            (tmp / pattern).mkdir()
            # One seeded batch per pattern: the same seed gives the same cells.
            images = simulate_cells([args.seed, label], np.full(args.per_class, label),
                                    imaging)["images"]
            for i, image in enumerate(np.asarray(images)):
                # Camera counts in ADU; channels first, as ImageJ reads a multi-channel TIFF.
                planes = np.moveaxis(image, -1, 0)
                pixels = np.clip(np.rint(planes[0] if len(planes) == 1 else planes), 0,
                                 65535).astype(np.uint16)
                tifffile.imwrite(tmp / pattern / f"cell_{i:03d}.tif", pixels)
            progress((label + 1) * args.per_class, total)
    print(f"{total} synthetic cells in {out}/ ({len(imaging.patterns)} pattern folders of "
          f"{args.per_class} images, {args.size} x {args.size} px, {imaging.channels} "
          f"channel{'s' if imaging.channels > 1 else ''})")
    return 0


def main(argv=None) -> int:
    return standalone("simulate-cells", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
