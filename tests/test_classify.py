"""Classification through the bundle (``ModelBundle.classify`` and ``explain``) and loczoo
classify end to end with a tiny PLCNN run: probabilities CSV, Grad-CAM PNGs in a folder of their
own, and bad input (unreadable image, wrong channels, a localization model) refused with one
error line and nothing written."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from PIL import Image


@pytest.fixture(scope="module")
def plcnn_run(tmp_path_factory):
    from loczoo.registry import get_entry
    from loczoo.training import train

    entry = get_entry("plcnn")
    out = tmp_path_factory.mktemp("runs") / "tiny_plcnn"
    return train(entry, entry.config_cls.tiny(), out, steps_per_epoch=1, epochs=1,
                 validation_steps=1, quiet=True)


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "cells"
    folder.mkdir()
    rng = np.random.default_rng(0)
    tifffile.imwrite(folder / "a.tif", rng.integers(100, 4000, (50, 70)).astype(np.uint16))
    Image.fromarray(rng.integers(0, 255, (40, 40)).astype(np.uint8)).save(folder / "b.png")
    return folder


def _tiny_bundle(name, entry=None):
    """An untrained bundle of an entry's tiny config (no weights needed)."""
    from loczoo.bundle import ModelBundle
    from loczoo.registry import get_entry

    entry = entry or get_entry(name)
    config = entry.config_cls.tiny()
    return ModelBundle(entry=entry, config=config, model=entry.build_model(config), metadata={},
                       source=f"tiny {name}")


def _cells(rng, *shapes):
    return [rng.gamma(2.0, 50.0, shape).astype(np.float32) for shape in shapes]


