"""Simulator speed: loczoo's batched TensorFlow simulator against a straightforward NumPy
renderer of the same model (one emitter at a time), 64 x 64 frames at 6 emitters/um^2.

    python benchmarks/simulator.py [--frames 4096] [--batch 256]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from scipy.special import erf  # noqa: E402


def numpy_simulate(rng, n_frames, height, width, imaging):
    """The same physics, written the obvious way: a Python loop over frames and emitters."""
    px = imaging.pixel_size_nm
    cam = imaging.camera
    margin = imaging.margin_px * px
    area = (height * px + 2 * margin) * (width * px + 2 * margin) * 1e-6
    edges_x = np.arange(width + 1) * px
    edges_y = np.arange(height + 1) * px
    frames = np.empty((n_frames, height, width), np.float32)
    for f in range(n_frames):
        density = rng.uniform(*imaging.density_per_um2)
        image = np.full((height, width), rng.uniform(*imaging.background_photons))
        for _ in range(rng.poisson(density * area)):
            x = rng.uniform(-margin, width * px + margin)
            y = rng.uniform(-margin, height * px + margin)
            photons = rng.uniform(*imaging.photon_params)
            s = rng.uniform(*imaging.psf_sigma_nm) * np.sqrt(2)
            fx = np.diff(0.5 * erf((edges_x - x) / s))
            fy = np.diff(0.5 * erf((edges_y - y) / s))
            image += photons * np.outer(fy, fx)
        electrons = rng.poisson(cam.qe * image) + cam.read_noise_e * rng.standard_normal(
            image.shape)
        frames[f] = np.clip(np.round(electrons / cam.e_per_adu + cam.baseline_adu), 0,
                            cam.saturation_adu)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=4096)
    parser.add_argument("--numpy-frames", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    import tensorflow as tf

    from loczoo.smlm.simulate import ImagingConfig, simulate

    imaging = ImagingConfig(density_per_um2=(6.0, 6.0), photon_params=(2000.0, 2500.0),
                            psf_sigma_nm=(106.0, 115.0), background_photons=(20.0, 20.0))
    size = 64
    step = tf.function(lambda i: simulate(tf.stack([tf.constant(0, tf.int64), i]), args.batch,
                                          size, size, imaging)["frames"])
    step(tf.constant(0, tf.int64)).numpy()  # trace once
    start = time.perf_counter()
    done = 0
    while done < args.frames:
        step(tf.constant(done, tf.int64)).numpy()
        done += args.batch
    tf_fps = done / (time.perf_counter() - start)

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    numpy_simulate(rng, args.numpy_frames, size, size, imaging)
    np_fps = args.numpy_frames / (time.perf_counter() - start)

    print(f"64 x 64 frames, 6 emitters/um^2 ({6 * 6.4 * 6.4:.0f} per frame, "
          f"{imaging.expected_emitters(size, size):.0f} with the {imaging.margin_px:g} px margin),"
          f" {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}")
    print("| simulator | frames/s |")
    print("|---|---|")
    print(f"| loczoo TensorFlow, batch {args.batch} | {tf_fps:,.0f} |")
    print(f"| NumPy, one emitter at a time | {np_fps:,.0f} |")
    print(f"| ratio | {tf_fps / np_fps:.1f}x |")


if __name__ == "__main__":
    main()
