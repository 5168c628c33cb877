"""loczoo classify IMAGES... --out probs.csv: run a protein-localization classifier (PLCNN) on
images (TIFF or PNG files, or folders of them) and write a CSV of class probabilities;
``--explain`` also writes a Grad-CAM map beside each image (NAME.gradcam.png). Images in
folders named after the model's classes are also scored against those names."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loczoo.tools.common import import_tensorflow_quietly, standalone

DEFAULT_MODEL = "plcnn"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files (.tif, .png) or folders of them")
    parser.add_argument("--out", required=True, help="CSV of class probabilities to write")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="entry name, ENTRY/PRESET or run folder (default: %(default)s)")
    parser.add_argument("--explain", action="store_true",
                        help="write a Grad-CAM map beside each image as NAME.gradcam.png")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")


def image_paths(arguments: list[str]) -> list[Path]:
    """Files as given; folders expand to their images (sorted, not recursive)."""
    from loczoo.errors import LoczooError
    from loczoo.proteins.folders import IMAGE_SUFFIXES

    paths = []
    for arg in arguments:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.suffix.lower() in IMAGE_SUFFIXES and ".gradcam" not in p.name)
            if not found:
                raise LoczooError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise LoczooError(f"image {path} does not exist")
    return paths


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    import csv

    import numpy as np
    from PIL import Image

    from loczoo.bundle import load_bundle
    from loczoo.errors import LoczooError
    from loczoo.outputs import atomic_path, prepare_output
    from loczoo.plcnn.gradcam import grad_cam, overlay
    from loczoo.plcnn.pipeline import predict_probabilities, square_to_image
    from loczoo.progress import ProgressPrinter
    from loczoo.proteins.folders import read_image

    prepare_output(args.out, args.overwrite)
    if args.batch_size < 1:
        raise LoczooError(f"--batch-size must be >= 1, got {args.batch_size}")
    paths = image_paths(args.images)
    maps = [p.with_name(p.stem + ".gradcam.png") for p in paths] if args.explain else []
    for path in maps:
        prepare_output(path, args.overwrite)
    bundle = load_bundle(args.model)
    if bundle.entry.task != "classification":
        raise LoczooError(f"{args.model} is a {bundle.entry.task} model, not a classifier")
    config = bundle.config
    # Every image is read (and refused by name if unreadable) before anything is written.
    images = [read_image(p) for p in paths]
    for path, image in zip(paths, images):
        if image.shape[-1] != config.channels:
            raise LoczooError(f"image {path} has {image.shape[-1]} channels; the model takes "
                              f"{config.channels}")
    inputs = bundle.entry.preprocess(images, config)
    probabilities = predict_probabilities(
        bundle.model, inputs, args.batch_size,
        ProgressPrinter("classify", unit="images", quiet=args.quiet))
    cams = [grad_cam(bundle.model, inputs[start:start + args.batch_size])
            for start in range(0, len(inputs), args.batch_size)] if args.explain else []

    names = config.class_names
    with atomic_path(args.out) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "predicted", "probability", *(f"p_{c}" for c in names)])
        for path, p in zip(paths, probabilities):
            best = int(np.argmax(p))
            writer.writerow([str(path), names[best], f"{p[best]:.6f}",
                             *(f"{v:.6f}" for v in p)])
    for image, cam, target in zip(images, np.concatenate(cams) if cams else [], maps):
        rgb = overlay(image, square_to_image(cam, *image.shape[:2]))
        with atomic_path(target) as tmp:
            Image.fromarray(rgb).save(tmp, format="PNG")
    counts = np.bincount(probabilities.argmax(axis=1), minlength=len(names))
    summary = ", ".join(f"{c} {n}" for c, n in zip(names, counts) if n)
    print(f"{len(paths)} images classified with {bundle.source}: {summary}")
    folders = [p.parent.name for p in paths]
    if all(f in names for f in folders):  # class folders: score against their names
        correct = sum(names[i] == f for i, f in zip(probabilities.argmax(axis=1), folders))
        print(f"accuracy against the class-folder names: {100 * correct / len(paths):.1f} % "
              f"({correct}/{len(paths)})")
    print(f"probabilities: {args.out}" + (f"; Grad-CAM maps: {len(maps)} PNG files beside the "
                                          f"images" if maps else ""))
    return 0


def main(argv=None) -> int:
    return standalone("classify", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
