"""The per-experiment 3D workflow, measured: calibrate the PSF from a bead stack, fine-tune a 3D
DECODE preset for the experiment, localize, score. On the NAIRR-SMLM 3D astigmatic training
splits (../shared/data/nairr_smlm/3DAS_{LD,MD}).

    python benchmarks/psf_workflow.py [--model decode/sim-3d-smlm2016] [--epochs 14]
                                      [--steps-per-epoch 100] [--learning-rate LR]
                                      [--out runs/psf_workflow]

1. A bead z-stack is simulated with loczoo's simulator and the PSF the data's generator
   published (../shared/data/README.md: sigma0 140 / 135 nm, foci -/+205 nm, depth 290 nm,
   third- and fourth-order terms): 3 beads at different heights, z -700..700 nm in 20 nm steps,
   20,000 photons, 30 photons of background, the data's camera (1 photon/ADU above 500 ADU,
   Gaussian noise of variance 20).
   The PSF parameters are not typed into the workflow: they come out of step 2.
2. ``loczoo calibrate-psf beads.tif --z-step 20 --camera scmos --camera read_noise_e=4.5
   --camera baseline_adu=500`` (the data's camera, from its README).
3. ``loczoo finetune MODEL --psf psf.json --camera ... --data 3DAS_LD frames`` (the simulator
   set to the imaging conditions estimated from the raw LD frames, no ground truth), for the
   given budget.
4. ``loczoo localize`` both splits with the fine-tuned model (and, for comparison, the preset
   with the data's camera), scored per frame (Hungarian, 250 nm lateral / 500 nm axial) and
   over the whole movie (RMSMD and RMSMD-P against the distinct emitters, methods.md 6.2).

Prints one table row per model and split. The wall time of steps 2-3 is printed too.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
# The data README's camera: 1 ADU per photon above 500 ADU, Gaussian noise of variance 20.
CAMERA = ["scmos", "read_noise_e=4.5", "baseline_adu=500"]
PIXEL_NM = 100.0
# The generator's PSF as published with the data (only used to simulate the beads).
PUBLISHED = {"sigma0_x_nm": 140.0, "sigma0_y_nm": 135.0, "focus_x_nm": -205.0,
             "focus_y_nm": 205.0, "depth_nm": 290.0, "a_x": 0.05, "b_x": 0.03, "a_y": -0.01,
             "b_y": 0.02}


def simulate_beads(path: Path, seed: int = 0) -> None:
    """3 beads at heights -40, 0, +60 nm imaged at stage z -700..700 nm in 20 nm steps (a bead
    at height h is at PSF z = stage z - h), with the data's camera (offset 500, 1 ADU per
    photon, Gaussian noise of variance 20)."""
    import math

    import tensorflow as tf

    from loczoo.smlm import simulate as S
    from loczoo.smlm.io import write_stack

    stage = np.arange(-700.0, 700.0 + 1e-6, 20.0, dtype=np.float32)
    beads = np.array([[1500.0, 1400.0], [3800.0, 1600.0], [2600.0, 3900.0]], np.float32)
    heights = np.array([-40.0, 0.0, 60.0], np.float32)
    camera = S.CameraConfig(qe=1.0, read_noise_e=math.sqrt(20.0), e_per_adu=1.0,
                            baseline_adu=500.0)
    imaging = S.ImagingConfig(pixel_size_nm=PIXEL_NM, background_photons=(30.0, 30.0),
                              camera=camera)
    n, m = len(stage), len(beads)
    z = stage[:, None] - heights[None, :]
    sx, sy = S.astigmatic_sigmas(z, tf.ones([n, m]), S.AstigmatismConfig(**PUBLISHED))
    emitters = {"x": tf.constant(np.tile(beads[None, :, 0], (n, 1))),
                "y": tf.constant(np.tile(beads[None, :, 1], (n, 1))),
                "photons": tf.fill([n, m], 20000.0), "exists": tf.ones([n, m], tf.bool),
                "sigma_x": sx, "sigma_y": sy}
    out = S.simulate_frames(tf.constant([seed, 0], tf.int64), emitters, 56, 56, imaging)
    write_stack(path, out["frames"].numpy(), pixel_size_nm=PIXEL_NM, overwrite=True)


def distinct_emitters(csv_path: Path):
    """Positions [M, 3] (nm) of the distinct emitters and their activation counts, from the
    data's ``Emitter`` column (an emitter keeps its position while it persists)."""
    data = np.genfromtxt(csv_path, delimiter=",", names=True)
    ids = data["Emitter"].astype(int)
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    xyz = np.stack([data["x_nm"], data["y_nm"], data["z_nm"]], axis=1)
    sums = np.zeros((len(unique), 3))
    np.add.at(sums, inverse, xyz)
    return sums / counts[:, None], counts


