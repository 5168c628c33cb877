"""Uncertainty calibration (loczoo.calibration.sigma_scales, DECODE's sigma_scale): the
predicted sigmas are rescaled so that error / sigma has unit spread on simulated frames."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from loczoo.calibration import MIN_SIGMA_PAIRS, sigma_scales
from loczoo.errors import LoczooError
from loczoo.smlm.localizations import Localizations


def table(frame, x, y, z=None, **columns):
    return Localizations(frame=np.asarray(frame), x=np.asarray(x, float),
                         y=np.asarray(y, float), z=None if z is None else np.asarray(z, float),
                         **columns)


def test_spread_of_error_over_sigma_per_axis():
    """Errors of exactly +/-2 sigma in x, +/-0.5 sigma in y, +/-3 sigma in z: spreads 2, 0.5,
    3 (each pair in its own frame, so the matching is unambiguous)."""
    n = 2 * MIN_SIGMA_PAIRS
    frame = np.arange(1, n + 1)
    sign = np.where(frame % 2 == 0, 1.0, -1.0)
    truth = table(frame, np.full(n, 1000.0), np.full(n, 1000.0), np.zeros(n))
    sigma = np.full(n, 10.0)
    pred = table(frame, 1000.0 + 20.0 * sign, 1000.0 + 5.0 * sign, 30.0 * sign,
                 sigma_x=sigma, sigma_y=sigma, sigma_z=sigma)
    scales = sigma_scales(truth, pred)
    assert scales == pytest.approx((2.0, 0.5, 3.0))
    # A mismatched pair far out (40 sigma) is left out of the spread.
    far = table(frame, np.r_[1000.0 + 20.0 * sign[:-1], 1200.0], 1000.0 + 5.0 * sign,
                30.0 * sign, sigma_x=np.r_[sigma[:-1], 5.0], sigma_y=sigma, sigma_z=sigma)
    assert sigma_scales(truth, far)[0] == pytest.approx(2.0, rel=0.01)


def test_too_few_pairs_or_no_sigma_measure_nothing():
    n = MIN_SIGMA_PAIRS - 1
    frame = np.arange(1, n + 1)
    truth = table(frame, np.full(n, 500.0), np.full(n, 500.0))
    pred = table(frame, np.full(n, 510.0), np.full(n, 490.0), sigma_x=np.full(n, 10.0),
                 sigma_y=np.full(n, 10.0))
    assert sigma_scales(truth, pred) == (None, None, None)
    assert sigma_scales(truth, table(frame, truth.x, truth.y)) == (None, None, None)


def test_decode_post_processing_applies_the_scale():
    from loczoo.decode.config import DECODEConfig
    from loczoo.decode.postprocess import outputs_to_localizations

    config = replace(DECODEConfig.variants()["3d"], photon_max=1000.0, z_max=900.0,
                     input_scale=1.0, background_max=100.0, threshold=0.5)
    out = np.zeros((1, 4, 4, 10), np.float32)
    out[0, 1, 2, 0] = 0.9                       # p
    out[0, 1, 2, 6:9] = (0.1, 0.2, 0.05)        # sigma x, y (pixels), z (/ z_max)
    plain = outputs_to_localizations(out, config, pixel_size_nm=100.0, height=4, width=4)
    scaled = outputs_to_localizations(out, replace(config, sigma_scale=(2.0, 0.5, 3.0)),
                                      pixel_size_nm=100.0, height=4, width=4)
    assert len(plain) == len(scaled) == 1
    assert plain.sigma_x[0] == pytest.approx(10.0) and scaled.sigma_x[0] == pytest.approx(20.0)
    assert plain.sigma_y[0] == pytest.approx(20.0) and scaled.sigma_y[0] == pytest.approx(10.0)
    assert plain.sigma_z[0] == pytest.approx(45.0) and scaled.sigma_z[0] == pytest.approx(135.0)
    np.testing.assert_array_equal(plain.x, scaled.x)
    for bad in ((1.0, 1.0), (1.0, 0.0, 1.0), (1.0, float("nan"), 1.0)):
        with pytest.raises(LoczooError, match="sigma_scale must be three finite numbers"):
            replace(config, sigma_scale=bad)


def test_calibrating_a_decode_run_stores_the_scale(tmp_path):
    """A DECODE run (the 2D preset, trained one step) calibrated on simulated frames: the
    stored scale makes error / sigma of a second calibration on the same frames unit."""
    from loczoo.bundle import load_bundle
    from loczoo.calibration import calibrate_run_folder
    from loczoo.training import train

    parent = load_bundle("decode/sim-dense-100nm")
    config = replace(parent.config, batch_size=2, learning_rate=1e-9)
    folder = train(parent.entry, config, tmp_path / "run", steps_per_epoch=1, epochs=1,
                   validation_steps=1, quiet=True, init="decode/sim-dense-100nm")
    best, _ = calibrate_run_folder(folder, frames=8, size=64, seed=5)
    stored = json.loads((folder / "config.json").read_text())["sigma_scale"]
    meta = json.loads((folder / "metadata.json").read_text())["calibration"]
    assert stored == pytest.approx(best["sigma_scale"])
    assert meta["sigma_scale"] == pytest.approx(best["sigma_scale"])
    spread_x, spread_y, spread_z = best["sigma_spread_before"]
    assert stored[:2] == pytest.approx([spread_x, spread_y], abs=1e-3)
    assert spread_z is None and stored[2] == 1.0           # 2D: no z to calibrate
    again, _ = calibrate_run_folder(folder, frames=8, size=64, seed=5, store=False)
    assert again["threshold"] == best["threshold"]
    assert again["sigma_spread_before"][:2] == pytest.approx([1.0, 1.0], abs=1e-3)
