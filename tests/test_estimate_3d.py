"""Imaging estimates (loczoo.smlm.estimate) on astigmatic 3D stacks: elliptical spot fits.

The stack is simulated like the NAIRR-SMLM 3DAS sets: 100 nm pixels, an sCMOS camera at
1 ADU/photon and baseline 500 ADU, 2400 photons, 30 photons background, an astigmatic PSF with
in-focus widths 140/135 nm and foci -/+205 nm, z uniform in -400..400 nm. Round spot fits
reject these spots (they are not round); elliptical ones accept them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from loczoo.errors import LoczooError
from loczoo.smlm.estimate import CameraEstimate, estimate_imaging

PHOTONS, BACKGROUND, BASELINE = 2400.0, 30.0, 500.0


def astigmatism():
    from loczoo.smlm.simulate import AstigmatismConfig

    return AstigmatismConfig(sigma0_x_nm=140.0, sigma0_y_nm=135.0, focus_x_nm=-205.0,
                             focus_y_nm=205.0, depth_nm=290.0, a_x=0.05, b_x=0.03, a_y=-0.01,
                             b_y=0.02)


def psf_model():
    from loczoo.smlm.psf import PsfModel

    a = astigmatism()
    return PsfModel(sigma0_x_nm=140.0, sigma0_y_nm=135.0, focus_x_nm=a.focus_x_nm,
                    focus_y_nm=a.focus_y_nm, depth_nm=a.depth_nm, a_x=a.a_x, b_x=a.b_x,
                    a_y=a.a_y, b_y=a.b_y, pixel_size_nm=100.0, z_range_nm=(-400.0, 400.0))


@lru_cache(maxsize=None)
def simulated(n_frames: int = 40):
    """(stack [N, 32, 32] ADU, ground truth), seed fixed."""
    from loczoo.smlm.simulate import CameraConfig, ImagingConfig, simulate_stack

    # psf_sigma_nm (s, s) with s the geometric mean of the per-axis widths: the calibrated
    # widths exactly (AstigmatismConfig.in_focus_widths).
    s = float(np.sqrt(140.0 * 135.0))
    imaging = ImagingConfig(
        pixel_size_nm=100.0, density_per_um2=(1.0, 1.0), photon_params=(PHOTONS, PHOTONS),
        psf_sigma_nm=(s, s), background_photons=(BACKGROUND, BACKGROUND),
        background_field_fraction=0.0, z_range_nm=(-400.0, 400.0), astigmatism=astigmatism(),
        camera=CameraConfig.scmos(qe=1.0, e_per_adu=1.0, read_noise_e=0.0,
                                  baseline_adu=BASELINE))
    return simulate_stack(imaging, n_frames, 32, 32, seed=3)


N_FRAMES = 200   # 40 frames are enough with a known camera; the gain needs more spots


def check(est, gain_tol=None):
    if gain_tol is not None:
        assert est.camera.estimated
        assert est.camera.adu_per_photon == pytest.approx(1.0, rel=gain_tol)
    assert est.emitters.background_photons == pytest.approx(BACKGROUND, rel=0.2)
    assert est.emitters.photons == pytest.approx(PHOTONS, rel=0.3)
    assert est.emitters.density_per_um2 == pytest.approx(1.0, rel=0.3)
    assert est.psf.astigmatic
    assert not any(item.startswith("imaging.psf_sigma_nm") for item in est.imaging_overrides())


def test_round_fits_reject_astigmatic_spots_and_the_error_names_the_flags():
    stack, truth = simulated(N_FRAMES)
    with pytest.raises(LoczooError) as err:
        estimate_imaging(stack[:40], 100.0, camera=CameraEstimate.known(BASELINE, 1.0))
    assert "--psf psf.json" in str(err.value)
    assert "--set imaging.psf_sigma_nm" in str(err.value)


def test_known_camera_elliptical_fits():
    stack, truth = simulated(N_FRAMES)
    est = estimate_imaging(stack[:40], 100.0, localizations=truth,
                           camera=CameraEstimate.known(BASELINE, 1.0), elliptical=True)
    check(est)
    lo_x, hi_x = est.psf.sigma_x_range_nm
    lo_y, hi_y = est.psf.sigma_y_range_nm
    # Widths between the PSF's extremes over -400..400 nm (140-353 / 135-326 nm), +/- noise.
    assert 125 < lo_x < hi_x < 380 and 120 < lo_y < hi_y < 360
    assert any(line.startswith("PSF widths (astigmatic") for line in est.summary_lines())


def test_estimated_camera_elliptical_fits():
    stack, truth = simulated(N_FRAMES)
    est = estimate_imaging(stack, 100.0, localizations=truth, elliptical=True)
    check(est, gain_tol=0.15)
    assert est.camera.baseline_adu == pytest.approx(BASELINE, abs=15.0)


def test_known_psf_and_camera():
    stack, truth = simulated(N_FRAMES)
    known = CameraEstimate.known(BASELINE, 1.0)
    est = estimate_imaging(stack[:40], 100.0, localizations=truth, camera=known,
                           psf=psf_model(), psf_source="psf.json")
    check(est)
    assert est.psf.source == "psf.json" and est.psf.n_spots == 0
    assert est.psf.sigma_nm == pytest.approx(np.sqrt(140.0 * 135.0))
    assert est.psf.sigma_x_range_nm[0] == pytest.approx(140.0, abs=1.0)
    assert any(line.startswith("PSF from psf.json (not estimated)")
               for line in est.summary_lines())


def test_known_psf_estimated_camera():
    stack, truth = simulated(N_FRAMES)
    est = estimate_imaging(stack, 100.0, localizations=truth, psf=psf_model())
    check(est, gain_tol=0.15)


def test_two_d_fits_stay_round():
    """Without elliptical or psf the fits are round as before (sigma_y copies sigma)."""
    from loczoo.smlm.estimate import _find_and_fit

    stack, _ = simulated(N_FRAMES)
    spots = _find_and_fit(np.asarray(stack[:20], np.float64), 1.5)
    assert len(spots) and not spots.elliptical
    np.testing.assert_array_equal(spots.theta[:, 2], spots.theta[:, 7])


def test_known_psf_reads_the_data_z_range():
    """The spots' widths read on a PSF calibrated over -800..800 nm give the data's z range
    (-400..400 nm) widened by the margin, not the PSF's whole range."""
    from dataclasses import replace

    stack, truth = simulated(N_FRAMES)
    wide = replace(psf_model(), z_range_nm=(-800.0, 800.0))
    est = estimate_imaging(stack, 100.0, localizations=truth,
                           camera=CameraEstimate.known(BASELINE, 1.0), psf=wide)
    lo, hi = est.psf.z_range_nm
    assert est.psf.n_z_spots >= 20
    assert -650.0 < lo <= -400.0 and 400.0 <= hi < 650.0
    assert f"imaging.z_range_nm=[{lo!r}, {hi!r}]" in est.imaging_overrides()
    assert any("z range to train" in line for line in est.summary_lines())


def test_too_few_spots_leave_the_psf_range():
    from dataclasses import replace

    stack, truth = simulated(N_FRAMES)
    wide = replace(psf_model(), z_range_nm=(-800.0, 800.0))
    est = estimate_imaging(stack[:3], 100.0, localizations=truth,
                           camera=CameraEstimate.known(BASELINE, 1.0), psf=wide)
    assert est.psf.z_range_nm is None
    assert not any(item.startswith("imaging.z_range_nm") for item in est.imaging_overrides())
    assert any("PSF's whole range" in line for line in est.summary_lines())


def test_astigmatic_density_counts_the_light_not_the_first_pass():
    """A first pass that found only the emitters near focus (a 2D network misses defocused
    astigmatic spots) would put the density at about a third; the frames' light does not."""
    stack, truth = simulated(N_FRAMES)
    near_focus = truth.select(np.abs(np.asarray(truth.z)) < 130.0)
    est = estimate_imaging(stack, 100.0, localizations=near_focus,
                           camera=CameraEstimate.known(BASELINE, 1.0), psf=psf_model())
    assert est.emitters.density_source == "photon budget"
    assert est.emitters.density_per_um2 == pytest.approx(1.0, rel=0.2)
