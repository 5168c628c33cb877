"""Accuracy and speed of a pretrained localization model on real data made by other groups
(../shared/data: the Deep-STORM demo 1 stack and the NAIRR-SMLM 2D Gaussian LD/MD/HD sets),
with the SMLM-challenge metrics, the chance level and the Picasso baseline of the data README.

    python benchmarks/accuracy.py [--model deep_storm] [--frames N] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SETS = {
    "deepstorm_demo1": ("deepstorm_demo1/ArtificialDataset_demo1.tif",
                        "deepstorm_demo1/positions_demo1.csv"),
    "nairr_LD": ("nairr_smlm/2DGauss_LD/2DGauss_LD_Train_Frame.tif",
                 "nairr_smlm/2DGauss_LD/2DGauss_LD_Train_xy.csv"),
    "nairr_MD": ("nairr_smlm/2DGauss_MD/2DGauss_MD_Train_Frame.tif",
                 "nairr_smlm/2DGauss_MD/2DGauss_MD_Train_xy.csv"),
    "nairr_HD": ("nairr_smlm/2DGauss_HD/2DGauss_HD_Train_Frame.tif",
                 "nairr_smlm/2DGauss_HD/2DGauss_HD_Train_xy.csv"),
}
# From ../shared/data/README.md (picassosr 0.11.3, gausslq, Hungarian matching at 250 nm).
PICASSO = {"deepstorm_demo1": [("Picasso box 3, min net gradient 200", 0.46, 50, 1.1),
                               ("Picasso box 5, min net gradient 300", 0.32, 66, 1.4)]}
PIXEL_NM = 100.0  # all sets (data README); the nairr TIFFs carry no usable pixel size


def evaluate_set(bundle, stack_path, gt_path, max_frames):
    from loczoo.smlm.io import read_localizations, read_stack
    from loczoo.smlm.metrics import chance_jaccard, evaluate

    stack = read_stack(stack_path, PIXEL_NM)
    frames = stack.frames[:max_frames] if max_frames else stack.frames
    truth = read_localizations(gt_path)
    truth = truth.select(truth.frame <= frames.shape[0])
    bundle.localize(frames[:2], pixel_size_nm=PIXEL_NM)  # warm-up (tracing)
    start = time.perf_counter()
    locs = bundle.localize(frames, pixel_size_nm=PIXEL_NM, batch_size=8)
    ms = 1000 * (time.perf_counter() - start) / frames.shape[0]
    fov = (frames.shape[1] * PIXEL_NM, frames.shape[2] * PIXEL_NM)
    row = {"frames": frames.shape[0], "ms": ms, "shape": frames.shape[1:]}
    for tol in (250.0, 100.0):
        m = evaluate(truth, locs, tolerance_nm=tol)
        row[tol] = m
        row[f"chance{tol:g}"] = chance_jaccard(truth, locs, fov, tolerance_nm=tol)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="deep_storm", help="preset, entry or run folder")
    parser.add_argument("--frames", type=int, default=0, help="limit frames per set (0: all)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
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
        stack_rel, gt_rel = SETS[name]
        data = Path(args.data)
        row = evaluate_set(bundle, data / stack_rel, data / gt_rel, args.frames)
        gflop = conv_flops(bundle.model, (*row["shape"], 1)) / 1e9
        a, b = row[250.0], row[100.0]
        print(f"| {name} | {bundle.entry.name} | {row['frames']} | {a['jaccard']:.3f} "
              f"({row['chance250']:.3f}) | {a['rmse_lateral']:.1f} | {b['jaccard']:.3f} "
              f"({row['chance100']:.3f}) | {b['rmse_lateral']:.1f} | "
              f"{a['efficiency_lateral']:.1f} | {row['ms']:.1f} | "
              f"{gflop / (row['ms'] / 1000):.0f} |")
        for label, ji, rmse, ms in PICASSO.get(name, []):
            print(f"| {name} | {label} | 20 | {ji:.2f} | {rmse} | | | | {ms} | |")


if __name__ == "__main__":
    main()
