"""Stratified k-fold cross-validation of any classification entry (the PLCNN paper's CHO
protocol): one run folder per fold (``loczoo.training.train``), then every image's prediction
from the fold that held it out, the accuracy per fold (mean and spread), per class, and the
confusion matrix (CSV and PNG)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from loczoo.bundle import load_bundle
from loczoo.errors import LoczooError
from loczoo.outputs import atomic_folder, atomic_path, prepare_folder_output
from loczoo.proteins.images import LabelledImages, predict_probabilities, stratified_folds
from loczoo.registry import ZooEntry
from loczoo.training import train


def cross_validate(entry: ZooEntry, config, source: LabelledImages, out, *, folds: int,
                   steps_per_epoch: int, epochs: int, seed: int = 0, quiet: bool = False,
                   data_description: str = "", command: str = "",
                   overwrite: bool = False) -> dict:
    """Train ``folds`` models, each validated on (and then predicting) one stratified fold.
    Writes ``out`` (through a temporary folder, renamed at the end; an existing ``out`` is
    replaced only with ``overwrite`` and after every check): fold_01 ... run folders,
    ``predictions.csv``, ``confusion.csv``, ``confusion.png`` and ``summary.json``; returns the
    summary."""

    if entry.task != "classification":
        raise LoczooError(f"cross-validation is for classification entries; {entry.name} is a "
                          f"{entry.task} entry")
    out = prepare_folder_output(out, overwrite)
    config = entry.prepare_config(config, source, seed)  # the data's classes and channels
    held_out = stratified_folds(source.labels, folds, seed)
    with atomic_folder(out, kind="cross-validation") as partial:
        summary = _run_folds(entry, config, source, partial, held_out, steps_per_epoch,
                             epochs, seed, quiet, data_description, command)
    return summary


def _run_folds(entry, config, source, partial: Path, held_out, steps_per_epoch, epochs, seed,
               quiet, data_description, command) -> dict:
    folds = len(held_out)
    probabilities = np.zeros((len(source.labels), config.n_classes), np.float32)
    fold_of = np.zeros(len(source.labels), int)
    accuracies = []
    for k, indices in enumerate(held_out, 1):
        if not quiet:
            print(f"fold {k}/{folds}: {len(indices)} images held out")
        folder = train(entry, config, partial / f"fold_{k:02d}",
                       source=replace(source, validation=indices),
                       steps_per_epoch=steps_per_epoch, epochs=epochs,
                       validation_steps=math.ceil(len(indices) / config.batch_size),
                       seed=seed + k, quiet=quiet, data_description=data_description,
                       command=command)
        # The fold's images are already at the network's input (``fit_to_square``).
        probabilities[indices] = predict_probabilities(
            load_bundle(str(folder)).model, source.images[indices], config.batch_size)
        fold_of[indices] = k
        accuracies.append(float(np.mean(probabilities[indices].argmax(1)
                                        == source.labels[indices])))
    summary = summarize(source.labels, probabilities.argmax(1), accuracies, config.class_names)
    _write_predictions(partial / "predictions.csv", source, fold_of, probabilities,
                       config.class_names)
    _write_confusion(partial, summary["confusion"], config.class_names)
    with atomic_path(partial / "summary.json") as tmp:
        tmp.write_text(json.dumps({**summary, "data": data_description, "command": command,
                                   "folds": folds, "seed": seed}, indent=2) + "\n")
    return summary


def summarize(truth, predicted, fold_accuracies, class_names) -> dict:
    """Accuracy per fold (mean, sample standard deviation), per class (recall over all folds)
    and the confusion matrix (rows: true class, columns: predicted)."""
    n = len(class_names)
    confusion = np.zeros((n, n), int)
    np.add.at(confusion, (np.asarray(truth), np.asarray(predicted)), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    acc = np.asarray(fold_accuracies, float)
    return {"accuracy_mean": float(acc.mean()),
            "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "fold_accuracies": acc.tolist(),
            "overall_accuracy": float(confusion.trace() / max(confusion.sum(), 1)),
            "per_class_accuracy": dict(zip(class_names, per_class.tolist())),
            "confusion": confusion.tolist()}


def _write_predictions(path, source, fold_of, probabilities, class_names):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "fold", "true", "predicted", *(f"p_{c}" for c in class_names)])
        for name, fold, label, p in zip(source.names, fold_of, source.labels, probabilities):
            writer.writerow([name, fold, class_names[label], class_names[int(p.argmax())],
                             *(f"{v:.6f}" for v in p)])


def _write_confusion(folder: Path, confusion, class_names):
    with atomic_path(folder / "confusion.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["true \\ predicted", *class_names])
        for name, row in zip(class_names, confusion):
            writer.writerow([name, *row])
    image = confusion_image(np.asarray(confusion), class_names)
    with atomic_path(folder / "confusion.png") as tmp:
        image.save(tmp, format="PNG")


def confusion_image(confusion: np.ndarray, class_names, cell: int = 44):
    """The confusion matrix as a PIL image: cells shaded by the row fraction, with counts;
    rows are true classes, columns predicted ones."""
    from PIL import Image, ImageDraw

    n = len(class_names)
    label_w = 8 + 7 * max(len(c) for c in class_names)
    image = Image.new("RGB", (label_w + n * cell + 8, label_w + n * cell + 8), "white")
    draw = ImageDraw.Draw(image)
    fractions = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    for i in range(n):
        draw.text((4, label_w + i * cell + cell // 2 - 5), class_names[i], fill="black")
        column = Image.new("RGB", (label_w, 12), "white")
        ImageDraw.Draw(column).text((2, 0), class_names[i], fill="black")
        # Rotated 90 degrees, the text starts at the bottom, just above the matrix.
        image.paste(column.rotate(90, expand=True), (label_w + i * cell + cell // 2 - 6, -6))
        for j in range(n):
            shade = int(255 * (1 - fractions[i, j]))
            box = (label_w + j * cell, label_w + i * cell, label_w + (j + 1) * cell - 1,
                   label_w + (i + 1) * cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline="grey")
            draw.text((box[0] + 6, box[1] + cell // 2 - 5), str(confusion[i, j]),
                      fill="white" if fractions[i, j] > 0.5 else "black")
    return image
