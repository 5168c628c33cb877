"""loczoo filter LOCS.csv --out F.csv --where EXPRESSION: keep the localizations (rows) for
which the expression over the table's numeric columns holds (``loczoo.smlm.tablefilter``)."""

from __future__ import annotations

import argparse
import sys

from loczoo.tools.common import standalone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="localization CSV (loczoo's, ThunderSTORM's, ...)")
    parser.add_argument("--out", required=True, help="filtered CSV to write")
    parser.add_argument("--where", required=True, metavar="EXPRESSION",
                        help='condition over the columns, named by their header without the '
                             'unit: e.g. "prob > 0.5 and uncertainty_x < 20", '
                             '"abs(z) < 300", "10 < frame <= 5000"')
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    from loczoo.outputs import prepare_output
    from loczoo.smlm.io import LOCALIZATION_SUFFIXES
    from loczoo.smlm.tablefilter import filter_rows, read_table, write_rows

    out = prepare_output(args.out, args.overwrite, inputs=[args.table],
                         suffixes=LOCALIZATION_SUFFIXES)
    table = read_table(args.table)
    mask = filter_rows(table, args.where)
    write_rows(out, table, mask)
    kept = int(mask.sum())
    print(f"kept {kept} of {len(mask)} localizations ({100 * kept / len(mask):.1f} %) where "
          f"{args.where}")
    print(f"localizations: {out}")
    return 0


def main(argv=None) -> int:
    return standalone("filter", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
