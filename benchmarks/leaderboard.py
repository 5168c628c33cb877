"""Every localization entry of the zoo side by side on the same real data (../shared/data),
with the Picasso baseline of the data README: Jaccard at 250 and 100 nm, RMSE, efficiency,
ms per frame and parameter count.

    python benchmarks/leaderboard.py [--models deep_storm deepcel0 ...] [--frames N]

``--models`` takes presets, entries (their default preset) or run folders; by default every
localization entry that has a pretrained preset.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from realdata import BATCH, PICASSO, add_data_arguments, evaluate_set  # noqa: E402


def default_models() -> list[str]:
    from loczoo.registry import list_entries

    return [e.name for e in list_entries() if e.task == "localization" and e.default_preset]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", help="presets, entries or run folders")
    add_data_arguments(parser)
    args = parser.parse_args()

    import tensorflow as tf

    from loczoo.bundle import load_bundle

    bundles = [load_bundle(m) for m in (args.models or default_models())]
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, batch {BATCH}; chance = "
          f"Jaccard of random positions at the same count; RMSE and efficiency at 250 nm")
    print("| data | method | Jaccard @250 nm (chance) | Jaccard @100 nm (chance) | RMSE nm | "
          "efficiency | ms/frame | parameters |")
    print("|---|---|---|---|---|---|---|---|")
    notes = []
    for name in args.sets:
        for bundle in bundles:
            row = evaluate_set(bundle, name, args.data, args.frames)
            notes += [f"{name}, {bundle.source}: {note}" for note in row["notes"]]
            a, b = row[250.0], row[100.0]
            print(f"| {name} | {bundle.source} | {a['jaccard']:.3f} ({row['chance250']:.3f}) | "
                  f"{b['jaccard']:.3f} ({row['chance100']:.3f}) | {a['rmse_lateral']:.1f} | "
                  f"{a['efficiency_lateral']:.1f} | {row['ms']:.1f} | "
                  f"{bundle.model.count_params():,} |")
            sys.stdout.flush()
        for label, ji, rmse, ms in PICASSO.get(name, []):
            print(f"| {name} | {label} | {ji:.2f} | | {rmse} | | {ms} | |")
    for note in notes:
        print(f"\nnote: {note}")


if __name__ == "__main__":
    main()
