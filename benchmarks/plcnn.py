"""Accuracy and speed of a PLCNN model on held-out synthetic cells (loczoo.proteins.simulate,
seeds the training streams never use): overall and per-class accuracy, the confusion matrix and
ms per image. Synthetic cells are a smoke test of the pipeline, not a benchmark of real
protein localization.

    python benchmarks/plcnn.py [--model plcnn] [--images 400]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HELD_OUT_SEED = 918_273  # not a training stream seed (those are seed + 0 or + 7,919)


def held_out_predictions(bundle, images: int, batch_size: int = 16):
    """(labels, predicted classes, ms per image) on ``images`` held-out synthetic cells."""
    import numpy as np

    from loczoo.proteins.images import cell_imaging, predict_probabilities
    from loczoo.proteins.simulate import balanced_labels, simulate_cells

    config = bundle.config
    labels = np.asarray(balanced_labels(images, config.n_classes, [HELD_OUT_SEED, 1]))
    cells = np.asarray(simulate_cells([HELD_OUT_SEED, 2], labels, cell_imaging(config))["images"])
    bundle.model(cells[:batch_size], training=False)  # warm-up
    start = time.perf_counter()
    predicted = predict_probabilities(bundle.model, cells, batch_size).argmax(axis=1)
    return labels, predicted, 1000 * (time.perf_counter() - start) / len(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="plcnn", help="preset, entry or run folder")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from loczoo.bundle import load_bundle
    from loczoo.crossval import summarize

    bundle = load_bundle(args.model)
    config = bundle.config
    labels, predicted, ms = held_out_predictions(bundle, args.images, args.batch_size)
    s = summarize(labels, predicted, [np.mean(labels == predicted)], config.class_names)
    print(f"model: {bundle.source}; {args.images} synthetic cells of {config.input_size} px, "
          f"batch {args.batch_size}, TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores")
    print(f"accuracy {100 * s['overall_accuracy']:.1f} %, {ms:.1f} ms per image; confusion rows: "
          "true class, columns: predicted")
    print("| class | accuracy % | " + " | ".join(config.class_names) + " |")
    print("|---|---|" + "---|" * config.n_classes)
    for name, row in zip(config.class_names, s["confusion"]):
        print(f"| {name} | {100 * s['per_class_accuracy'][name]:.1f} | "
              + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
