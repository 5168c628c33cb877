"""The command line end to end (simulate -> localize -> evaluate -> render) and its handling of
bad input: one error line, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from loczoo.smlm.io import read_localizations
from loczoo.tools import cli


@pytest.fixture(scope="module")
def sim_stack(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sim")
    stack = folder / "stack.tif"
    assert cli.main(["simulate", str(stack), "--frames", "4", "--size", "32", "32",
                     "--density", "2", "2", "--seed", "3", "--quiet"]) == 0
    return stack, folder / "stack_gt.csv"


def test_simulate_writes_stack_and_ground_truth(sim_stack):
    stack, gt = sim_stack
    frames = tifffile.imread(stack)
    assert frames.shape == (4, 32, 32)
    truth = read_localizations(gt)
    assert 4 < len(truth) < 200 and set(truth.frame) <= {1, 2, 3, 4}
    assert truth.x.min() >= 0 and truth.x.max() < 3200


def test_localize_evaluate_render_end_to_end(sim_stack, tiny_run, tmp_path, run_cli):
    stack, gt = sim_stack
    locs_csv, image = tmp_path / "locs.csv", tmp_path / "locs.png"
    code, out, err = run_cli("localize", stack, "--out", locs_csv, "--model", tiny_run,
                             "--threshold", "0.0", "--render", image, "--quiet")
    assert code == 0, err
    assert f"localizations: {locs_csv}" in out and f"image: {image}" in out
    locs = read_localizations(locs_csv)
    assert len(locs) > 0 and set(locs.frame) <= {1, 2, 3, 4}
    assert image.stat().st_size > 0
    code, out, err = run_cli("evaluate", locs_csv, gt, "--tolerance", "250", "100")
    assert code == 0, err
    assert "Jaccard" in out and "@250 nm" in out and "@100 nm" in out
    tif = tmp_path / "render.tif"
    code, out, err = run_cli("render", locs_csv, "--out", tif, "--pixel-size", "20",
                             "--fov", "3200", "3200")
    assert code == 0, err
    assert tifffile.imread(tif).shape == (160, 160)


def test_render_colours_by_z_and_refuses_tables_without_z(tmp_path, run_cli):
    from loczoo.smlm.io import write_localizations
    from loczoo.smlm.localizations import Localizations

    with_z = write_localizations(tmp_path / "z.csv", Localizations(
        frame=[1, 1], x=[200.0, 800.0], y=[500.0, 500.0], z=[-300.0, 300.0]))
    png = tmp_path / "z.png"
    code, out, err = run_cli("render", with_z, "--out", png, "--color-by", "z",
                             "--fov", "1000", "1000", "--no-color-bar")
    assert code == 0, err
    assert np.asarray(Image.open(png)).shape == (100, 100, 3)
    flat = write_localizations(tmp_path / "flat.csv", Localizations(frame=[1], x=[5.0],
                                                                    y=[5.0]))
    code, out, err = run_cli("render", flat, "--out", tmp_path / "f.png",
                             "--color-by", "z", "--fov", "100", "100")
    assert code == 2 and "no z values" in err and not (tmp_path / "f.png").exists()


def bad_stacks(folder: Path) -> dict[str, Path]:
    """One bad input per kind, each named after the problem."""
    good = np.random.default_rng(0).integers(90, 200, (6, 16, 16)).astype(np.uint16)
    paths = {"missing": folder / "missing.tif"}
    (folder / "corrupt.tif").write_bytes(b"this is not a tiff file at all" * 10)
    paths["corrupt"] = folder / "corrupt.tif"
    tifffile.imwrite(folder / "full.tif", good)
    data = (folder / "full.tif").read_bytes()
    (folder / "truncated.tif").write_bytes(data[: len(data) // 2])
    paths["truncated"] = folder / "truncated.tif"
    tifffile.imwrite(folder / "rgb.tif", np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    paths["rgb"] = folder / "rgb.tif"
    tifffile.imwrite(folder / "4d.tif", np.zeros((2, 3, 16, 16), np.uint16), imagej=True,
                     metadata={"axes": "TZYX"})
    paths["4d"] = folder / "4d.tif"
    (folder / "empty").mkdir()
    paths["empty"] = folder / "empty"
    nan = good.astype(np.float32)
    nan[2, 3, 4] = np.nan
    tifffile.imwrite(folder / "nan.tif", nan)
    paths["nan"] = folder / "nan.tif"
    return paths


@pytest.mark.parametrize("kind", ["missing", "corrupt", "truncated", "rgb", "4d", "empty", "nan"])
def test_localize_refuses_bad_stacks(kind, tmp_path, run_cli):
    stack = bad_stacks(tmp_path)[kind]
    out = tmp_path / "locs.csv"
    image = tmp_path / "locs.png"
    code, _, err = run_cli("localize", stack, "--out", out, "--render", image)
    assert code == 2
    assert err.startswith("error:") and err.strip().count("\n") == 0, err
    assert not out.exists() and not image.exists()
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("kind", ["missing", "corrupt", "truncated", "rgb", "nan"])
def test_train_refuses_bad_stacks(kind, tmp_path, run_cli):
    stack = bad_stacks(tmp_path)[kind]
    gt = tmp_path / "gt.csv"
    gt.write_text("frame,x,y\n1,100,100\n")
    code, _, err = run_cli("train", "deep_storm", "--config", "tiny", "--data", stack,
                           "--gt", gt, "--pixel-size", "100", "--out", tmp_path / "run")
    assert code == 2 and err.startswith("error:") and err.strip().count("\n") == 0, err
    assert not (tmp_path / "run").exists()


def test_existing_outputs_are_kept(sim_stack, tmp_path, run_cli):
    stack, gt = sim_stack
    out = tmp_path / "locs.csv"
    out.write_text("precious\n")
    for argv in (["localize", stack, "--out", out],
                 ["render", gt, "--out", out],
                 ["simulate", out, "--frames", "1"],
                 ["evaluate", gt, gt, "--json", out]):
        code, _, err = run_cli(*argv)
        assert code == 2 and ("exists" in err or "must end in" in err), argv
        assert out.read_text() == "precious\n"


@pytest.mark.parametrize("command", ["evaluate", "render"])
def test_csv_missing_a_column(command, sim_stack, tmp_path, run_cli):
    _, gt = sim_stack
    bad = tmp_path / "bad.csv"
    bad.write_text("frame,x [nm]\n1,100\n")
    argv = ["evaluate", bad, gt] if command == "evaluate" else ["render", bad, "--out",
                                                                 tmp_path / "r.png"]
    code, _, err = run_cli(*argv)
    assert code == 2 and "y" in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "r.png").exists()


def test_simulate_3d_blinking_stack_with_the_smlm2016_camera(tmp_path, run_cli):
    out = tmp_path / "s3d.tif"
    code, _, err = run_cli("simulate", out, "--frames", "6", "--size", "16", "16",
                           "--z-range", "-500", "500", "--astigmatism", "--on-time", "1",
                           "--camera", "smlm2016", "--quiet")
    assert code == 0, err
    truth = read_localizations(tmp_path / "s3d_gt.csv")
    assert truth.has("z") and truth.z.min() >= -500 and truth.z.max() <= 500
    # EM gain 300 at 45 e-/ADU: about 6.7 ADU per photon above the baseline of 100.
    assert tifffile.imread(out).mean() > 200
    code, _, err = run_cli("simulate", tmp_path / "bad.tif", "--z-range", "-2000",
                           "0", "--astigmatism", "--on-time", "-1")
    assert code == 2 and "--on-time" in err


def test_simulate_refuses_bad_parameters(tmp_path, run_cli):
    out = tmp_path / "s.tif"
    code, _, err = run_cli("simulate", out, "--density", "5", "1")
    assert code == 2 and "density" in err
    code, _, err = run_cli("simulate", out, "--frames", "0")
    assert code == 2 and "--frames" in err
    assert not out.exists() and not (tmp_path / "s_gt.csv").exists()


def test_unknown_model_and_entry(sim_stack, tmp_path, run_cli):
    stack, _ = sim_stack
    code, _, err = run_cli("localize", stack, "--out", tmp_path / "l.csv", "--model",
                           "no_such_model")
    assert code == 2 and "no_such_model" in err
    code, _, err = run_cli("train", "nope", "--out", tmp_path / "r")
    assert code == 2 and "unknown zoo entry" in err


def test_train_from_a_tiff_stack_with_ground_truth(sim_stack, tmp_path, run_cli):
    import json

    stack, gt = sim_stack
    run = tmp_path / "run"
    code, out, err = run_cli("train", "deep_storm", "--config", "tiny", "--data", stack,
                             "--gt", gt, "--steps-per-epoch", "2", "--epochs", "1",
                             "--validation-steps", "1", "--out", run, "--quiet")
    assert code == 0, err
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["entry"] == "deep_storm" and str(stack) in meta["data"]
    assert meta["epochs_done"] == 1 and meta["command"].startswith("loczoo train deep_storm")
    config = json.loads((run / "config.json").read_text())
    assert config["norm_mean"] is not None and config["norm_std"] > 0
    assert meta["complete"] and not (run / "checkpoint").exists()  # nothing left to resume


def test_train_init_continues_from_the_parents_configuration(tiny_run, tmp_path, run_cli):
    import json

    child = tmp_path / "child"
    code, _, err = run_cli("train", "deep_storm", "--init", tiny_run, "--set",
                           "learning_rate=0.0005", "--steps-per-epoch", "1", "--epochs", "1",
                           "--validation-steps", "1", "--out", child, "--quiet")
    assert code == 0, err
    parent = json.loads((tiny_run / "config.json").read_text())
    config = json.loads((child / "config.json").read_text())
    # The parent's TINY architecture and data constants, with only the override changed.
    assert config == {**parent, "learning_rate": 0.0005}
    assert json.loads((child / "metadata.json").read_text())["initialised_from"] == str(tiny_run)

    code, _, err = run_cli("train", "deep_storm", "--init", tiny_run, "--config", "tiny",
                           "--out", tmp_path / "other")
    assert code == 2 and "exclude each other" in err and not (tmp_path / "other").exists()
    code, _, err = run_cli("train", "dsir", "--init", tiny_run, "--out", tmp_path / "x")
    assert code == 2 and "is a deep_storm model, not dsir" in err


def test_localize_camera_option(sim_stack, tiny_run, tmp_path, run_cli):
    stack, _ = sim_stack
    out = tmp_path / "locs.csv"
    code, _, err = run_cli("localize", stack, "--out", out, "--model", tiny_run,
                           "--camera", "baseline_adu=500", "--quiet")
    assert code == 0 and "does not read the camera; --camera is ignored" in err
    code, _, err = run_cli("localize", stack, "--out", tmp_path / "b.csv", "--model",
                           tiny_run, "--camera", "offset=500")
    assert code == 2 and "no field 'offset'" in err and not (tmp_path / "b.csv").exists()
    assert len(err.strip().splitlines()) == 1
