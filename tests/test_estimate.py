"""Imaging-parameter estimates (loczoo.smlm.estimate) against simulated and real ground truth.

Simulated stacks come from the project simulator with known cameras (sCMOS, EMCCD, a plain
photon-counting camera), PSF widths, pixel sizes and densities; the real sets are the
Deep-STORM demo 1 stack and NAIRR-SMLM 2DGauss_LD in ../shared/data (skipped when absent).

Truth conventions: photons are *detected* photons (QE cannot be seen in the frames, so the
truth is qe x the simulated photons), and without a known read noise the baseline is the
effective one, baseline - read_variance / variance_slope (the mean-variance line cannot tell
them apart; the module docstring explains why).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from loczoo.config import with_overrides
from loczoo.errors import LoczooError
from loczoo.smlm.estimate import (
    CameraEstimate,
    estimate_camera,
    estimate_emitters,
    estimate_imaging,
    estimate_psf_sigma,
)

# name: imaging keyword arguments, camera (factory, arguments), frames, height, width
CASES = {
    # sCMOS (qe 0.8, read noise 1.6 e-), sparse, background varying from frame to frame.
    "scmos": (dict(pixel_size_nm=100.0, density_per_um2=(0.3, 1.0), photon_params=(1000.0,
                   4000.0), psf_sigma_nm=(100.0, 130.0), background_photons=(10.0, 100.0)),
              ("scmos", dict(baseline_adu=100.0)), 200, 48, 48),
    # EMCCD (gain 100, excess noise 2) at 160 nm pixels, moderately dense.
    "emccd_160": (dict(pixel_size_nm=160.0, density_per_um2=(0.5, 2.0), photon_params=(1500.0,
                       4000.0), psf_sigma_nm=(140.0, 150.0), background_photons=(20.0, 60.0)),
                  ("emccd", dict(baseline_adu=200.0)), 150, 40, 40),
    # Dense EMCCD data: only a first localization pass makes it tractable.
    "emccd_dense": (dict(pixel_size_nm=100.0, density_per_um2=(2.0, 5.0), photon_params=(1000.0,
                         3000.0), psf_sigma_nm=(95.0, 105.0), background_photons=(30.0, 60.0)),
                    ("emccd", dict(baseline_adu=200.0)), 120, 48, 48),
    # One background level everywhere: only the spots' residuals show the gain.
    "flat": (dict(pixel_size_nm=100.0, density_per_um2=(1.0, 1.0), photon_params=(2000.0,
                  3000.0), psf_sigma_nm=(110.0, 110.0), background_photons=(40.0, 40.0)),
             ("plain", dict(qe=1.0, e_per_adu=0.5, read_noise_e=1.5, baseline_adu=100.0)),
             200, 48, 48),
}


@lru_cache(maxsize=None)
def simulated(name: str):
    """(stack [N, H, W] ADU, ground truth, ImagingConfig) of a CASES entry, seed fixed."""
    from loczoo.smlm.simulate import CameraConfig, ImagingConfig, simulate_stack

    kwargs, (kind, cam_kwargs), n, h, w = CASES[name]
    factory = {"scmos": CameraConfig.scmos, "emccd": CameraConfig.emccd,
               "plain": CameraConfig}[kind]
    imaging = ImagingConfig(**kwargs, background_field_fraction=0.0, camera=factory(**cam_kwargs))
    stack, truth = simulate_stack(imaging, n, h, w, seed=7)
    return stack, truth, imaging


@lru_cache(maxsize=None)
def estimated(name: str, first_pass: bool, excess_noise_factor: float = 1.0):
    """estimate_imaging of a CASES entry (shared by tests), with the ground truth as the
    first localization pass if ``first_pass``."""
    stack, truth, imaging = simulated(name)
    return estimate_imaging(stack, imaging.pixel_size_nm,
                            localizations=truth if first_pass else None,
                            excess_noise_factor=excess_noise_factor)


def truth_of(imaging):
    """Expected estimates: detected-photon gain, variance slope, effective baseline."""
    cam = imaging.camera
    adu_per_photon = (cam.em_gain or 1.0) / cam.e_per_adu
    slope = cam.excess_noise_factor * adu_per_photon
    read_var = (cam.read_noise_e / cam.e_per_adu) ** 2
    return {"adu_per_photon": adu_per_photon, "slope": slope,
            "read_noise_adu": cam.read_noise_e / cam.e_per_adu,
            "baseline_eff": cam.baseline_adu - read_var / slope,
            # Background as the estimate sees it: the read noise counts as shot noise.
            "background": lambda b: cam.qe * b + read_var / slope / adu_per_photon,
            "photon_median": cam.qe * float(np.mean(imaging.photon_params)),
            "sigma": float(np.mean(imaging.psf_sigma_nm))}


def assert_camera(est: CameraEstimate, imaging, gain_tol=0.08, baseline_tol=3.0,
                  photon_tol=1.5):
    t = truth_of(imaging)
    assert est.adu_per_photon == pytest.approx(t["adu_per_photon"], rel=gain_tol)
    assert est.photons_per_adu == pytest.approx(1.0 / est.adu_per_photon)
    # 3 ADU or 2 %, but at least 1.5 photons (an EMCCD has 8 ADU per photon).
    tol = max(baseline_tol, 0.02 * t["baseline_eff"], photon_tol * t["adu_per_photon"])
    assert est.baseline_adu == pytest.approx(t["baseline_eff"], abs=tol)
    # The true baseline lies between the estimate (zero read noise) and the upper bound.
    assert est.baseline_adu - tol <= imaging.camera.baseline_adu <= est.baseline_max_adu + tol


# --------------------------------------------------------------------------- simulated


def test_scmos_sparse_without_first_pass():
    stack, truth, imaging = simulated("scmos")
    est = estimated("scmos", first_pass=False)
    t = truth_of(imaging)
    assert_camera(est.camera, imaging)
    assert est.camera.n_tile_bins >= 10 and est.camera.r_squared > 0.95
    assert est.psf.sigma_nm == pytest.approx(t["sigma"], rel=0.05)
    # 10-90 % of a uniform 100-130 nm width, plus fit noise.
    assert 98 < est.psf.sigma_range_nm[0] < 110 and 120 < est.psf.sigma_range_nm[1] < 135
    assert est.emitters.photons == pytest.approx(t["photon_median"], rel=0.15)
    lo, hi = est.emitters.background_range_photons
    assert lo == pytest.approx(t["background"](19.0), rel=0.2)     # 10-90 % of U(10, 100)
    assert hi == pytest.approx(t["background"](91.0), rel=0.1)
    # Without a first pass the density is the spot finder's count: a lower bound here.
    true_density = np.bincount(truth.frame, minlength=len(stack) + 1)[1:] / (48 * 48 * 0.01)
    assert est.emitters.density_source == "spot finder"
    assert 0.6 * np.median(true_density) < est.emitters.density_per_um2 <= (
        1.05 * np.median(true_density))
    assert any("spot finder" in line for line in est.summary_lines())


def test_emccd_160nm_pixels_with_first_pass():
    stack, truth, imaging = simulated("emccd_160")
    est = estimated("emccd_160", first_pass=True, excess_noise_factor=2.0)
    t = truth_of(imaging)
    # Too crowded for background tiles: the baseline rests on the spots' lowest pixels and
    # comes out 0.5-3 photons low over seeds (25 ADU at 8.3 ADU per photon).
    assert est.camera.n_tile_bins == 0
    assert_camera(est.camera, imaging, photon_tol=3.5)
    assert est.camera.variance_slope == pytest.approx(t["slope"], rel=0.08)
    assert est.psf.sigma_nm == pytest.approx(t["sigma"], rel=0.05)
    assert est.emitters.photons == pytest.approx(t["photon_median"], rel=0.15)
    true_density = np.bincount(truth.frame, minlength=len(stack) + 1)[1:] / (40 * 40 * 0.0256)
    assert est.emitters.density_per_um2 == pytest.approx(np.median(true_density), rel=0.05)
    assert est.emitters.density_range_per_um2[1] == pytest.approx(
        np.percentile(true_density, 90), rel=0.2)
    assert est.emitters.background_photons == pytest.approx(t["background"](40.0), rel=0.15)


def test_em_camera_without_the_excess_factor_reads_twice_the_gain():
    stack, truth, imaging = simulated("emccd_160")
    t = truth_of(imaging)
    # Moderately crowded (up to 2 /um^2 at 160 nm pixels): a first pass is needed.
    with pytest.raises(LoczooError, match="crowded"):
        estimate_camera(stack)
    plain = estimate_camera(stack, localizations=truth, pixel_size_nm=160.0)
    assert plain.adu_per_photon == pytest.approx(2.0 * t["adu_per_photon"], rel=0.08)
    assert plain.variance_slope == pytest.approx(t["slope"], rel=0.08)


def test_dense_emccd_needs_a_first_pass():
    stack, truth, imaging = simulated("emccd_dense")
    with pytest.raises(LoczooError, match="localization"):
        estimate_camera(stack, excess_noise_factor=2.0)
    est = estimate_imaging(stack, 100.0, localizations=truth, excess_noise_factor=2.0)
    t = truth_of(imaging)
    assert est.camera.adu_per_photon == pytest.approx(t["adu_per_photon"], rel=0.08)
    # In photons, as for emccd_160 (no background tiles in such a crowd).
    assert abs(est.camera.baseline_adu - t["baseline_eff"]) * est.camera.photons_per_adu < 3.5
    assert est.psf.sigma_nm == pytest.approx(t["sigma"], rel=0.05)
    assert est.emitters.photons == pytest.approx(t["photon_median"], rel=0.15)
    true_density = np.bincount(truth.frame, minlength=len(stack) + 1)[1:] / (48 * 48 * 0.01)
    assert est.emitters.density_per_um2 == pytest.approx(np.median(true_density), rel=0.05)
    assert est.emitters.background_photons == pytest.approx(t["background"](45.0), rel=0.15)


def test_flat_background_gain_from_spot_residuals_and_known_read_noise():
    stack, _, imaging = simulated("flat")
    t = truth_of(imaging)
    est = estimate_camera(stack)
    # The baseline is extrapolated from one level 85 ADU above it: 3 % in the slope moves it
    # by 3 ADU, hence 6 ADU here.
    assert_camera(est, imaging, baseline_tol=6.0)
    assert est.n_spot_bins >= 8
    # With the read noise given, the baseline is the true one.
    known = estimate_camera(stack, read_noise_adu=t["read_noise_adu"])
    assert known.baseline_adu == pytest.approx(imaging.camera.baseline_adu, abs=6.0)
    assert known.read_noise_known and known.read_noise_adu == pytest.approx(3.0)
    psf = estimate_psf_sigma(stack, est, 100.0)
    assert psf.sigma_nm == pytest.approx(110.0, rel=0.04)
    assert psf.sigma_range_nm[1] - psf.sigma_range_nm[0] < 15.0
    em = estimate_emitters(stack, est, 100.0, psf.sigma_nm)
    assert em.photons == pytest.approx(2500.0, rel=0.1)
    assert em.photon_range[0] > 1900 and em.photon_range[1] < 3100
    assert em.background_photons == pytest.approx(t["background"](40.0), rel=0.15)


def test_overrides_round_trip_through_the_simulator_config():
    from loczoo.registry import get_entry

    base = get_entry("deep_storm").config_cls.default()
    for name, first_pass, factor in (("scmos", False, 1.0), ("emccd_160", True, 2.0)):
        est = estimated(name, first_pass, factor)
        overrides = est.imaging_overrides()
        assert all(item.startswith("imaging.") for item in overrides)
        config = with_overrides(base, overrides).imaging
        assert config.camera.photons_per_adu == pytest.approx(est.camera.photons_per_adu,
                                                              rel=1e-5)
        assert config.camera.baseline_adu == pytest.approx(est.camera.baseline_adu, rel=1e-5)
        assert (config.camera.em_gain is None) == (factor == 1.0)
        assert config.camera.excess_noise_factor == factor
        assert config.pixel_size_nm == simulated(name)[2].pixel_size_nm
        lo, hi = config.psf_sigma_nm     # written with 6 significant digits
        assert lo <= 0.9 * est.psf.sigma_nm + 0.01 and hi >= 1.1 * est.psf.sigma_nm - 0.01
        assert lo <= est.psf.sigma_range_nm[0] and hi >= est.psf.sigma_range_nm[1]
        assert config.photon_distribution == "uniform"
        assert config.photon_params[0] < est.emitters.photon_range[0]
        assert config.photon_params[1] > est.emitters.photon_range[1]
        assert config.density_per_um2[0] < est.emitters.density_range_per_um2[0]
        assert config.density_per_um2[1] > est.emitters.density_range_per_um2[1]
        assert config.background_photons[0] < est.emitters.background_range_photons[0]
        assert config.background_photons[1] > est.emitters.background_range_photons[1]
    # The simulated look-alike (EM gain, no read noise) has the data's mean-variance line.
    from loczoo.smlm.simulate import simulate_stack

    again, first = simulate_stack(config, 80, 40, 40, seed=3)
    check = estimate_camera(again, excess_noise_factor=2.0, localizations=first,
                            pixel_size_nm=160.0)
    assert check.variance_slope == pytest.approx(est.camera.variance_slope, rel=0.08)
    assert check.baseline_adu == pytest.approx(est.camera.baseline_adu,
                                               abs=4.0 * est.camera.adu_per_photon)


def test_summary_lines_and_known_camera():
    stack, truth, imaging = simulated("flat")
    camera = CameraEstimate.known(100.0, 2.0)
    est = estimate_imaging(stack[:60], 100.0, localizations=truth, camera=camera)
    lines = est.summary_lines()
    assert lines[0].startswith("camera baseline 100.0 ADU, 2 ADU/photon")
    assert any(line.startswith("PSF sigma 11") for line in lines)
    assert any(line.startswith("density") and "first-pass localizations" in line
               for line in lines)
    assert est.emitters.photons == pytest.approx(2500.0, rel=0.1)


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_one_clear_error():
    rng = np.random.default_rng(0)
    good = rng.poisson(50.0, (20, 32, 32)).astype(np.uint16)
    with pytest.raises(LoczooError, match="too few frames"):
        estimate_camera(good[:5])
    with_nan = good.astype(np.float32)
    with_nan[3, 4, 5] = np.nan
    with pytest.raises(LoczooError, match="NaN"):
        estimate_camera(with_nan)
    with pytest.raises(LoczooError, match="constant"):
        estimate_camera(np.full((20, 32, 32), 100, np.uint16))
    with pytest.raises(LoczooError, match="shape"):
        estimate_camera(np.zeros((2, 3, 4, 5)))
    with pytest.raises(LoczooError, match="too small"):
        estimate_camera(good[:, :8, :8])
    with pytest.raises(LoczooError, match="pixel_size_nm"):
        estimate_imaging(good, 0.0)
    # Pure noise whose level changes from frame to frame: the camera is measurable from the
    # background alone, but there is nothing to measure a PSF on.
    level = np.linspace(20, 200, 100)[:, None, None]
    noise = (rng.poisson(np.broadcast_to(level, (100, 48, 48))) * 2.0 + 100.0).astype(np.uint16)
    camera = estimate_camera(noise)
    assert camera.adu_per_photon == pytest.approx(2.0, rel=0.08)
    assert camera.baseline_adu == pytest.approx(100.0, abs=3.0)
    with pytest.raises(LoczooError, match="no isolated spots"):
        estimate_psf_sigma(noise, camera, 100.0)


def test_constant_frames_are_left_out_and_memmaps_work(tmp_path):
    stack, _, imaging = simulated("scmos")
    data = stack.astype(np.uint16)
    data[5] = 0                                     # a dropped frame
    path = tmp_path / "stack.npy"
    np.save(path, data)
    mapped = np.load(path, mmap_mode="r")
    est = estimate_camera(mapped)
    assert any("constant frame" in note for note in est.notes)
    assert est.adu_per_photon == pytest.approx(truth_of(imaging)["adu_per_photon"], rel=0.08)


# --------------------------------------------------------------------------- real data


def test_deepstorm_demo1(shared_data):
    from loczoo.smlm.io import read_localizations, read_stack

    folder = shared_data / "deepstorm_demo1"
    stack = read_stack(folder / "ArtificialDataset_demo1.tif", 100.0)
    truth = read_localizations(folder / "positions_demo1.csv")
    # 20 frames of ~250 emitters each: no spot is isolated, so without a first pass the
    # estimator refuses rather than guessing.
    with pytest.raises(LoczooError, match="localization"):
        estimate_imaging(stack.frames, 100.0, excess_noise_factor=2.0)
    # ThunderSTORM's generator models an EMCCD: the noise shows twice the 2.07 ADU/photon.
    est = estimate_imaging(stack.frames, 100.0, localizations=truth, excess_noise_factor=2.0)
    assert est.camera.adu_per_photon == pytest.approx(2.07, rel=0.1)
    assert 85.0 <= est.camera.baseline_adu <= 105.0
    assert 100.0 <= est.psf.sigma_nm <= 118.0
    assert 1900.0 <= est.emitters.photons <= 2600.0
    assert 15.0 <= est.emitters.background_photons <= 25.0
    assert est.emitters.density_per_um2 == pytest.approx(6.0, rel=0.1)


def test_nairr_2dgauss_ld(shared_data):
    from loczoo.smlm.io import read_localizations, read_stack

    folder = shared_data / "nairr_smlm" / "2DGauss_LD"
    stack = read_stack(folder / "2DGauss_LD_Train_Frame.tif", 100.0)
    truth = read_localizations(folder / "2DGauss_LD_Train_xy.csv")
    frames = stack.frames[:500]
    first = truth.select(truth.frame <= 500)
    est = estimate_imaging(frames, 100.0, localizations=first)
    # 1 ADU = 1 photon; sigma 109 nm; 3000 photons.
    assert est.camera.adu_per_photon == pytest.approx(1.0, rel=0.1)
    assert est.psf.sigma_nm == pytest.approx(109.0, rel=0.04)
    assert est.emitters.photons == pytest.approx(3000.0, rel=0.08)
    # Offset 500 ADU with large extra noise: the effective baseline is lower, the bound
    # brackets the real one.
    assert est.camera.baseline_adu - 10.0 <= 500.0 <= est.camera.baseline_max_adu
    # Without a first pass: the spot finder alone, less precise.
    alone = estimate_camera(frames)
    assert alone.adu_per_photon == pytest.approx(1.0, rel=0.15)
