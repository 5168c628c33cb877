"""DECODE checks on simulated data: coordinate bias in x, y (and z), RMSE next to the
Cramér-Rao bound at low density, whether the predicted sigmas match the actual errors, and
speed (ms per frame, GFLOP per frame, achieved GFLOP/s).

    python benchmarks/decode.py [--model decode/sim-dense-100nm] [--frames 200]

Frames are 64 x 64 px sequences from the model's own imaging configuration (blinking, the
same camera), at 0.3 emitters/um^2 and fixed photons and background per row.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZE = 64
CONDITIONS = ((1000, 20), (2500, 20), (5000, 20), (2500, 100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="decode", help="preset, entry or run folder")
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()

    from dataclasses import replace

    import numpy as np

    from loczoo.bundle import load_bundle
    from loczoo.flops import conv_flops
    from loczoo.smlm.metrics import crlb_astigmatic_psf, match
    from loczoo.smlm.simulate import simulate_stack

    bundle = load_bundle(args.model)
    config = bundle.config
    is_3d = config.predict_z
    sigma0 = float(np.mean(config.imaging.psf_sigma_nm))
    print(f"model: {bundle.source}; {args.frames} frames of {SIZE} x {SIZE} px, 0.3 "
          f"emitters/um^2, in-focus PSF sigma {sigma0:.0f} nm, CRLB as the root mean square "
          f"over z"
          + (f", z uniform in {config.imaging.z_range_nm} nm" if is_3d else ""))
    axes = ("x", "y", "z") if is_3d else ("x", "y")
    header = ["photons", "background", "emitters", "Jaccard"]
    header += [f"bias {a} nm" for a in axes] + [f"RMSE {a} nm" for a in axes]
    header += [f"CRLB {a} nm" for a in axes] + [f"RMSE/CRLB {a}" for a in axes]
    header += [f"std(err/sigma) {a}" for a in axes]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    timing = None
    for photons, background in CONDITIONS:
        imaging = replace(config.imaging, density_per_um2=(0.3, 0.3),
                          photon_distribution="uniform", photon_params=(photons, photons),
                          psf_sigma_nm=(sigma0, sigma0),
                          background_photons=(background, background),
                          background_field_fraction=0.0)
        stack, truth = simulate_stack(imaging, args.frames, SIZE, SIZE, seed=1)
        start = time.perf_counter()
        locs = bundle.localize(stack, pixel_size_nm=imaging.pixel_size_nm, batch_size=16)
        elapsed = time.perf_counter() - start
        if timing is None:  # the first run includes tracing; time the second
            locs = bundle.localize(stack, pixel_size_nm=imaging.pixel_size_nm, batch_size=16)
            timing = (time.perf_counter() - start - elapsed) / args.frames
        m = match(truth, locs, 250.0)
        errors = {"x": m.dx, "y": m.dy, "z": m.dz}
        sigmas = {"x": locs.sigma_x[m.pred_index], "y": locs.sigma_y[m.pred_index],
                  "z": locs.sigma_z[m.pred_index]}
        jaccard = m.tp / max(1, m.tp + m.fp + m.fn)
        # The bound's root mean square over the simulated z range (z = 0 in 2D).
        z_grid = np.linspace(*imaging.z_range_nm, 31)
        bounds = crlb_astigmatic_psf(photons, sigma0, imaging.pixel_size_nm, background,
                                     z_nm=z_grid, astigmatism=imaging.astigmatism,
                                     excess_noise=imaging.camera.excess_noise_factor)
        crlb = {a: float(np.sqrt(np.mean(bounds[a] ** 2))) for a in axes}
        row = [photons, background, m.tp + m.fn, f"{jaccard:.3f}"]
        row += [f"{np.mean(errors[a]):+.2f}" for a in axes]
        rmse = {a: float(np.sqrt(np.mean(errors[a] ** 2))) for a in axes}
        row += [f"{rmse[a]:.1f}" for a in axes]
        row += [f"{crlb[a]:.1f}" for a in axes] + [f"{rmse[a] / crlb[a]:.2f}" for a in axes]
        row += [f"{np.std(errors[a] / sigmas[a]):.2f}" for a in axes]
        print("| " + " | ".join(str(v) for v in row) + " |")

    model = bundle.model
    per_frame = sum(conv_flops(model.get_layer(name), shape) for name, shape in (
        ("shared_unet", (SIZE, SIZE, 1)),
        ("union_unet", (SIZE, SIZE, 3 * config.inter_features)),
        ("heads", (SIZE, SIZE, config.inter_features))))
    print(f"\nspeed: {1000 * timing:.1f} ms per {SIZE} x {SIZE} frame (batch 16, shared U-Net "
          f"once per frame), {per_frame / 1e9:.2f} GFLOP per frame, "
          f"{per_frame / timing / 1e9:.1f} GFLOP/s achieved; {os.cpu_count()} CPU cores")
    print("std(err/sigma) near 1 means the predicted uncertainties match the actual errors.")


if __name__ == "__main__":
    main()
