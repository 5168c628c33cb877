"""Protein data-set readers on tiny fake folders in the archives' layouts: class folders,
LOCATE's paired channels, split lists; unreadable files skipped by name, bad layouts refused."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from loczoo.errors import LoczooError
from loczoo.proteins.folders import read_class_folders, read_image, read_image_list


def _tif(path, value, shape=(12, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full(shape, value, np.uint16))


def test_class_folders_with_a_corrupt_file(tmp_path, capsys):
    _tif(tmp_path / "actin" / "a1.tif", 10)
    _tif(tmp_path / "actin" / "sub" / "a2.tif", 11, (20, 9))
    _tif(tmp_path / "er" / "e1.tif", 20)
    (tmp_path / "er" / "broken.tif").write_bytes(b"II*\x00garbage")
    Image.fromarray(np.full((8, 8), 30, np.uint8)).save(tmp_path / "er" / "e2.png")
    (tmp_path / "er" / "notes.txt").write_text("not an image")
    data = read_class_folders(tmp_path)
    assert data.class_names == ("actin", "er")
    assert data.names == ("actin/a1.tif", "actin/sub/a2.tif", "er/e1.tif", "er/e2.png")
    np.testing.assert_array_equal(data.labels, [0, 0, 1, 1])
    assert data.images[1].shape == (20, 9, 1) and data.images[3][0, 0, 0] == 30
    assert data.skipped == ["er/broken.tif"]
    assert "broken.tif" in capsys.readouterr().err
    # A requested order (case-insensitive) and a missing class.
    ordered = read_class_folders(tmp_path, ("ER", "actin"), quiet=True)
    assert ordered.names[0].startswith("er/") and ordered.labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(LoczooError, match="lacks the class folders golgi"):
        read_class_folders(tmp_path, ("er", "golgi"))


def test_locate_pairs_protein_and_dna(tmp_path):
    _tif(tmp_path / "Golgi" / "cell1_myc.tif", 5)
    _tif(tmp_path / "Golgi" / "cell1_dapi.tif", 7)
    _tif(tmp_path / "Golgi" / "cell2_myc.tif", 5)           # no DNA image: skipped
    _tif(tmp_path / "Nucleus" / "c3_MYC.tif", 1)
    _tif(tmp_path / "Nucleus" / "c3_dapi.tif", 2)
    data = read_class_folders(tmp_path, channel_suffixes=("_myc", "_dapi"), quiet=True)
    assert data.names == ("Golgi/cell1_myc.tif", "Nucleus/c3_MYC.tif")
    np.testing.assert_array_equal([im[0, 0] for im in data.images], [[5, 7], [1, 2]])
    assert data.skipped == ["Golgi/cell2_myc.tif"]


def test_split_lists(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((6, 6, 3), i, np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / "train.txt").write_text("# path label\nim0.png 1\n\nim1.png Vacuole\nim2.png 0\n")
    data = read_image_list(tmp_path, tmp_path / "train.txt", ("ER", "vacuole"))
    assert data.labels.tolist() == [1, 1, 0] and data.images[0].shape == (6, 6, 3)
    (tmp_path / "bad.txt").write_text("im0.png nucleus\n")
    with pytest.raises(LoczooError, match="line 1: unknown label 'nucleus'"):
        read_image_list(tmp_path, tmp_path / "bad.txt", ("ER", "vacuole"))


@pytest.mark.parametrize("layout, match", [
    ("missing", "does not exist"), ("flat", "no class folders"),
    ("empty_class", "holds no images"), ("all_broken", "no readable images"),
    ("mixed_channels", "differ in channel count")])
def test_bad_layouts_give_one_clear_error(tmp_path, layout, match):
    root = tmp_path / "data"
    if layout == "flat":
        _tif(root / "a.tif", 1)
    elif layout == "empty_class":
        _tif(root / "a" / "1.tif", 1)
        (root / "b").mkdir()
    elif layout == "all_broken":
        (root / "a").mkdir(parents=True)
        (root / "a" / "x.tif").write_bytes(b"nope")
    elif layout == "mixed_channels":
        _tif(root / "a" / "1.tif", 1)
        Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(root / "a" / "2.png")
    with pytest.raises(LoczooError, match=match):
        read_class_folders(root, quiet=True)


def test_read_image_refuses_non_images(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 4, 5, 6), np.uint8),
                     photometric="minisblack")
    with pytest.raises(LoczooError, match="not a 2D image"):
        read_image(tmp_path / "stack.tif")
    tifffile.imwrite(tmp_path / "nan.tif", np.full((4, 4), np.nan, np.float32))
    with pytest.raises(LoczooError, match="NaN"):
        read_image(tmp_path / "nan.tif")
