"""loczoo evaluate LOCS.csv GT.csv: SMLM-challenge metrics (per-frame matching, Jaccard,
precision, recall, RMSE, bias, efficiency) at one or more tolerances."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import number, standalone

ROWS = (("jaccard", "Jaccard", "{:.3f}"), ("precision", "precision", "{:.3f}"),
        ("recall", "recall", "{:.3f}"), ("rmse_lateral", "RMSE lateral nm", "{:.1f}"),
        ("rmse_axial", "RMSE axial nm", "{:.1f}"), ("bias_x", "bias x nm", "{:+.2f}"),
        ("bias_y", "bias y nm", "{:+.2f}"), ("efficiency_lateral", "efficiency lateral",
                                             "{:.1f}"), ("tp", "TP", "{}"), ("fp", "FP", "{}"),
        ("fn", "FN", "{}"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("localizations", help="localization CSV (e.g. from loczoo localize)")
    parser.add_argument("ground_truth", help="ground-truth CSV (ThunderSTORM or frame,x,y)")
    parser.add_argument("--tolerance", type=number(float, above=0), nargs="+",
                        default=[250.0, 100.0], help="lateral matching tolerances in nm")
    parser.add_argument("--axial-tolerance", type=number(float, above=0),
                        help="axial tolerance in nm (3D)")
    parser.add_argument("--method", choices=("hungarian", "greedy"), default="hungarian",
                        help="matching of localizations to ground truth per frame")
    parser.add_argument("--border", type=number(float, min=0), default=0.0,
                        help="exclude this many nm at the border (needs --fov)")
    parser.add_argument("--fov", type=number(float, above=0), nargs=2, metavar=("H_NM", "W_NM"),
                        help="field of view in nm, for --border")
    parser.add_argument("--json", help="also write the metrics as JSON here")
    parser.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    import json
    import math

    from loczoo.errors import LoczooError
    from loczoo.outputs import atomic_path, prepare_output
    from loczoo.smlm.io import read_localizations
    from loczoo.smlm.metrics import evaluate

    if args.json:
        prepare_output(args.json, args.overwrite, suffixes=(".json",),
                       inputs=[args.localizations, args.ground_truth])
    if args.border and not args.fov:
        raise LoczooError("--border needs --fov H_NM W_NM")
    pred = read_localizations(args.localizations)
    truth = read_localizations(args.ground_truth)
    results = {}
    for tol in args.tolerance:
        results[f"{tol:g}"] = evaluate(truth, pred, tolerance_nm=tol,
                                       axial_tolerance_nm=args.axial_tolerance,
                                       method=args.method, border_nm=args.border,
                                       fov_nm=tuple(args.fov) if args.fov else None)
    print(f"{len(pred)} localizations vs {len(truth)} ground-truth emitters "
          f"({args.method} matching)")
    header = "metric".ljust(20) + "".join(f"@{t} nm".rjust(12) for t in results)
    print(header)
    for key, label, fmt in ROWS:
        values = [r[key] for r in results.values()]
        if all(isinstance(v, float) and math.isnan(v) for v in values):
            continue
        print(label.ljust(20) + "".join(fmt.format(v).rjust(12) for v in values))
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


def main(argv=None) -> int:
    return standalone("evaluate", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
