"""loczoo drift LOCS.csv --out CORRECTED.csv [--method rcc|aim] [--plot drift.png]: estimate the
stage drift from the localizations themselves (no fiducials; in z too when the table has z),
write the corrected table and the drift trace (``loczoo.smlm.drift``), or apply a saved trace
with --apply TRACE.csv."""

from __future__ import annotations

import argparse
import sys
import time

from loczoo.tools.common import number, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="localization CSV")
    parser.add_argument("--out", required=True, help="drift-corrected CSV to write")
    parser.add_argument("--method", choices=("rcc", "aim"), default="rcc",
                        help="rcc: redundant cross-correlation (Wang 2014); aim: adaptive "
                             "intersection maximisation (Ma 2024)")
    parser.add_argument("--segment", type=number(int, min=1, max=10**9), metavar="FRAMES",
                        help="frames per segment (default: about 2,000 localizations per "
                             "segment, 5-40 segments)")
    parser.add_argument("--bin", type=number(float, min=1.0, max=1000.0), default=30.0,
                        metavar="NM", help="histogram bin (rcc) and matching radius (aim), nm")
    parser.add_argument("--max-drift", type=number(float, min=10.0, max=100000.0),
                        default=1000.0, metavar="NM", help="largest drift searched, nm")
    parser.add_argument("--no-z", action="store_true", help="lateral drift only")
    parser.add_argument("--trace", metavar="TRACE.csv",
                        help="where to write the drift trace (default: OUT with _drift.csv)")
    parser.add_argument("--apply", metavar="TRACE.csv",
                        help="apply this saved trace instead of estimating one")
    parser.add_argument("--plot", metavar="IMAGE.png", help="draw the drift trace")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that exist")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from loczoo.curves import line_plot
    from loczoo.errors import LoczooError
    from loczoo.outputs import atomic_path, check_distinct, prepare_output
    from loczoo.smlm.drift import apply_drift, estimate_drift, read_trace, write_trace
    from loczoo.smlm.io import LOCALIZATION_SUFFIXES, read_localizations, write_localizations

    inputs = [args.table] + ([args.apply] if args.apply else [])
    out = prepare_output(args.out, args.overwrite, inputs=inputs, suffixes=LOCALIZATION_SUFFIXES)
    trace_path = None
    if not args.apply:
        trace_path = Path(args.trace) if args.trace else out.with_name(f"{out.stem}_drift.csv")
        trace_path = prepare_output(trace_path, args.overwrite, inputs=inputs,
                                    suffixes=LOCALIZATION_SUFFIXES)
        check_distinct(out, trace_path)
    elif args.trace:
        raise LoczooError("--trace names the trace to write; with --apply nothing is estimated")
    plot = None
    if args.plot:
        plot = prepare_output(args.plot, args.overwrite, inputs=inputs, suffixes=(".png",))
        check_distinct(out, plot)
    locs = read_localizations(args.table)
    if len(locs) == 0:
        raise LoczooError(f"{args.table} holds no localizations")
    start = time.time()
    if args.apply:
        trace = read_trace(args.apply)
        if trace.z is not None and not locs.has("z"):
            raise LoczooError(f"{args.apply} has a z drift but {args.table} has no z")
        how = f"applied {args.apply}"
    else:
        trace = estimate_drift(locs, method=args.method, segment_frames=args.segment,
                               bin_nm=args.bin, max_drift_nm=args.max_drift,
                               use_z=False if args.no_z else None)
        how = f"{args.method}, {time.time() - start:.1f} s"
    corrected = apply_drift(locs, trace)
    write_localizations(out, corrected, overwrite=args.overwrite)
    if trace_path is not None:
        write_trace(trace_path, trace)
    axes = [("x", trace.x, (31, 119, 180)), ("y", trace.y, (255, 127, 14))]
    if trace.z is not None:
        axes.append(("z", trace.z, (44, 160, 44)))
    span = ", ".join(f"{name} {np.ptp(values):.0f} nm" for name, values, _ in axes)
    print(f"drift over frames {trace.frame[0]}-{trace.frame[-1]} ({how}): range {span}")
    if plot is not None:
        image = line_plot({name: (trace.frame, values, colour) for name, values, colour in axes},
                          "frame", "drift (nm)", f"drift of {Path(args.table).name}",
                          size=(720, 420), log_y=False)
        with atomic_path(plot) as tmp:
            image.save(tmp, format="PNG")
        print(f"plot: {plot}")
    if trace_path is not None:
        print(f"trace: {trace_path}")
    print(f"localizations: {out}")
    return 0


def main(argv=None) -> int:
    return standalone("drift", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
