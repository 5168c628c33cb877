"""Coordinate bias and precision of a pretrained localization model on simulated isolated
emitters, next to the Cramér-Rao bound (Mortensen MLE) for the same photons and background.

    python benchmarks/bias.py [--model deep_storm] [--frames 200]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="deep_storm")
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()

    from loczoo.bundle import load_bundle
    from loczoo.calibration import isolated_emitter_errors
    from loczoo.smlm.metrics import mortensen_mle_precision

    bundle = load_bundle(args.model)
    print(f"model: {bundle.source}; {args.frames} frames of 64 x 64 px, 0.3 emitters/um^2, "
          "PSF sigma 110 nm")
    print("| photons | background | emitters | Jaccard | bias x nm | bias y nm | RMSE x nm | "
          "RMSE y nm | CRLB x nm (MLE) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for photons, background in ((1000, 20), (2500, 20), (5000, 20), (2500, 100)):
        m, imaging = isolated_emitter_errors(bundle, args.frames, photons, background)
        crlb = mortensen_mle_precision(photons, 110.0, imaging.pixel_size_nm, background)
        print(f"| {photons} | {background} | {m['tp'] + m['fn']} | {m['jaccard']:.3f} | "
              f"{m['bias_x']:+.2f} | {m['bias_y']:+.2f} | {m['rmse_x']:.1f} | "
              f"{m['rmse_y']:.1f} | {float(crlb):.1f} |")


if __name__ == "__main__":
    main()