def score(model: str, split: str, data: Path) -> dict:
    from loczoo.bundle import load_bundle
    from loczoo.smlm.io import read_localizations, read_stack
    from loczoo.smlm.metrics import evaluate, match, rmsmd, rmsmd_p

    folder = data / "nairr_smlm" / f"3DAS_{split}"
    frames = read_stack(folder / f"3DAS_{split}_Train_Frame.tif", PIXEL_NM).frames
    truth = read_localizations(folder / f"3DAS_{split}_Train_xyz.csv")
    bundle = load_bundle(model).with_camera(CAMERA)
    start = time.time()
    locs = bundle.localize(frames, pixel_size_nm=PIXEL_NM, batch_size=8)
    ms = 1000 * (time.time() - start) / len(frames)
    r = evaluate(truth, locs, tolerance_nm=250.0, axial_tolerance_nm=500.0)
    m = match(truth, locs, tolerance_nm=250.0, axial_tolerance_nm=500.0)
    ratios = {}
    for axis, err in (("x", m.dx), ("y", m.dy), ("z", m.dz)):
        sigma = getattr(locs, f"sigma_{axis}")[m.pred_index] if locs.has(f"sigma_{axis}") else None
        ratios[axis] = float(np.std(err / sigma)) if sigma is not None and len(err) else np.nan
    emitters, activations = distinct_emitters(folder / f"3DAS_{split}_Train_xyz.csv")
    estimates = np.stack([locs.x, locs.y, locs.z], axis=1) if len(locs) else np.zeros((0, 3))
    whole = rmsmd(estimates, emitters) if len(locs) else np.nan
    partitioned = (rmsmd_p(estimates, emitters, activations)
                   if len(locs) and len(locs) * len(emitters) <= 20_000_000 else np.nan)
    return {**r, "ratios": ratios, "rmsmd": whole, "rmsmd_p": partitioned, "ms": ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="decode/sim-3d-smlm2016")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--learning-rate", type=float,
                        help="fine-tuning learning rate (default: finetune's, a tenth of the "
                             "preset's)")
    parser.add_argument("--out", default=str(REPO / "runs" / "psf_workflow"))
    parser.add_argument("--splits", nargs="+", default=["LD", "MD"])
    parser.add_argument("--score-only", action="store_true",
                        help="score an existing fine-tuned run in OUT/run")
    args = parser.parse_args()

    from loczoo.tools import cli

    out, data = Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    run = out / "run"
    if not args.score_only:
        simulate_beads(out / "beads.tif")
        start = time.time()
        assert cli.main(["calibrate-psf", str(out / "beads.tif"), "--z-step", "20",
                         *sum((["--camera", c] for c in CAMERA), []), "--out",
                         str(out / "psf.json"), "--plot", str(out / "psf.png"),
                         "--overwrite"]) == 0
        calibrated = time.time() - start
        stack = data / "nairr_smlm" / "3DAS_LD" / "3DAS_LD_Train_Frame.tif"
        assert cli.main(["finetune", args.model, "--psf", str(out / "psf.json"),
                         *sum((["--camera", c] for c in CAMERA), []), "--data", str(stack),
                         "--pixel-size", str(PIXEL_NM), "--epochs", str(args.epochs),
                         "--steps-per-epoch", str(args.steps_per_epoch), "--out", str(run),
                         "--overwrite", *(["--learning-rate", str(args.learning_rate)]
                                          if args.learning_rate else [])]) == 0
        print(f"calibration {calibrated:.0f} s, calibration + fine-tuning "
              f"{(time.time() - start) / 60:.1f} min ({args.epochs} x {args.steps_per_epoch} "
              f"steps)")
    print("| split | model | Jaccard 250/500 nm | recall | RMSE lat nm | RMSE ax nm | "
          "bias x/y/z nm | std(err/sigma) x/y/z | RMSMD nm | RMSMD-P nm | ms/frame |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for split in args.splits:
        for name, model in (("preset " + args.model, args.model), ("fine-tuned", str(run))):
            r = score(model, split, data)
            q = r["ratios"]
            print(f"| {split} | {name} | {r['jaccard']:.3f} | {r['recall']:.3f} | "
                  f"{r['rmse_lateral']:.1f} | {r['rmse_axial']:.1f} | {r['bias_x']:+.1f} / "
                  f"{r['bias_y']:+.1f} / {r['bias_z']:+.1f} | {q['x']:.2f} / {q['y']:.2f} / "
                  f"{q['z']:.2f} | {r['rmsmd']:.1f} | {r['rmsmd_p']:.1f} | {r['ms']:.1f} |")


if __name__ == "__main__":
    main()
