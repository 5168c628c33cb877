"""Training speed of every entry on this machine: samples per second of the training step,
its achieved GFLOP/s against the machine's sustained convolution throughput, the share of the
step spent waiting for data, and the simulator's frames per second inside the pipeline.

    python benchmarks/training_speed.py [--entries decode deep_storm ...] [--steps 20]
                                        [--config NAME] [--threads N]

For each entry (its default configuration, or --config), fed by its own simulator:

- step: ``model.train_on_batch`` on one batch held in memory (no data wait), median of
  ``--steps`` after 3 warm-up steps; samples/s = batch / step time.
- GFLOP/s: 3 x the forward convolution FLOPs of a batch (``loczoo.flops.conv_flops``; the
  backward pass costs about twice the forward) over the step time; "% of peak" divides by the
  machine's figure below.
- pipeline: the same steps fed by the entry's own tf.data pipeline (``make_dataset``, the
  simulator for localization entries); data wait = 1 - in-memory step time / pipeline step
  time.
- simulator: batches per second of the pipeline alone (nothing training), as frames (PLCNN:
  cell images) per second.

The machine's sustained convolution throughput: the training step of a plain Keras stack of
3 x 3 convolutions (64 channels, 64 x 64 px, batch 32), in GFLOP/s, measured the same way.
Nothing else should run while it measures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def timed_steps(step, count: int, warmup: int = 3) -> float:
    """Median seconds of ``step()`` over ``count`` calls after ``warmup``."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_conv_gflops(steps: int) -> float:
    """GFLOP/s of the training step of a plain conv stack (the machine's reference)."""
    import keras
    import numpy as np

    size, channels, layers, batch = 64, 64, 6, 32
    inputs = keras.Input((size, size, channels))
    x = inputs
    for _ in range(layers):
        x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
    model = keras.Model(inputs, x)
    model.compile(optimizer="adam", loss="mse")
    data = np.random.default_rng(0).random((batch, size, size, channels), np.float32)
    seconds = timed_steps(lambda: model.train_on_batch(data, data), steps)
    flops = 3 * layers * 2.0 * 9 * channels * channels * size * size * batch
    return flops / seconds / 1e9


def entry_speed(name: str, config_name: str | None, steps: int) -> dict:
    from loczoo.config import named_config
    from loczoo.flops import conv_flops
    from loczoo.registry import get_entry

    entry = get_entry(name)
    config = named_config(entry.config_cls, config_name or "default")
    config = entry.prepare_config(config, None, 0)
    dataset = entry.make_dataset(config, "train", seed=0)   # the simulator
    model = entry.build_model(config)
    model.compile(optimizer=entry.optimizer(config), loss=entry.make_loss(config))
    iterator = iter(dataset)
    x, y = next(iterator)
    batch = int(x.shape[0])
    in_memory = timed_steps(lambda: model.train_on_batch(x, y), steps)

    def fed_step():
        xb, yb = next(iterator)
        model.train_on_batch(xb, yb)

    fed = timed_steps(fed_step, steps)
    data_only = timed_steps(lambda: next(iterator), steps)
    flops = 3 * conv_flops(model, tuple(x.shape[1:])) * batch
    # Simulated frames (images for PLCNN) per batch: DECODE's windows hold 3 frames each.
    frames = batch * (x.shape[-1] if name == "decode" else 1)
    return {"entry": name, "batch": batch, "input": "x".join(str(v) for v in x.shape[1:]),
            "step_s": in_memory, "samples_s": batch / in_memory,
            "gflops": flops / in_memory / 1e9, "wait": max(0.0, 1.0 - in_memory / fed),
            "sim_fps": frames / data_only}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", nargs="+",
                        default=["decode", "deep_storm", "deepcel0", "dsir", "subpixel_dt",
                                 "plcnn"])
    parser.add_argument("--config", help="named configuration of every entry (default: its "
                                         "default)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, help="intra-op threads (default: TF's choice)")
    args = parser.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    peak = peak_conv_gflops(args.steps)
    print(f"machine: plain 3 x 3 conv stack training step {peak:.1f} GFLOP/s "
          f"({os.cpu_count()} CPUs)")
    print("| entry | batch | input | step s | samples/s | GFLOP/s | % of peak | data wait | "
          "simulator frames/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.entries:
        r = entry_speed(name, args.config, args.steps)
        print(f"| {r['entry']} | {r['batch']} | {r['input']} | {r['step_s']:.3f} | "
              f"{r['samples_s']:.1f} | {r['gflops']:.1f} | {100 * r['gflops'] / peak:.0f} % | "
              f"{100 * r['wait']:.0f} % | {r['sim_fps']:.0f} |")


if __name__ == "__main__":
    main()
