"""The tensorflow-datasets builders, built for real (offline) from tiny fake folders in the
layouts the original archives unpack to."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds
import tifffile
from PIL import Image

from loczoo.errors import LoczooError


def _build(name, data_dir, manual_dir):
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(manual_dir)))
    return builder


def _tif(path, value, shape=(20, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full(shape, value, np.uint16))


def test_hela_2d_from_class_folders(tmp_path):
    import loczoo.datasets.protein_localization  # noqa: F401  (registers the builder)
    from loczoo.datasets.protein_localization import CONFIGS_BY_NAME

    classes = CONFIGS_BY_NAME["hela_2d"].classes
    manual = tmp_path / "manual"
    for i, name in enumerate(classes):
        folder = name.upper() if i == 3 else name  # "ER": folder names match ignoring case
        for j in range(2):
            _tif(manual / "hela_2d" / folder / f"img{j}.tif", 100 * i + j, (20 + j, 24))
    builder = _build("protein_localization/hela_2d", tmp_path / "data", manual)
    assert builder.info.splits["train"].num_examples == 20
    assert builder.info.features["label"].names == list(classes)
    examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
    for ex in examples:
        label = int(ex["label"])
        j = int(ex["name"].decode().split("img")[1][0])
        assert ex["image"].dtype == np.uint16 and ex["image"].shape == (20 + j, 24, 1)
        assert ex["image"][0, 0, 0] == 100 * label + j
    assert len(tfds.even_splits("train", 5)) == 5


def test_locate_pairs_and_missing_class_folders(tmp_path):
    import loczoo.datasets.protein_localization  # noqa: F401
    from loczoo.datasets.protein_localization import CONFIGS_BY_NAME

    classes = CONFIGS_BY_NAME["locate_endogenous"].classes
    manual = tmp_path / "manual"
    for i, name in enumerate(classes):
        folder = "Actin-cytoskeleton" if name == "actin_cytoskeleton" else name
        _tif(manual / "locate_endogenous" / folder / "c1_myc.tif", i)
        _tif(manual / "locate_endogenous" / folder / "c1_dapi.tif", 50 + i)
    builder = _build("protein_localization/locate_endogenous", tmp_path / "data", manual)
    for ex in tfds.as_numpy(builder.as_dataset(split="train")):
        np.testing.assert_array_equal(ex["image"][0, 0], [ex["label"], 50 + ex["label"]])

    other = tmp_path / "manual2"
    _tif(other / "cho" / "giantin" / "a.tif", 1)
    with pytest.raises(LoczooError, match="lacks class folders for hoechst, lamp2"):
        _build("protein_localization/cho", tmp_path / "data2", other)
    with pytest.raises(LoczooError, match="does not exist"):
        _build("protein_localization/hela_2d", tmp_path / "data3", other)


def test_deepyeast_split_lists(tmp_path):
    import loczoo.datasets.protein_localization  # noqa: F401

    root = tmp_path / "manual" / "deepyeast"
    root.mkdir(parents=True)
    for i in range(6):
        rgb = np.zeros((8, 8, 2), np.uint8)
        rgb[..., 0] = i
        Image.fromarray(np.concatenate([rgb, np.zeros((8, 8, 1), np.uint8)], -1)[..., :2],
                        mode="LA").save(root / f"{i}.png")
    (root / "train.txt").write_text("0.png 0\n1.png vacuole\n2.png 3\n")
    (root / "val.txt").write_text("3.png 4\n")
    (root / "test.txt").write_text("4.png 5\n5.png 6\n")
    builder = _build("protein_localization/deepyeast", tmp_path / "data", tmp_path / "manual")
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        "train": 3, "validation": 1, "test": 2}
    train = sorted(tfds.as_numpy(builder.as_dataset(split="train")), key=lambda e: e["name"])
    assert [int(e["label"]) for e in train] == [0, 11, 3]
    assert train[1]["image"].shape == (8, 8, 2) and train[1]["image"][0, 0, 0] == 1


def test_smlm_simulated_is_deterministic_and_matches_the_simulator(tmp_path):
    import loczoo.datasets.smlm_simulated  # noqa: F401
    from loczoo.datasets.smlm_simulated import CONFIGS_BY_NAME
    from loczoo.smlm.simulate import simulate_stack

    a = _build("smlm_simulated/tiny", tmp_path / "a", tmp_path / "manual")
    b = _build("smlm_simulated/tiny", tmp_path / "b", tmp_path / "manual")
    assert {k: v.num_examples for k, v in a.info.splits.items()} == {"train": 2,
                                                                     "validation": 1}
    train_a = sorted(tfds.as_numpy(a.as_dataset(split="train")), key=lambda e: e["frames"].sum())
    train_b = sorted(tfds.as_numpy(b.as_dataset(split="train")), key=lambda e: e["frames"].sum())
    for ea, eb in zip(train_a, train_b):
        np.testing.assert_array_equal(ea["frames"], eb["frames"])
        np.testing.assert_array_equal(ea["emitters"]["x"], eb["emitters"]["x"])
    val = next(iter(tfds.as_numpy(a.as_dataset(split="validation"))))
    assert not any(np.array_equal(val["frames"], e["frames"]) for e in train_a)
    # Example 0 of train is simulate_stack with its documented seed.
    config = CONFIGS_BY_NAME["tiny"]
    frames, truth = simulate_stack(config.imaging(), 2, 16, 16, seed=0, sequence_frames=2)
    first = next(e for e in train_a if np.array_equal(e["frames"], np.round(frames)))
    np.testing.assert_allclose(first["emitters"]["x"], truth.x, rtol=1e-6)
    np.testing.assert_array_equal(first["emitters"]["frame"], truth.frame)
    assert first["frames"].shape == (2, 16, 16) and first["frames"].dtype == np.uint16


def test_smlm_challenge_2013_layout(tmp_path):
    import loczoo.datasets.smlm_challenge  # noqa: F401

    root = tmp_path / "manual" / "2013_bundled_tubes_hd"
    for i in range(3):
        _tif(root / "sequence" / f"{i + 1:05d}.tif", 100 + i, (12, 10))
    (root / "activations.csv").write_text(
        "Ground-truth,frame,xnano,ynano,znano,intensity\n"
        "1,1,150.5,250.0,0,1200\n2,3,310.0,90.0,0,800\n3,3,505.0,705.0,0,950\n")
    builder = _build("smlm_challenge/2013_bundled_tubes_hd", tmp_path / "data",
                     tmp_path / "manual")
    examples = sorted(tfds.as_numpy(builder.as_dataset(split="train")),
                      key=lambda e: e["frame"])
    assert [int(e["frame"]) for e in examples] == [1, 2, 3]
    assert examples[1]["image"].shape == (12, 10) and examples[1]["image"][0, 0] == 101
    assert len(examples[1]["emitters"]["x"]) == 0
    np.testing.assert_allclose(examples[2]["emitters"]["x"], [310.0, 505.0])
    np.testing.assert_allclose(examples[0]["emitters"]["photons"], [1200.0])

    bad = tmp_path / "manual2" / "2016_mt0_n1_ld_2d"
    _tif(bad / "a.tif", 1)
    _tif(bad / "b.tif", 1)
    with pytest.raises(LoczooError, match="found 2 TIFF files"):
        _build("smlm_challenge/2016_mt0_n1_ld_2d", tmp_path / "d2", tmp_path / "manual2")
