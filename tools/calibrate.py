"""loczoo calibrate RUN: choose the detection threshold of a localization run folder on frames
simulated with its own imaging configuration, and store it in the run's config.json."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import import_tensorflow_quietly, standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder written by `loczoo train`")
    parser.add_argument("--frames", type=int, default=64, help="simulated frames (default 64)")
    parser.add_argument("--size", type=int, default=64, help="frame size in px (default 64)")
    parser.add_argument("--tolerance", type=float, default=250.0, help="matching tolerance nm")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--dry-run", action="store_true", help="print, do not store")


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    import json
    from dataclasses import replace

    from loczoo import runfolder
    from loczoo.bundle import load_bundle
    from loczoo.calibration import best_threshold, sweep_thresholds
    from loczoo.config import save_json
    from loczoo.errors import LoczooError
    from loczoo.outputs import atomic_path
    from loczoo.smlm.simulate import simulate_stack

    if not runfolder.is_run_folder(args.run):
        raise LoczooError(f"{args.run} is not a run folder (presets are calibrated when built)")
    bundle = load_bundle(args.run)
    imaging = bundle.config.imaging
    frames, truth = simulate_stack(imaging, args.frames, args.size, args.size, seed=args.seed)
    rows = sweep_thresholds(bundle, frames, truth, imaging.pixel_size_nm,
                            tolerance_nm=args.tolerance)
    print(f"{'threshold':>9} {'Jaccard':>8} {'RMSE nm':>8} {'efficiency':>10}")
    for r in rows:
        print(f"{r['threshold']:9.2f} {r['jaccard']:8.3f} {r['rmse_lateral']:8.1f} "
              f"{r['efficiency_lateral']:10.1f}")
    best = best_threshold(rows)
    print(f"best threshold {best['threshold']:.2f}: Jaccard {best['jaccard']:.3f}, "
          f"RMSE {best['rmse_lateral']:.1f} nm on {args.frames} simulated frames")
    if args.dry_run:
        return 0
    config = replace(bundle.config, threshold=best["threshold"])
    with atomic_path(f"{args.run}/{runfolder.CONFIG}") as tmp:
        save_json(config, tmp)
    meta = dict(bundle.metadata)
    meta["calibration"] = {"command": args.command_line, "frames": args.frames,
                           "size": args.size, "seed": args.seed, "tolerance_nm": args.tolerance,
                           "threshold": best["threshold"], "jaccard": best["jaccard"],
                           "rmse_lateral": best["rmse_lateral"],
                           "efficiency_lateral": best["efficiency_lateral"]}
    with atomic_path(f"{args.run}/{runfolder.METADATA}") as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"stored threshold {best['threshold']:.2f} in {args.run}/{runfolder.CONFIG}")
    return 0


def main(argv=None) -> int:
    return standalone("calibrate", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
