"""loczoo classify IMAGES... --out probs.csv: run a protein-localization classifier (PLCNN) on
images (TIFF or PNG files, or folders of them) and write a CSV of class probabilities;
``--explain`` also writes a Grad-CAM map of each image into a folder of its own (never into the
image folders, which are often a training set). Images in folders named after the model's
classes are also scored against those names."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loczoo.tools.common import import_tensorflow_quietly, number, standalone

DEFAULT_MODEL = "plcnn"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+",
                        help="image files (.tif, .png) or folders of them (with sub-folders, "
                             "e.g. one per class)")
    parser.add_argument("--out", required=True, help="CSV of class probabilities to write")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="entry name, ENTRY/PRESET or run folder (default: %(default)s)")
    parser.add_argument("--explain", nargs="?", const="", metavar="FOLDER",
                        help="write a Grad-CAM map of each image as FOLDER/CLASS_FOLDER/"
                             "IMAGE_NAME.png (FOLDER default: beside --out, named after it "
                             "with _gradcam)")
    parser.add_argument("--batch-size", type=number(int, min=1, max=4096), default=8,
                        help="images per network call")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out (and the --explain folder) if loczoo wrote them")
    parser.add_argument("--quiet", action="store_true")


def image_paths(arguments: list[str]) -> list[Path]:
    """Files as given; folders expand to the images in them and in their sub-folders (class
    folders), sorted; hidden files and folders are skipped."""
    from loczoo.errors import LoczooError
    from loczoo.proteins.folders import IMAGE_SUFFIXES

    paths = []
    for arg in arguments:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                           and p.is_file() and not any(part.startswith(".") for part in
                                                       p.relative_to(path).parts))
            if not found:
                raise LoczooError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise LoczooError(f"image {path} does not exist")
    return paths


def explanation_names(paths: list[Path]) -> list[str]:
    """``FOLDER_NAME/IMAGE_NAME.png`` for each image (its class folder kept, its suffix in the
    name, so that a.tif and a.png get separate maps); two images with one name are refused."""
    from loczoo.errors import LoczooError

    names, seen = [], {}
    for path in paths:
        name = f"{path.parent.name or 'images'}/{path.name}.png"
        if name in seen:
            raise LoczooError(f"--explain: images {seen[name]} and {path} would get the same "
                              f"map {name}; classify them in separate calls")
        seen[name] = path
        names.append(name)
    return names


def run(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    import csv

    import numpy as np
    from PIL import Image

    from loczoo.bundle import load_bundle
    from loczoo.errors import LoczooError
    from loczoo.outputs import atomic_folder, atomic_path, prepare_folder_output, prepare_output
    from loczoo.progress import ProgressPrinter
    from loczoo.proteins.folders import read_image
    from loczoo.proteins.images import overlay

    inputs = [*args.images, args.model]
    prepare_output(args.out, args.overwrite, inputs=inputs, suffixes=(".csv",))
    paths = image_paths(args.images)
    explain_folder, maps = None, []
    if args.explain is not None:
        explain_folder = Path(args.explain or Path(args.out).with_suffix("").as_posix()
                              + "_gradcam")
        prepare_folder_output(explain_folder, args.overwrite, inputs=inputs)
        maps = explanation_names(paths)
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
    if maps and bundle.entry.explain is None:
        raise LoczooError(f"--explain: {args.model} ({bundle.entry.name}) gives no "
                          f"explanation maps")
    probabilities = bundle.classify(images, args.batch_size,
                                    ProgressPrinter("classify", unit="images", quiet=args.quiet))
    heat = bundle.explain(images, args.batch_size) if maps else []

    names = config.class_names
    with atomic_path(args.out) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "predicted", "probability", *(f"p_{c}" for c in names)])
        for path, p in zip(paths, probabilities):
            best = int(np.argmax(p))
            writer.writerow([str(path), names[best], f"{p[best]:.6f}",
                             *(f"{v:.6f}" for v in p)])
    if explain_folder is not None:
        with atomic_folder(explain_folder, kind="Grad-CAM maps") as folder:
            for image, explanation, name in zip(images, heat, maps):
                rgb = overlay(image, explanation)
                (folder / name).parent.mkdir(exist_ok=True)
                Image.fromarray(rgb).save(folder / name, format="PNG")
    counts = np.bincount(probabilities.argmax(axis=1), minlength=len(names))
    summary = ", ".join(f"{c} {n}" for c, n in zip(names, counts) if n)
    print(f"{len(paths)} images classified with {bundle.source}: {summary}")
    folders = [p.parent.name for p in paths]
    if all(f in names for f in folders):  # class folders: score against their names
        correct = sum(names[i] == f for i, f in zip(probabilities.argmax(axis=1), folders))
        print(f"accuracy against the class-folder names: {100 * correct / len(paths):.1f} % "
              f"({correct}/{len(paths)})")
    print(f"probabilities: {args.out}" + (f"; Grad-CAM maps: {len(maps)} PNG files in "
                                          f"{explain_folder}/" if maps else ""))
    return 0


def main(argv=None) -> int:
    return standalone("classify", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
