"""``--psf psf.json`` in ``loczoo simulate``, ``train`` and ``finetune``: the calibrated PSF
sets the simulator's astigmatism, widths, z range and pixel size, the run folder records it
(config.json imaging, metadata.json psf, the export's model card line), and wrong uses are
refused in one line before anything is written. The psf.json files are written with
``write_psf`` (no calibration run)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from loczoo.smlm import psf as P

# The 3DAS PSF of tests/test_psf.py, as a calibration would store it.
FIELDS = {"sigma0_x_nm": 140.0, "sigma0_y_nm": 135.0, "focus_x_nm": -205.0, "focus_y_nm": 205.0,
          "depth_nm": 290.0, "a_x": 0.05, "b_x": 0.03, "a_y": -0.01, "b_y": 0.02,
          "pixel_size_nm": 100.0, "z_range_nm": (-600.0, 600.0),
          "residuals_nm": {"x": 1.0, "y": 1.0}, "beads": 3, "planes": 61, "z_step_nm": 20.0,
          "source": "beads.tif", "loczoo_version": "0.1.0"}


def psf_file(folder, name="psf.json", **changes):
    return P.write_psf(folder / name, P.PsfModel(**{**FIELDS, **changes}))


def one_error(code, err, *needles):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_simulate_with_psf_uses_its_widths_z_range_and_pixels(tmp_path, run_cli, monkeypatch):
    from loczoo.smlm import simulate as S
    from loczoo.smlm.io import read_localizations

    built = []
    original = S.simulate_stack

    def spy(imaging, *args, **kwargs):
        built.append(imaging)
        return original(imaging, *args, **kwargs)

    monkeypatch.setattr(S, "simulate_stack", spy)
    path = psf_file(tmp_path)
    out = tmp_path / "stack.tif"
    code, stdout, err = run_cli("simulate", out, "--frames", "4", "--size", "24", "24",
                                "--density", "20", "20", "--psf", path, "--quiet")
    assert code == 0, err
    assert f"PSF: {path} (z -600..600 nm)" in stdout
    (imaging,) = built
    astigmatism, sigma = P.astigmatism_from_psf(P.read_psf(path))
    assert imaging.astigmatism == astigmatism and imaging.psf_sigma_nm == sigma
    assert imaging.z_range_nm == (-600.0, 600.0) and imaging.pixel_size_nm == 100.0
    truth = read_localizations(tmp_path / "stack_gt.csv")
    z = np.asarray(truth.z)
    assert len(z) > 10 and z.min() >= -600.0 and z.max() <= 600.0 and z.std() > 100.0
    # The rendered widths are the calibrated ones: sigma_x, sigma_y of the simulator at z.
    zs = np.array([-400.0, 0.0, 400.0], np.float32)
    sx, sy = S.astigmatic_sigmas(zs, np.full(3, sigma[0], np.float32), astigmatism,
                                 reference_sigma_nm=sigma[0])
    want_x, want_y = P.read_psf(path).sigmas(zs)
    np.testing.assert_allclose(np.asarray(sx), want_x, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(sy), want_y, rtol=1e-4)
    # A range inside the PSF's is taken as given.
    built.clear()
    code, _, err = run_cli("simulate", tmp_path / "b.tif", "--frames", "2", "--size", "16", "16",
                           "--psf", path, "--z-range", "-100", "200", "--pixel-size", "100",
                           "--quiet")
    assert code == 0, err
    assert built[0].z_range_nm == (-100.0, 200.0)


def test_simulate_refusals(tmp_path, run_cli):
    path = psf_file(tmp_path)
    out = tmp_path / "s.tif"
    code, _, err = run_cli("simulate", out, "--psf", path, "--z-range", "-800", "0")
    one_error(code, err, "--z-range -800 0 nm", "-600..600 nm", str(path))
    code, _, err = run_cli("simulate", out, "--psf", path, "--pixel-size", "110")
    one_error(code, err, "100 nm pixels", "110 nm pixels")
    code, _, err = run_cli("simulate", out, "--psf", path, "--sigma", "100", "120")
    one_error(code, err, "drop --sigma")
    tampered = tmp_path / "tampered.json"
    data = json.loads(path.read_text())
    data["depth_nm"] = -5
    tampered.write_text(json.dumps(data))
    code, _, err = run_cli("simulate", out, "--psf", tampered)
    one_error(code, err, "depth_nm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["psf.json", "tampered.json"]


def test_train_with_psf_records_it(tmp_path, run_cli):
    from loczoo.export.common import load_source, model_card, psf_line

    path = psf_file(tmp_path)
    out = tmp_path / "run"
    code, _, err = run_cli("train", "decode", "--config", "3d", "--out", out, "--psf", path,
                           "--set", "features=4", "--set", "inter_features=4", "--set",
                           "patch_size=8", "--set", "batch_size=2", "--steps-per-epoch", "1",
                           "--epochs", "1", "--validation-steps", "1", "--quiet")
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    imaging = config["imaging"]
    psf = P.read_psf(path)
    assert imaging["z_range_nm"] == [-600.0, 600.0] and imaging["pixel_size_nm"] == 100.0
    s = (140.0 * 135.0) ** 0.5
    assert imaging["psf_sigma_nm"] == pytest.approx([s, s])
    astig = imaging["astigmatism"]
    assert (astig["sigma0_x_nm"], astig["sigma0_y_nm"], astig["depth_nm"]) == (140.0, 135.0,
                                                                               290.0)
    assert (astig["focus_x_nm"], astig["a_x"], astig["b_y"]) == (psf.focus_x_nm, 0.05, 0.02)
    # DECODE's data constants follow the new z range: z_max = 1.2 x 600 nm.
    assert config["z_max"] == pytest.approx(720.0)
    record = json.loads((out / "metadata.json").read_text())["psf"]
    assert record["file"] == "psf.json"
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["content"] == json.loads(path.read_text())
    line = psf_line(record)
    assert line.startswith(f"psf.json (sha256 {record['sha256'][:12]})")
    assert "valid z -600.0..600.0 nm" in line and "100 nm pixels" in line
    # Exports carry it into their model card.
    card = model_card(load_source(str(out)), "test", {})
    assert f"- PSF: {line}" in card.splitlines()


def test_train_and_finetune_refusals(tmp_path, run_cli):
    path = psf_file(tmp_path)
    out = tmp_path / "run"
    # A 2D configuration, and an entry that predicts no z.
    code, _, err = run_cli("train", "decode", "--config", "tiny", "--out", out, "--psf", path)
    one_error(code, err, "2D (predict_z false)", "--config 3d")
    code, _, err = run_cli("train", "deep_storm", "--config", "tiny", "--out", out, "--psf", path)
    one_error(code, err, "--psf", "3D")
    code, _, err = run_cli("finetune", "decode/sim-dense-100nm", "--out", out, "--psf", path)
    one_error(code, err, "2D (predict_z false)", "3D preset")
    # A parent whose z_max (900 nm) cannot represent the PSF's z range.
    deep = psf_file(tmp_path, "deep.json", z_range_nm=(-1000.0, 1000.0))
    code, _, err = run_cli("train", "decode", "--init", "decode/sim-3d-smlm2016", "--out", out,
                           "--psf", deep)
    one_error(code, err, "-1000..1000 nm", "z_max 900 nm")
    # A z range beyond the one the PSF was calibrated over (--set applies after --psf).
    code, _, err = run_cli("train", "decode", "--config", "3d", "--out", out, "--psf", path,
                           "--set", "imaging.z_range_nm=[-700,0]")
    one_error(code, err, "-700..0 nm", "-600..600 nm", "calibrated over")
    code, _, err = run_cli("finetune", "decode/sim-3d-smlm2016", "--out", out, "--psf", path,
                           "--set", "imaging.z_range_nm=[0,650]", "--estimate-only")
    one_error(code, err, "0..650 nm", "-600..600 nm")
    # A tampered file.
    tampered = tmp_path / "tampered.json"
    tampered.write_text(path.read_text().replace('"beads": 3', '"beads": 3, "bead": 1'))
    code, _, err = run_cli("train", "decode", "--config", "3d", "--out", out, "--psf", tampered)
    one_error(code, err, "field bead is unknown")
    # finetune --data: the stack's pixel size is the PSF's.
    stack = tmp_path / "data" / "stack.tif"
    stack.parent.mkdir()
    code, _, err = run_cli("simulate", stack, "--frames", "3", "--size", "16", "16",
                           "--pixel-size", "110", "--quiet")
    assert code == 0, err
    code, _, err = run_cli("finetune", "decode/sim-3d-smlm2016", "--out", out, "--psf", path,
                           "--data", stack, "--gt", tmp_path / "data" / "stack_gt.csv")
    one_error(code, err, "100 nm pixels", "110 nm pixels", str(stack))
    code, _, err = run_cli("finetune", "decode/sim-3d-smlm2016", "--out", out, "--psf", path,
                           "--data", stack, "--estimate-only")
    one_error(code, err, "100 nm pixels", "110 nm pixels")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "deep.json", "psf.json",
                                                          "tampered.json"]


def test_finetune_estimate_only_applies_the_psf(tmp_path, run_cli):
    path = psf_file(tmp_path)
    code, stdout, err = run_cli("finetune", "decode/sim-3d-smlm2016", "--out", tmp_path / "run",
                                "--psf", path, "--estimate-only")
    assert code == 0, err
    assert f"psf {path}" in stdout
    # A new PSF: the parent's own learning rate (2e-4), falling to 3 % over the default
    # 10 x 200 steps of 32 windows in 10 stairs of 6400 samples.
    assert "learning_rate=0.0002 lr_decay_samples=6400 lr_decay=0.704226" in stdout
    assert not (tmp_path / "run").exists()
    code, stdout, err = run_cli("finetune", "decode/sim-3d-smlm2016", "--out", tmp_path / "run",
                                "--estimate-only", "--epochs", "2", "--steps-per-epoch", "50")
    assert code == 0, err
    assert "learning_rate=2e-05 lr_decay_samples=320 lr_decay=0.704226" in stdout


def test_a_broad_parent_fine_tunes_on_the_calibrated_psf_alone(tmp_path):
    """decode/sim-3d-astig-broad trains on a family of PSFs; with --psf the family is gone:
    the simulator renders the calibrated widths exactly."""
    from loczoo.bundle import load_bundle

    parent = load_bundle("decode/sim-3d-astig-broad").config
    assert parent.imaging.astigmatism_spread == 0.3
    psf = P.read_psf(psf_file(tmp_path))
    config = P.config_with_psf(parent, psf)
    assert config.imaging.astigmatism_spread == 0.0
    assert config.imaging.astigmatism == P.astigmatism_from_psf(psf)[0]
