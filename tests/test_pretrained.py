"""The shipped Deep-STORM preset: it loads, verifies, and localizes without coordinate bias."""

from __future__ import annotations

import numpy as np
import pytest

from loczoo.bundle import load_bundle
from loczoo.errors import LoczooError
from loczoo.registry import get_entry


@pytest.fixture(scope="module")
def bundle():
    return load_bundle("deep_storm")


def test_default_preset_is_shipped_and_calibrated(bundle):
    entry = get_entry("deep_storm")
    assert entry.default_preset in entry.presets
    assert bundle.config.norm_mean is not None and bundle.config.norm_std > 0
    assert "calibration" in bundle.metadata and bundle.metadata["epochs_done"] > 0


def test_zero_coordinate_bias_on_isolated_emitters(bundle):
    from loczoo.calibration import isolated_emitter_errors

    metrics, _ = isolated_emitter_errors(bundle, frames=40, photons=2500, background=20, seed=7)
    assert metrics["tp"] > 300
    assert metrics["jaccard"] > 0.9
    assert abs(metrics["bias_x"]) < 2.0 and abs(metrics["bias_y"]) < 2.0
    assert metrics["rmse_lateral"] < 30.0


def test_tampered_preset_is_refused(tmp_path, monkeypatch):
    entry = get_entry("deep_storm")
    preset = entry.presets[entry.default_preset]
    bad = dict(preset.files)
    bad["model.weights.h5"] = "0" * 64
    from dataclasses import replace

    monkeypatch.setitem(entry.presets, entry.default_preset, replace(preset, files=bad))
    with pytest.raises(LoczooError, match="sha256"):
        load_bundle("deep_storm")


def test_localize_pads_frames_that_are_not_a_multiple(bundle):
    rng = np.random.default_rng(1)
    frames = rng.poisson(120, (2, 33, 35)).astype(np.float32)
    locs = bundle.localize(frames, pixel_size_nm=100.0)
    assert np.all(locs.x < 3500) and np.all(locs.y < 3300)
