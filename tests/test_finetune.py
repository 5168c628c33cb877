"""loczoo finetune: from a run folder on (a) frames with ground truth and (b) the simulator set
to imaging conditions estimated from a raw stack; the estimates, the re-chosen threshold, resume
and the refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from loczoo.smlm.io import write_localizations, write_stack
from loczoo.smlm.simulate import CameraConfig, simulate_stack


@pytest.fixture(scope="module")
def user_stack(tmp_path_factory):
    """A stack from a camera and PSF unlike the tiny model's: baseline 400 ADU, 0.25 photons
    per ADU (4 ADU per photon), PSF sigma 140 nm, sparse emitters; and its ground truth."""
    from loczoo.registry import get_entry

    folder = tmp_path_factory.mktemp("user")
    imaging = get_entry("deep_storm").config_cls.tiny().imaging
    imaging = replace(imaging, pixel_size_nm=100.0, psf_sigma_nm=(140.0, 140.0),
                      density_per_um2=(0.4, 0.6), photon_params=(2000.0, 4000.0),
                      background_photons=(30.0, 40.0), background_field_fraction=0.0,
                      camera=CameraConfig.scmos(qe=1.0, e_per_adu=0.25, baseline_adu=400.0,
                                                read_noise_e=0.0))
    frames, truth = simulate_stack(imaging, 60, 48, 48, seed=3)
    write_stack(folder / "stack.tif", frames, pixel_size_nm=100.0)
    write_localizations(folder / "truth.csv", truth)
    return folder, imaging


def assert_recalibrated(meta: dict, config: dict, stdout: str, stderr: str, frames: int):
    """The threshold was re-chosen on ``frames`` frames and stored, or, when no threshold
    detects anything (a model trained for two steps), the parent's was kept with a warning."""
    if "calibration" in meta:
        assert meta["calibration"]["frames"] == frames
        assert config["threshold"] == pytest.approx(meta["calibration"]["threshold"])
        assert "detection threshold" in stdout
    else:
        assert f"warning: no threshold detects any emitter on the {frames}" in stderr
        assert "stays" in stderr and "detection threshold" not in stdout


def test_simulator_mode_estimates_the_conditions_and_recalibrates(tiny_run, user_stack,
                                                                   tmp_path, run_cli):
    folder, imaging = user_stack
    out = tmp_path / "ft"
    code, stdout, stderr = run_cli("finetune", tiny_run, "--data", folder / "stack.tif",
                                   "--out", out, "--epochs", "1", "--steps-per-epoch", "2",
                                   "--validation-steps", "1", "--quiet")
    assert code == 0, stderr
    assert "estimated from" in stdout and "PSF sigma" in stdout
    config = json.loads((out / "config.json").read_text())
    camera, sim = config["imaging"]["camera"], config["imaging"]
    # The fine-tuning simulator reproduces the user's camera and PSF.
    assert camera["baseline_adu"] == pytest.approx(400.0, abs=8.0)
    assert camera["em_gain"] is None and camera["qe"] == 1.0  # e_per_adu is photons per ADU
    assert 1 / camera["e_per_adu"] == pytest.approx(4.0, rel=0.1)  # ADU per photon
    low, high = sim["psf_sigma_nm"]
    assert low < 140.0 < high and high - low < 60.0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["initialised_from"] == str(tiny_run) and "imaging conditions" in meta["data"]
    assert_recalibrated(meta, config, stdout, stderr, frames=64)
    assert (out / "curves.png").is_file()


def test_estimate_only_prints_and_writes_nothing(tiny_run, user_stack, tmp_path, run_cli):
    folder, _ = user_stack
    out = tmp_path / "ft"
    code, stdout, _ = run_cli("finetune", tiny_run, "--data", folder / "stack.tif",
                              "--out", out, "--estimate-only", "--quiet")
    assert code == 0
    assert "imaging.camera.baseline_adu=" in stdout and "imaging.psf_sigma_nm=" in stdout
    assert not out.exists()


