"""Fine-tuning benchmark: a shipped preset before and after `loczoo finetune` on the NAIRR-SMLM
2D Gaussian HD training frames (../shared/data), scored on held-apart frames of the same set.

    python benchmarks/finetune.py [--model deep_storm] [--epochs 8] [--steps-per-epoch 100]
                                  [--modes gt sim] [--out runs/finetune_bench]

Frames 1..700 are the fine-tuning data (`--data` with `--gt` for mode ``gt``: the frames and
their ground truth; mode ``sim``: the frames only, for the simulator set to their estimated
imaging conditions); frames 801..1000 are held apart for scoring (emitters persist over a few
frames, so a 100-frame gap keeps them out of the fine-tuning data). The budget is fixed by
epochs x steps per epoch (batches of the entry's batch size); the table gives wall time on this
machine. Prints one table row per model: Jaccard at 250 and 100 nm, RMSE and efficiency.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from realdata import PIXEL_NM, REPO, SETS  # noqa: E402

FINETUNE_FRAMES = (1, 700)  # 1-based, inclusive
HELD_APART = (801, 1000)


def score(model: str, frames, truth, camera: list[str]) -> dict:
    from loczoo.bundle import load_bundle
    from loczoo.smlm.metrics import evaluate

    bundle = load_bundle(model).with_camera(camera)
    locs = bundle.localize(frames, pixel_size_nm=PIXEL_NM, batch_size=8)
    return {tol: evaluate(truth, locs, tolerance_nm=tol) for tol in (250.0, 100.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="deep_storm", help="preset or run folder")
    parser.add_argument("--set", default="nairr_HD", choices=[s for s in SETS if "nairr" in s])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--modes", nargs="+", default=["gt", "sim"], choices=["gt", "sim"])
    parser.add_argument("--out", default=str(REPO / "runs" / "finetune_bench"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from loczoo.smlm.io import read_localizations, read_stack, write_localizations, write_stack
    from loczoo.smlm.trainingdata import TrainingData
    from loczoo.tools import cli

    real = SETS[args.set]
    data = TrainingData(frames=read_stack(Path(args.data) / real.stack, PIXEL_NM).frames,
                        truth=read_localizations(Path(args.data) / real.truth),
                        pixel_size_nm=PIXEL_NM)
    tune = data.subset(np.arange(FINETUNE_FRAMES[0] - 1, FINETUNE_FRAMES[1]))
    test = data.subset(np.arange(HELD_APART[0] - 1, HELD_APART[1]))
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    write_stack(out / "finetune_frames.tif", tune.frames, pixel_size_nm=PIXEL_NM)
    write_localizations(out / "finetune_truth.csv", tune.truth)

    rows = [(args.model, "none (shipped)", "", 0.0)]
    budget = f"{args.epochs} x {args.steps_per_epoch} steps"
    for mode in args.modes:
        run = out / f"finetuned_{mode}"
        argv = ["finetune", args.model, "--out", str(run), "--data",
                str(out / "finetune_frames.tif"), "--epochs", str(args.epochs),
                "--steps-per-epoch", str(args.steps_per_epoch), "--seed", str(args.seed),
                "--quiet"]
        if mode == "gt":
            argv += ["--gt", str(out / "finetune_truth.csv")]
        print("loczoo " + " ".join(argv), flush=True)
        start = time.perf_counter()
        if cli.main(argv) != 0:
            raise SystemExit(f"fine-tuning ({mode}) failed")
        minutes = (time.perf_counter() - start) / 60
        label = ("frames 1-700 with ground truth" if mode == "gt" else
                 "simulator set to frames 1-700 (estimated)")
        rows.append((str(run), label, budget, minutes))

    print(f"\n{args.set}: scored on frames {HELD_APART[0]}-{HELD_APART[1]} "
          f"({len(test.truth)} emitters); fine-tuned on frames {FINETUNE_FRAMES[0]}-"
          f"{FINETUNE_FRAMES[1]}; {os.cpu_count()} CPU cores")
    print("| model | fine-tuning data | budget | minutes | Jaccard @250 nm | Jaccard @100 nm | "
          "RMSE nm | efficiency |")
    print("|---|---|---|---|---|---|---|---|")
    for model, label, budget_text, minutes in rows:
        m = score(model, test.frames, test.truth, real.camera)
        a, b = m[250.0], m[100.0]
        print(f"| {Path(model).name if budget_text else model} | {label} | {budget_text} | "
              f"{minutes:.1f} | {a['jaccard']:.3f} | {b['jaccard']:.3f} | "
              f"{a['rmse_lateral']:.1f} | {a['efficiency_lateral']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
