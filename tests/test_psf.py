"""PSF calibration from bead z-stacks (loczoo.smlm.psf, ``loczoo calibrate-psf``): recovery of
the published 3DAS PSF from stacks made by loczoo's own simulator, psf.json checks, the
round trip into the simulator, and bad input through the CLI."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import tensorflow as tf

from loczoo.errors import LoczooError
from loczoo.smlm import psf as P
from loczoo.smlm import simulate as S
from loczoo.smlm.io import write_stack

# The astigmatic PSF published with the NAIRR-SMLM 3DAS sets (../shared/data/README.md).
TRUE = {"sigma0_x_nm": 140.0, "sigma0_y_nm": 135.0, "focus_x_nm": -205.0, "focus_y_nm": 205.0,
        "depth_nm": 290.0, "a_x": 0.05, "b_x": 0.03, "a_y": -0.01, "b_y": 0.02}
BEADS_PX = [(14.3, 14.6), (41.2, 15.7), (27.8, 40.4)]  # (column, row) in pixels
HEIGHTS_NM = [-50.0, 0.0, 70.0]  # each bead's z offset: beads sit at different heights
Z_NM = np.arange(-600.0, 601.0, 20.0)  # stage z of the planes; plane 1 at -600 nm


def bead_stack(beads_px=BEADS_PX, heights_nm=HEIGHTS_NM, z_nm=Z_NM, size=(56, 56),
               photons=20_000.0, seed=1, camera=None, psf=None) -> np.ndarray:
    """A bead z-stack (ADU) rendered by ``simulate_frames`` with given emitters: the 3DAS PSF,
    100 nm pixels, 30 photons background, the 3DAS camera (offset 500, 1 ADU per photon,
    Gaussian noise of variance 20). A bead at height h is at PSF z = stage z - h."""
    astig = S.AstigmatismConfig(**(psf or TRUE))
    camera = camera or S.CameraConfig(qe=1.0, read_noise_e=math.sqrt(20.0), e_per_adu=1.0,
                                      baseline_adu=500.0)
    imaging = S.ImagingConfig(pixel_size_nm=100.0, background_photons=(30.0, 30.0),
                              camera=camera)
    n, m = len(z_nm), len(beads_px)
    z = np.asarray(z_nm, np.float32)[:, None] - np.asarray(heights_nm, np.float32)[None, :]
    sx, sy = S.astigmatic_sigmas(z, tf.ones([n, m]), astig)
    emitters = {
        "x": tf.constant(np.tile([[c * 100.0 for c, _ in beads_px]], (n, 1)), tf.float32),
        "y": tf.constant(np.tile([[r * 100.0 for _, r in beads_px]], (n, 1)), tf.float32),
        "photons": tf.fill([n, m], float(photons)), "exists": tf.ones([n, m], tf.bool),
        "sigma_x": sx, "sigma_y": sy}
    out = S.simulate_frames(tf.constant([seed, 0], tf.int64), emitters, size[0], size[1],
                            imaging)
    return out["frames"].numpy()


@pytest.fixture(scope="module")
def stack() -> np.ndarray:
    return bead_stack()


@pytest.fixture(scope="module")
def calibration(stack):
    return P.calibrate_psf(stack, 20.0, 100.0, baseline_adu=500.0, photons_per_adu=1.0,
                           source="beads.tif")


@pytest.fixture(scope="module")
def beads_tif(stack, tmp_path_factory):
    path = tmp_path_factory.mktemp("beads") / "beads.tif"
    write_stack(path, stack, pixel_size_nm=100.0)
    return path


def test_calibration_recovers_the_published_3das_psf(calibration):
    # Tolerances: over 12 seeds of this stack (3 beads x 61 planes, 20,000 photons) the errors
    # scatter with sd 0.13 nm (sigma0), 0.5 nm (foci), 0.23 % (depth), 0.005 (a, b) around
    # zero mean; the bounds below are 6 to 8 sd, tight enough to catch a pixel-integration
    # or a half-pixel bias (several nm) or a wrong z convention.
    psf = calibration.psf
    assert psf.sigma0_x_nm == pytest.approx(140.0, abs=1.0)
    assert psf.sigma0_y_nm == pytest.approx(135.0, abs=1.0)
    assert psf.focus_x_nm == pytest.approx(-205.0, abs=4.0)
    assert psf.focus_y_nm == pytest.approx(205.0, abs=4.0)
    assert psf.focus_x_nm == -psf.focus_y_nm  # z = 0 midway between the foci
    assert psf.depth_nm == pytest.approx(290.0, rel=0.015)
    for key in ("a_x", "b_x", "a_y", "b_y"):
        assert getattr(psf, key) == pytest.approx(TRUE[key], abs=0.03), key
    # Per-plane width errors are 1-4 nm (Cramér-Rao, widest planes largest): the rms residual
    # of a correct model sits there; a wrong model (no higher-order terms) leaves ~10 nm.
    assert 0.5 < psf.residuals_nm["x"] < 4.0 and 0.5 < psf.residuals_nm["y"] < 4.0
    assert (psf.beads, psf.planes, psf.z_step_nm, psf.pixel_size_nm) == (3, 61, 20.0, 100.0)
    assert calibration.outliers == (0, 0) and calibration.notes == []
    # Each bead's z = 0 is at stage z = its height, i.e. stack z 600 + height from plane 1.
    for (col, row), height in zip(BEADS_PX, HEIGHTS_NM):
        bead = min(calibration.beads, key=lambda b: np.hypot(
            np.mean(b.x_nm[b.good]) - col * 100, np.mean(b.y_nm[b.good]) - row * 100))
        assert np.mean(bead.x_nm[bead.good]) == pytest.approx(col * 100, abs=2.0)
        assert np.mean(bead.y_nm[bead.good]) == pytest.approx(row * 100, abs=2.0)
        assert bead.z0_nm == pytest.approx(600.0 + height, abs=5.0)
    # Valid z range: the measured PSF z (-670 .. 650, with the fitted bead heights), around 0.
    lo, hi = psf.z_range_nm
    assert -676 <= lo < -500 and 500 < hi <= 655


def test_camera_unknown_gives_the_same_widths(stack):
    cal = P.calibrate_psf(stack, 20.0, 100.0)
    assert "camera not given" in cal.camera_note
    assert cal.psf.sigma0_x_nm == pytest.approx(140.0, abs=1.0)
    assert cal.psf.focus_y_nm == pytest.approx(205.0, abs=4.0)


def test_focus_off_centre_and_one_bead():
    z = np.arange(-400.0, 1001.0, 25.0)  # the foci near the start of the stack
    cal = P.calibrate_psf(bead_stack(beads_px=[(20.3, 20.6)], heights_nm=[30.0], z_nm=z,
                                     size=(40, 40)), 25.0, 100.0, baseline_adu=500.0,
                          photons_per_adu=1.0)
    assert cal.psf.beads == 1
    assert cal.psf.sigma0_x_nm == pytest.approx(140.0, abs=2.0)
    assert cal.psf.focus_x_nm == pytest.approx(-205.0, abs=10.0)
    assert cal.beads[0].z0_nm == pytest.approx(400.0 + 30.0, abs=10.0)


def test_emccd_stack_without_the_camera():
    # The SMLM 2016 EMCCD (gain 300, 0.15 photon/ADU, excess noise 2) read as 1 photon/ADU:
    # the Poisson fit's estimating equation does not depend on a common gain.
    stack = bead_stack(camera=S.CameraConfig.smlm2016(), seed=2)
    psf = P.calibrate_psf(stack, 20.0, 100.0).psf
    assert psf.sigma0_y_nm == pytest.approx(135.0, abs=1.0)
    assert psf.focus_x_nm == pytest.approx(-205.0, abs=4.0)
    assert psf.depth_nm == pytest.approx(290.0, rel=0.015)


def test_a_psf_without_astigmatism_is_refused():
    round_psf = {**TRUE, "focus_x_nm": 0.0, "focus_y_nm": 0.0, "sigma0_y_nm": 140.0}
    with pytest.raises(LoczooError, match="hardly astigmatic"):
        P.calibrate_psf(bead_stack(z_nm=Z_NM[::2], psf=round_psf), 40.0, 100.0)


def test_psf_file_round_trip_into_the_simulator(calibration, tmp_path):
    path = P.write_psf(tmp_path / "psf.json", calibration.psf)
    psf = P.read_psf(path)
    assert psf == P.psf_from_dict(calibration.psf.to_dict())
    astig, sigma_range = P.astigmatism_from_psf(psf)
    assert S.AstigmatismConfig.from_psf_file(path) == astig
    imaging = S.ImagingConfig(psf_sigma_nm=sigma_range, z_range_nm=psf.z_range_nm,
                              astigmatism=astig, density_per_um2=(5.0, 5.0))
    sim = S.simulate(tf.constant([4, 2], tf.int64), 4, 16, 16, imaging)
    mask = sim["mask"].numpy()
    z = sim["z"].numpy()[mask]
    assert mask.sum() > 20 and z.min() >= psf.z_range_nm[0] and z.max() <= psf.z_range_nm[1]
    want_x, want_y = psf.sigmas(z)
    np.testing.assert_allclose(sim["sigma_x"].numpy()[mask], want_x, rtol=1e-5)
    np.testing.assert_allclose(sim["sigma_y"].numpy()[mask], want_y, rtol=1e-5)
    # A wider psf_sigma_nm range scales both widths by sigma / its middle.
    wide = S.ImagingConfig(psf_sigma_nm=(0.9 * sigma_range[0], 1.1 * sigma_range[0]),
                           z_range_nm=psf.z_range_nm, astigmatism=astig)
    sim = S.simulate(tf.constant([4, 3], tf.int64), 4, 16, 16, wide)
    mask = sim["mask"].numpy()
    scale = sim["sigma"].numpy()[mask] / sigma_range[0]
    assert scale.min() < 0.97 and scale.max() > 1.03
    np.testing.assert_allclose(sim["sigma_x"].numpy()[mask],
                               psf.sigmas(sim["z"].numpy()[mask])[0] * scale, rtol=1e-5)
    # The NumPy widths agree; without per-axis widths nothing changes.
    np.testing.assert_allclose(astig.sigmas(z, 1.0)[1], want_y, rtol=1e-9)
    assert S.AstigmatismConfig().sigma0_x_nm is None


def test_per_axis_widths_are_checked_and_saved_in_config_json(tmp_path):
    from loczoo.config import load_json, save_json

    with pytest.raises(LoczooError, match="both or neither"):
        S.AstigmatismConfig(sigma0_x_nm=140.0)
    with pytest.raises(LoczooError, match="sigma0_y_nm must be a number > 0"):
        S.AstigmatismConfig(sigma0_x_nm=140.0, sigma0_y_nm=-1.0)
    imaging = S.ImagingConfig(astigmatism=S.AstigmatismConfig(sigma0_x_nm=140.0,
                                                              sigma0_y_nm=135.0))
    save_json(imaging, tmp_path / "imaging.json")
    assert load_json(S.ImagingConfig, tmp_path / "imaging.json") == imaging


@pytest.mark.parametrize("change,field", [
    ({"sigma0_x_nm": -140.0}, "sigma0_x_nm"),
    ({"depth_nm": 0}, "depth_nm"),
    ({"focus_y_nm": "205"}, "focus_y_nm"),
    ({"a_x": True}, "a_x"),
    ({"b_y": float("nan")}, "b_y"),
    ({"z_range_nm": [600.0, -600.0]}, "z_range_nm"),
    ({"z_range_nm": [-600.0]}, "z_range_nm"),
    ({"residuals_nm": {"x": 1.0}}, "residuals_nm"),
    ({"planes": 2}, "planes"),
    ({"beads": 1.5}, "beads"),
    ({"model": "spline"}, "model"),
    ({"b_x": -2.0}, "a_x, b_x"),  # negative widths inside z_range_nm
    ({"format_version": 7}, "format_version"),
    ({"sigma0": 140.0}, "sigma0"),  # unknown key (a typo)
    ({"pixel_size_nm": None}, "pixel_size_nm"),
])
def test_tampered_psf_files_are_one_error_naming_file_and_field(calibration, tmp_path, change,
                                                                 field):
    data = {**calibration.psf.to_dict(), **change}
    path = tmp_path / "psf.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LoczooError, match=rf"{re.escape(str(path))}: fields? {field}"):
        P.read_psf(path)


def test_malformed_psf_files(calibration, tmp_path):
    data = calibration.psf.to_dict()
    del data["depth_nm"]
    (tmp_path / "missing.json").write_text(json.dumps(data))
    with pytest.raises(LoczooError, match="missing.json: field depth_nm is missing"):
        P.read_psf(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text('{"model": "astigmatic_gaussian", ')
    with pytest.raises(LoczooError, match="broken.json is not valid JSON"):
        P.read_psf(tmp_path / "broken.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(LoczooError, match="list.json: expected a JSON object"):
        P.read_psf(tmp_path / "list.json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(LoczooError, match="binary.json is not a text"):
        P.read_psf(tmp_path / "binary.json")
    with pytest.raises(LoczooError, match="does not exist"):
        P.read_psf(tmp_path / "absent.json")


def test_pixel_size_of_the_psf_must_match_the_data(calibration):
    psf = calibration.psf
    assert P.check_psf_pixel_size(psf, None) == 100.0
    assert P.check_psf_pixel_size(psf, 100.05) == 100.0
    with pytest.raises(LoczooError, match="measured with 100 nm pixels, the data has 160 nm"):
        P.check_psf_pixel_size(psf, 160.0)


def test_cli_writes_psf_json_and_plot(run_cli, beads_tif, tmp_path):
    out, plot = tmp_path / "psf.json", tmp_path / "psf.png"
    code, stdout, err = run_cli("calibrate-psf", beads_tif, "--z-step", 20, "--out", out,
                                "--plot", plot, "--camera", "baseline_adu=500",
                                "--camera", "photons_per_adu=1")
    assert code == 0, err
    psf = P.read_psf(out)
    assert psf.source == "beads.tif" and psf.sigma0_x_nm == pytest.approx(140.0, abs=1.0)
    assert "camera: baseline 500 ADU, 1 photon per ADU" in stdout
    assert "PSF: sigma0 x 14" in stdout and "valid z range" in stdout
    assert len([line for line in stdout.splitlines() if line.strip()[:1].isdigit()]) == 3
    from PIL import Image

    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size == (900, 680)
    # An existing output needs --overwrite.
    code, _, err = run_cli("calibrate-psf", beads_tif, "--z-step", 20, "--out", out)
    assert code == 2 and "exists" in err


def _refused(run_cli, tmp_path, *argv, match: str):
    out = tmp_path / "psf.json"
    code, _, err = run_cli("calibrate-psf", *argv, "--out", out)
    assert code == 2, err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert match in err, err
    assert not any(p.suffix in (".json", ".png") for p in tmp_path.iterdir())


def test_cli_refuses_bad_input(run_cli, beads_tif, tmp_path):
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.tif"
    write_stack(noise, rng.poisson(30, (40, 48, 48)) + 500, pixel_size_nm=100.0)
    _refused(run_cli, tmp_path, noise, "--z-step", 20, match="no beads found")
    few = tmp_path / "few.tif"
    write_stack(few, bead_stack(z_nm=Z_NM[:4]), pixel_size_nm=100.0)
    _refused(run_cli, tmp_path, few, "--z-step", 20, match="4 planes")
    single = tmp_path / "single.tif"
    write_stack(single, bead_stack(z_nm=Z_NM[30:31])[0], pixel_size_nm=100.0)
    _refused(run_cli, tmp_path, single, "--z-step", 20, match="has 1 plane;")
    _refused(run_cli, tmp_path, beads_tif, match="the following arguments are required: "
                                                 "--z-step")
    _refused(run_cli, tmp_path, beads_tif, "--z-step", 0, match="must be > 0, got 0")
    _refused(run_cli, tmp_path, beads_tif, "--z-step", -20, match="must be > 0, got -20")
    _refused(run_cli, tmp_path, beads_tif, "--z-step", "nan", match="finite")
    _refused(run_cli, tmp_path, beads_tif, "--z-step", 20, "--box", 20, match="odd")
    _refused(run_cli, tmp_path, beads_tif, "--z-step", 20, "--camera", "gain=2",
             match="no field 'gain'")
    bare = tmp_path / "bare.tif"
    import tifffile

    tifffile.imwrite(bare, bead_stack(z_nm=Z_NM[::6]).astype(np.uint16))
    _refused(run_cli, tmp_path, bare, "--z-step", 120, match="--pixel-size")
    code, _, err = run_cli("calibrate-psf", beads_tif, "--z-step", 20, "--out",
                           tmp_path / "psf.txt")
    assert code == 2 and "must end in .json" in err


def test_cli_refuses_saturated_beads(run_cli, tmp_path):
    # 5 million photons saturate the 16-bit camera (65535 ADU) in the planes near focus.
    path = tmp_path / "bright.tif"
    write_stack(path, bead_stack(z_nm=Z_NM[::3], photons=5e6), pixel_size_nm=100.0)
    _refused(run_cli, tmp_path, path, "--z-step", 60,
             match="3 of 3 bead(s) reach saturation (65535 ADU, the largest uint16 value)")
    # --skip-saturated needs a bead left; a saturation given for the camera counts too.
    _refused(run_cli, tmp_path, path, "--z-step", 60, "--skip-saturated",
             match="all beads are saturated")
    normal = bead_stack(z_nm=Z_NM[::3])
    with pytest.raises(LoczooError, match=r"reach saturation \(1500 ADU, the camera's"):
        P.calibrate_psf(normal, 60.0, 100.0, saturation_adu=1500.0)
    partly = normal.copy()
    partly[:, 10:20, 36:46] = np.minimum(partly[:, 10:20, 36:46] * 50, 65535)
    cal = P.calibrate_psf(partly.astype(np.uint16), 60.0, 100.0, skip_saturated=True)
    assert cal.psf.beads == 2 and len(cal.saturated) == 1
    assert "saturated bead(s) left out" in cal.notes[-1]
