"""loczoo calibrate RUN: choose the detection threshold of a localization run folder on frames
simulated with its own imaging configuration, and store it in the run's config.json."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import import_tensorflow_quietly, number, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder written by `loczoo train`")
    parser.add_argument("--frames", type=number(int, min=1, max=100_000), default=64,
                        help="simulated frames")
    parser.add_argument("--size", type=number(int, min=16, max=1024), default=64,
                        help="frame size in px")
    parser.add_argument("--tolerance", type=number(float, above=0), default=250.0,
                        help="matching tolerance in nm")
    parser.add_argument("--seed", type=number(int, min=0, max=2**31 - 1), default=12345,
                        help="seed of the simulated frames")
    parser.add_argument("--dry-run", action="store_true", help="print, do not store")


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from loczoo import runfolder
    from loczoo.calibration import calibrate_run_folder, describe_sigma_scale

    best, rows = calibrate_run_folder(args.run, frames=args.frames, size=args.size,
                                      seed=args.seed, tolerance_nm=args.tolerance,
                                      command=args.command_line, store=not args.dry_run)
    print(f"{'threshold':>9} {'Jaccard':>8} {'RMSE nm':>8} {'efficiency':>10}")
    for r in rows:
        print(f"{r['threshold']:9.2f} {r['jaccard']:8.3f} {r['rmse_lateral']:8.1f} "
              f"{r['efficiency_lateral']:10.1f}")
    print(f"best threshold {best['threshold']:.2f}: Jaccard {best['jaccard']:.3f}, "
          f"RMSE {best['rmse_lateral']:.1f} nm on {args.frames} simulated frames")
    uncertainties = describe_sigma_scale(best)
    if uncertainties:
        print(uncertainties)
    if not args.dry_run:
        stored = " and the sigma scale" if "sigma_scale" in best else ""
        print(f"stored threshold {best['threshold']:.2f}{stored} in "
              f"{args.run}/{runfolder.CONFIG}")
    return 0


def main(argv=None) -> int:
    return standalone("calibrate", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
