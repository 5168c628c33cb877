"""Accuracy and speed of a pretrained localization model on real data made by other groups
(../shared/data: the Deep-STORM demo 1 stack and the NAIRR-SMLM 2D Gaussian LD/MD/HD sets),
with the SMLM-challenge metrics, the chance level and the Picasso baseline of the data README.

    python benchmarks/accuracy.py [--model deep_storm] [--frames N] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from realdata import PICASSO, add_data_arguments, evaluate_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="deep_storm", help="preset, entry or run folder")
    add_data_arguments(parser)
    args = parser.parse_args()

    import tensorflow as tf

    from loczoo.bundle import load_bundle
    from loczoo.flops import conv_flops

    bundle = load_bundle(args.model)
    params = bundle.model.count_params()
    print(f"model: {bundle.source}, {params:,} parameters, threshold "
          f"{bundle.config.threshold}, TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores")
    print("| data | method | frames | Jaccard @250 nm (chance) | RMSE @250 nm | "
          "Jaccard @100 nm (chance) | RMSE @100 nm | efficiency @250 | ms/frame | GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.sets:
        row = evaluate_set(bundle, name, args.data, args.frames)
        gflop = conv_flops(bundle.model, (*row["shape"], 1)) / 1e9
        a, b = row[250.0], row[100.0]
        print(f"| {name} | {bundle.entry.name} | {row['frames']} | {a['jaccard']:.3f} "
              f"({row['chance250']:.3f}) | {a['rmse_lateral']:.1f} | {b['jaccard']:.3f} "
              f"({row['chance100']:.3f}) | {b['rmse_lateral']:.1f} | "
              f"{a['efficiency_lateral']:.1f} | {row['ms']:.1f} | "
              f"{gflop / (row['ms'] / 1000):.0f} |")
        for note in row["notes"]:
            print(f"note: {note}")
        for label, ji, rmse, ms in PICASSO.get(name, []):
            print(f"| {name} | {label} | 20 | {ji:.2f} | {rmse} | | | | {ms} | |")


if __name__ == "__main__":
    main()
