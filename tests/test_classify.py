"""loczoo classify end to end with a tiny PLCNN run: probabilities CSV, Grad-CAM PNGs beside the
images, and bad input (unreadable image, wrong channels, a localization model) refused with one
error line and nothing written."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from PIL import Image

from loczoo.tools import cli


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


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_classify_writes_probabilities_and_grad_cam(plcnn_run, images, tmp_path, capsys):
    out = tmp_path / "probs.csv"
    code, stdout, err = run_cli(capsys, "classify", images, "--out", out, "--model", plcnn_run,
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
    cam = np.asarray(Image.open(images / "a.gradcam.png"))
    assert cam.shape == (50, 70, 3)  # the image's own size
    assert "2 images classified" in stdout
    # Existing maps are not overwritten without --overwrite.
    code, _, err = run_cli(capsys, "classify", images, "--out", tmp_path / "p2.csv", "--model",
                           plcnn_run, "--explain")
    assert code == 2 and "a.gradcam.png exists" in err and not (tmp_path / "p2.csv").exists()


def test_classify_refuses_bad_input(plcnn_run, images, tmp_path, capsys):
    (images / "c.tif").write_bytes(b"II*\x00truncated")
    out = tmp_path / "probs.csv"
    code, _, err = run_cli(capsys, "classify", images, "--out", out, "--model", plcnn_run)
    assert code == 2 and "c.tif" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    (images / "c.tif").unlink()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(images / "rgb.png")
    code, _, err = run_cli(capsys, "classify", images / "rgb.png", "--out", out, "--model",
                           plcnn_run)
    assert code == 2 and "has 3 channels; the model takes 1" in err and not out.exists()
    code, _, err = run_cli(capsys, "classify", images / "a.tif", "--out", out, "--model",
                           "deep_storm")
    assert code == 2 and "not a classifier" in err and not out.exists()
    code, _, err = run_cli(capsys, "classify", tmp_path / "nope.tif", "--out", out)
    assert code == 2 and "does not exist" in err