def test_ground_truth_mode_trains_on_the_frames_then_resume_says_complete(tiny_run, user_stack,
                                                                          tmp_path, run_cli):
    folder, _ = user_stack
    out = tmp_path / "ft"
    argv = ["finetune", tiny_run, "--data", folder / "stack.tif", "--gt", folder / "truth.csv",
            "--out", out, "--epochs", "1", "--steps-per-epoch", "2", "--validation-steps", "1",
            "--quiet"]
    code, stdout, stderr = run_cli(*argv)
    assert code == 0, stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert "with ground truth" in meta["data"] and meta["epochs_done"] == 1
    # The threshold was chosen on the data's validation frames (3 in every 10).
    config = json.loads((out / "config.json").read_text())
    assert_recalibrated(meta, config, stdout, stderr, frames=18)
    if "calibration" in meta:
        assert meta["calibration"]["data"] == "real frames with ground truth"
    parent_lr = json.loads((tiny_run / "config.json").read_text())["learning_rate"]
    assert json.loads((out / "config.json").read_text())["learning_rate"] == pytest.approx(
        parent_lr / 10)
    code, _, stderr = run_cli(*argv, "--resume")
    assert code == 2 and "complete" in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("extra, message", [
    (["--gt", "truth.csv"], "--gt needs --data"),
    (["--resume", "--overwrite"], "exclude each other"),
])
def test_refusals_are_one_line(tiny_run, tmp_path, run_cli, extra, message):
    code, _, stderr = run_cli("finetune", tiny_run, "--out", tmp_path / "ft", *extra)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ft").exists()


def test_classifier_is_refused(tmp_path, run_cli):
    code, _, stderr = run_cli("finetune", "plcnn", "--out", tmp_path / "ft")
    assert code == 2 and "for localization models" in stderr


def test_first_pass_counts_emitters_on_a_sparse_stack(user_stack):
    """The first localization pass (the Deep-STORM preset) gives the density estimate."""
    from loczoo.smlm.io import read_localizations, read_stack
    from loczoo.tools.finetune import estimate_conditions

    folder, _ = user_stack
    estimate = estimate_conditions(read_stack(folder / "stack.tif"), emccd=False, quiet=True)
    truth = read_localizations(folder / "truth.csv")
    per_frame = np.bincount(truth.frame, minlength=61)[1:]
    true_density = np.median(per_frame) / (4.8 * 4.8)
    assert estimate.emitters.density_per_um2 == pytest.approx(true_density, rel=0.3)


def test_interrupted_finetuning_resumes_to_the_uninterrupted_result(tiny_run, user_stack,
                                                                    tmp_path, run_cli,
                                                                    monkeypatch):
    """Simulator mode: the resumed run reuses the stored (estimated) configuration and ends
    with the weights and history of a run that was never interrupted."""
    from loczoo import training
    from loczoo.bundle import load_bundle

    folder, _ = user_stack
    argv = ["finetune", tiny_run, "--data", folder / "stack.tif", "--epochs", "3",
            "--steps-per-epoch", "3", "--validation-steps", "1", "--quiet"]
    assert run_cli(*argv, "--out", tmp_path / "whole")[0] == 0

    def on_train_batch_end(self, step, logs=None):  # Ctrl-C in the second epoch
        if self.run.epochs_done == 1 and step == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(training._EpochEnd, "on_train_batch_end", on_train_batch_end)
        code, _, stderr = run_cli(*argv, "--out", tmp_path / "cut")
    assert code == 130 and "continue with --resume" in stderr
    meta = json.loads((tmp_path / "cut" / "metadata.json").read_text())
    assert meta["interrupted"] and meta["epochs_done"] == 1 and "calibration" not in meta
    load_bundle(str(tmp_path / "cut"))  # usable as it is
    code, stdout, stderr = run_cli(*argv, "--out", tmp_path / "cut", "--resume")
    assert code == 0, stderr
    assert "resuming" in stdout and "estimated from" not in stdout
    whole, cut = (json.loads((tmp_path / name / "metadata.json").read_text())
                  for name in ("whole", "cut"))
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in whole["history"]]
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in cut["history"]] == strip
    for a, b in zip(load_bundle(str(tmp_path / "whole")).model.get_weights(),
                    load_bundle(str(tmp_path / "cut")).model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert cut.get("calibration") == whole.get("calibration")
    assert (json.loads((tmp_path / "cut" / "config.json").read_text())["threshold"]
            == json.loads((tmp_path / "whole" / "config.json").read_text())["threshold"])
