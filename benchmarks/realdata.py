"""The real data sets of ../shared/data made by other groups (the Deep-STORM demo 1 stack and
the NAIRR-SMLM 2D Gaussian LD/MD/HD sets), the Picasso baseline of the data README, and one
function that localizes a set with a model bundle and scores it. Shared by accuracy.py and
leaderboard.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]


class RealSet(NamedTuple):
    stack: str  # relative to the data folder
    truth: str
    camera: list[str]  # the set's camera as CameraConfig overrides, from the data README


# A camera described by its photon-to-ADU conversion: qe 1 and no EM gain, so e_per_adu is
# photons per ADU.
_DEMO1_CAMERA = ["qe=1", "em_gain=null", f"e_per_adu={1 / 2.07:.4f}", "baseline_adu=95"]
_NAIRR_CAMERA = ["qe=1", "em_gain=null", "e_per_adu=1", "baseline_adu=500"]
SETS = {
    "deepstorm_demo1": RealSet("deepstorm_demo1/ArtificialDataset_demo1.tif",
                               "deepstorm_demo1/positions_demo1.csv", _DEMO1_CAMERA),
    **{f"nairr_{d}": RealSet(f"nairr_smlm/2DGauss_{d}/2DGauss_{d}_Train_Frame.tif",
                             f"nairr_smlm/2DGauss_{d}/2DGauss_{d}_Train_xy.csv", _NAIRR_CAMERA)
       for d in ("LD", "MD", "HD")},
}
# From ../shared/data/README.md (picassosr 0.11.3, gausslq, Hungarian matching at 250 nm).
PICASSO = {"deepstorm_demo1": [("Picasso box 3, min net gradient 200", 0.46, 50, 1.1),
                               ("Picasso box 5, min net gradient 300", 0.32, 66, 1.4)]}
BATCH = 8
PIXEL_NM = 100.0  # all sets (data README); the nairr TIFFs carry no usable pixel size


def evaluate_set(bundle, name, data_folder, max_frames):
    """Localize the set ``name`` of ``data_folder`` (models that read the camera get the set's)
    and score it at 250 and 100 nm, with the chance level and the time per frame."""
    from loczoo.smlm.io import read_localizations, read_stack
    from loczoo.smlm.metrics import chance_jaccard, evaluate

    real_set = SETS[name]
    bundle = bundle.with_camera(real_set.camera)
    stack = read_stack(Path(data_folder) / real_set.stack, PIXEL_NM)
    frames = stack.frames[:max_frames] if max_frames else stack.frames
    truth = read_localizations(Path(data_folder) / real_set.truth)
    truth = truth.select(truth.frame <= frames.shape[0])
    # Warm-up: trace the two batch shapes of the timed run (full batches and the remainder).
    bundle.localize(frames[:BATCH + frames.shape[0] % BATCH], pixel_size_nm=PIXEL_NM,
                    batch_size=BATCH)
    start = time.perf_counter()
    locs = bundle.localize(frames, pixel_size_nm=PIXEL_NM, batch_size=BATCH)
    ms = 1000 * (time.perf_counter() - start) / frames.shape[0]
    fov = (frames.shape[1] * PIXEL_NM, frames.shape[2] * PIXEL_NM)
    row = {"frames": frames.shape[0], "ms": ms, "shape": frames.shape[1:],
           "notes": bundle.domain_notes(frames)}
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