def test_bundle_classify_is_the_model_on_preprocessed_images():
    bundle = _tiny_bundle("plcnn")
    images = _cells(np.random.default_rng(2), (50, 70), (32, 32, 1), (20, 90))
    calls = []
    p = bundle.classify(images, batch_size=2, progress=lambda *a: calls.append(a))
    inputs = bundle.entry.preprocess(images, bundle.config)
    assert p.shape == (3, bundle.config.n_classes)
    np.testing.assert_allclose(p, bundle.model(inputs, training=False), atol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert calls == [(2, 3), (3, 3)]
    stack = np.stack(_cells(np.random.default_rng(3), (40, 40), (40, 40)))
    np.testing.assert_allclose(
        bundle.classify(stack),
        bundle.model(bundle.entry.preprocess(stack, bundle.config), training=False), atol=1e-5)
    assert bundle.classify([]).shape == (0, bundle.config.n_classes)


def test_bundle_explain_gives_a_map_per_image_at_its_own_size():
    from dataclasses import replace

    from loczoo.errors import LoczooError
    from loczoo.proteins.images import square_to_image

    bundle = _tiny_bundle("plcnn")
    images = _cells(np.random.default_rng(4), (50, 70), (40, 40, 1), (20, 90))
    maps = bundle.explain(images, batch_size=2)
    assert [m.shape for m in maps] == [(50, 70), (40, 40), (20, 90)]
    assert all(m.min() >= 0.0 and m.max() <= 1.0 for m in maps)
    # The entry's maps on the network's input squares, brought back onto each image.
    squares = bundle.entry.explain(bundle.model, bundle.entry.preprocess(images, bundle.config),
                                   bundle.config)
    assert squares.shape == (3, bundle.config.input_size, bundle.config.input_size)
    for m, square, image in zip(maps, squares, images):
        np.testing.assert_allclose(m, np.clip(square_to_image(square, *image.shape[:2]), 0, 1),
                                   atol=1e-5)
    # An entry without explanations, and a localization model, are refused.
    plain = _tiny_bundle("plcnn", replace(bundle.entry, explain=None))
    with pytest.raises(LoczooError, match="gives no explanation maps"):
        plain.explain(images)
    deep_storm = _tiny_bundle("deep_storm")
    for method in (deep_storm.explain, deep_storm.classify):
        with pytest.raises(LoczooError, match="not a classifier"):
            method(images)


def test_classify_writes_probabilities_and_grad_cam(plcnn_run, images, tmp_path, run_cli):
    out = tmp_path / "probs.csv"
    code, stdout, err = run_cli("classify", images, "--out", out, "--model", plcnn_run,
                                "--explain", "--quiet")
    assert code == 0, err
    rows = list(csv.DictReader(out.open()))
    assert [r["image"] for r in rows] == [str(images / "a.tif"), str(images / "b.png")]
    from loczoo.plcnn.config import PLCNNConfig

    classes = PLCNNConfig.tiny().class_names
    for r in rows:
        p = np.array([float(r[f"p_{c}"]) for c in classes])
        assert abs(p.sum() - 1) < 1e-4 and r["predicted"] == classes[p.argmax()]
        assert float(r["probability"]) == pytest.approx(p.max(), abs=1e-6)
    # The maps go into a folder of their own beside the CSV, never into the image folders;
    # a.tif and b.png keep their suffixes, so images that differ only in it get their own maps.
    maps = tmp_path / "probs_gradcam"
    cam = np.asarray(Image.open(maps / "cells" / "a.tif.png"))
    assert cam.shape == (50, 70, 3)  # the image's own size
    assert np.asarray(Image.open(maps / "cells" / "b.png.png")).shape == (40, 40, 3)
    assert sorted(p.name for p in images.iterdir()) == ["a.tif", "b.png"]
    assert "2 images classified" in stdout and f"{maps}/" in stdout
    # Existing maps are not overwritten without --overwrite.
    code, _, err = run_cli("classify", images, "--out", tmp_path / "probs.csv", "--model",
                           plcnn_run, "--explain", "--overwrite")
    assert code == 0, err
    code, _, err = run_cli("classify", images, "--out", tmp_path / "p2.csv", "--model",
                           plcnn_run, "--explain", maps)
    assert code == 2 and "probs_gradcam exists" in err and not (tmp_path / "p2.csv").exists()


def test_classify_refuses_bad_input(plcnn_run, images, tmp_path, run_cli):
    (images / "c.tif").write_bytes(b"II*\x00truncated")
    out = tmp_path / "probs.csv"
    code, _, err = run_cli("classify", images, "--out", out, "--model", plcnn_run)
    assert code == 2 and "c.tif" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    (images / "c.tif").unlink()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(images / "rgb.png")
    code, _, err = run_cli("classify", images / "rgb.png", "--out", out, "--model",
                           plcnn_run)
    assert code == 2 and "has 3 channels; the model takes 1" in err and not out.exists()
    code, _, err = run_cli("classify", images / "a.tif", "--out", out, "--model",
                           "deep_storm")
    assert code == 2 and "not a classifier" in err and not out.exists()
    code, _, err = run_cli("classify", tmp_path / "nope.tif", "--out", out)
    assert code == 2 and "does not exist" in err


def _class_folders(root, per_class=4):
    """Two classes drawn by the cell-pattern simulator, saved as 16-bit TIFFs of 40 x 48."""
    from loczoo.proteins.simulate import CellImagingConfig, simulate_cells

    labels = np.repeat([0, 1], per_class)
    sim = simulate_cells([3, 4], labels, CellImagingConfig(size=48, patterns=("nucleus", "er")))
    for i, (image, label) in enumerate(zip(np.asarray(sim["images"]), labels)):
        folder = root / ("nucleus", "er")[label]
        folder.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(folder / f"cell{i}.tif", image[4:44, :, 0].astype(np.uint16))
    return root


def test_train_cross_validation_on_class_folders(tmp_path, run_cli):
    import json

    data = _class_folders(tmp_path / "cells")
    out = tmp_path / "cv"
    code, stdout, err = run_cli("train", "plcnn", "--config", "tiny", "--data", data,
                                "--folds", "2", "--steps-per-epoch", "1", "--epochs", "1",
                                "--out", out, "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        ".loczoo-output", "confusion.csv", "confusion.png", "fold_01", "fold_02",
        "predictions.csv", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    confusion = np.array(summary["confusion"])
    assert confusion.sum() == 8 and confusion.sum(axis=1).tolist() == [4, 4]
    # Sorted class folders: "er" is class 0, "nucleus" class 1.
    assert list(summary["per_class_accuracy"]) == ["er", "nucleus"]
    predictions = list(csv.DictReader((out / "predictions.csv").open()))
    assert sorted(int(r["fold"]) for r in predictions) == [1] * 4 + [2] * 4
    fold_acc = [np.mean([r["true"] == r["predicted"] for r in predictions if r["fold"] == f])
                for f in ("1", "2")]
    np.testing.assert_allclose(summary["fold_accuracies"], fold_acc)
    assert "2-fold cross-validation: accuracy" in stdout
    config = json.loads((out / "fold_01" / "config.json").read_text())
    assert config["class_names"] == ["er", "nucleus"] and config["channels"] == 1

    code, _, err = run_cli("train", "plcnn", "--config", "tiny", "--folds", "2",
                           "--out", tmp_path / "cv2")
    assert code == 2 and "--folds needs a data set" in err
    code, _, err = run_cli("train", "plcnn", "--config", "tiny", "--data", data,
                           "--folds", "5", "--out", tmp_path / "cv3")
    assert code == 2 and "5 folds need at least 5 images per class" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells", "cv"]  # nothing left over


def test_train_from_tensorflow_datasets(tmp_path, run_cli):
    import json

    code, _, err = run_cli("train", "deep_storm", "--config", "tiny", "--data",
                           "tfds:smlm_simulated/tiny", "--tfds-dir", tmp_path / "tfds",
                           "--steps-per-epoch", "1", "--epochs", "1", "--validation-steps", "1",
                           "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["data"] == "tfds:smlm_simulated/tiny"
    code, _, err = run_cli("train", "plcnn", "--config", "tiny", "--data",
                           "tfds:protein_localization/cho", "--tfds-dir", tmp_path / "tfds",
                           "--out", tmp_path / "run2")
    assert code == 2 and "cannot prepare tfds:protein_localization/cho" in err
    assert len(err.strip().splitlines()) == 1


def test_simulate_cells_writes_class_folders_that_classify_scores(plcnn_run, tmp_path, run_cli):
    out = tmp_path / "cells"
    argv = ["simulate-cells", out, "--per-class", "2", "--size", "40", "--patterns", "nucleus",
            "er", "--seed", "3", "--quiet"]
    code, stdout, err = run_cli(*argv)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["er",
                                                                                  "nucleus"]
    first = tifffile.imread(out / "er" / "cell_000.tif")
    assert first.shape == (40, 40) and first.dtype == np.uint16 and first.max() > first.min()
    # An existing folder is kept without --overwrite; with it, the same seed gives the same cells.
    code, _, err = run_cli(*argv)
    assert code == 2 and "exists" in err
    code, _, err = run_cli(*argv, "--overwrite")
    assert code == 0 and np.array_equal(tifffile.imread(out / "er" / "cell_000.tif"), first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells"]  # no temporary folder left

    code, _, err = run_cli("simulate-cells", tmp_path / "bad", "--patterns", "cytosol")
    assert code == 2 and "patterns must be" in err and not (tmp_path / "bad").exists()

    # The tiny model's classes include "nucleus" and "er": folders named after classes are scored.
    code, stdout, err = run_cli("classify", out / "er", out / "nucleus", "--out",
                                tmp_path / "p.csv", "--model", plcnn_run, "--quiet")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    correct = sum(r["predicted"] == r["image"].split("/")[-2] for r in rows)
    assert f"accuracy against the class-folder names: {100 * correct / 4:.1f} % ({correct}/4)" \
        in stdout
