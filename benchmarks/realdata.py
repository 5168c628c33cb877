"""The real data sets of ../shared/data made by other groups (the Deep-STORM demo 1 stack and
the NAIRR-SMLM 2D Gaussian LD/MD/HD sets), the Picasso baseline of the data README, and one
function that localizes a set with a model bundle and scores it. Shared by accuracy.py and
leaderboard.py."""

from __future__ import annotations

import time
from pathlib import Path

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


def add_data_arguments(parser) -> None:
    """--frames, --data and --sets, the same for every real-data benchmark."""
    parser.add_argument("--frames", type=int, default=0, help="limit frames per set (0: all)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
