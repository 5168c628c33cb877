"""The cell-pattern simulator: reproducible, each pattern where its compartment is, the camera
model's statistics, balanced labels and refused configurations."""

from __future__ import annotations

import numpy as np
import pytest

from loczoo.errors import LoczooError
from loczoo.proteins.simulate import PATTERNS, CellImagingConfig, balanced_labels, simulate_cells
from loczoo.smlm.simulate import expected_adu

CONFIG = CellImagingConfig(size=48, dna_channel=True)
LABELS = np.repeat(np.arange(len(PATTERNS)), 4)


@pytest.fixture(scope="module")
def cells():
    return {k: np.asarray(v) for k, v in simulate_cells([4, 2], LABELS, CONFIG).items()}


def test_shapes_and_reproducibility(cells):
    n = len(LABELS)
    assert cells["images"].shape == (n, 48, 48, 2) and cells["images"].dtype == np.float32
    again = np.asarray(simulate_cells([4, 2], LABELS, CONFIG)["images"])
    np.testing.assert_array_equal(again, cells["images"])
    other = np.asarray(simulate_cells([4, 3], LABELS, CONFIG)["images"])
    assert not np.array_equal(other, cells["images"])
    single = CellImagingConfig(size=48)
    assert np.asarray(simulate_cells([4, 2], LABELS[:3], single)["images"]).shape == (3, 48, 48, 1)


def _signal_fraction_in_nucleus(cells, label):
    """Share of the protein's photons above background that falls in the nucleus."""
    idx = LABELS == label
    signal = cells["mean_photons"][idx, ..., 0]
    signal = signal - signal.min(axis=(1, 2), keepdims=True)
    nucleus = cells["nucleus"][idx] > 0.5
    return np.sum(signal * nucleus, axis=(1, 2)) / np.sum(signal, axis=(1, 2))


def test_each_pattern_lies_in_its_compartment(cells):
    inside = {name: _signal_fraction_in_nucleus(cells, i) for i, name in enumerate(PATTERNS)}
    assert np.all(inside["nucleus"] > 0.8) and np.all(inside["nucleoli"] > 0.8)
    for name in ("er", "golgi", "vesicles", "mitochondria"):
        assert np.all(inside[name] < 0.25), (name, inside[name])
    # Everything stays within the cell (the PSF blur spills a little).
    for i in range(len(PATTERNS)):
        signal = cells["mean_photons"][LABELS == i, ..., 0]
        signal = signal - signal.min(axis=(1, 2), keepdims=True)
        in_cell = np.sum(signal * (cells["cell"][LABELS == i] > 0.5), axis=(1, 2))
        assert np.all(in_cell / signal.sum(axis=(1, 2)) > 0.85), PATTERNS[i]
    # The DNA channel is the nucleus for every class.
    dna = cells["mean_photons"][..., 1]
    nucleus = cells["nucleus"] > 0.5
    assert np.all([d[m].mean() > 5 * d[~m].mean() - 1e-3 for d, m in zip(dna, nucleus)])


def test_patterns_differ_in_shape(cells):
    """Punctate classes concentrate their photons in few pixels; networks spread them."""
    def top_share(label):
        s = cells["mean_photons"][LABELS == label, ..., 0]
        s = (s - s.min(axis=(1, 2), keepdims=True)).reshape(len(s), -1)
        top = np.sort(s, axis=1)[:, -len(s[0]) // 50:]
        return float(np.mean(top.sum(1) / s.sum(1)))

    shares = {name: top_share(i) for i, name in enumerate(PATTERNS)}
    assert shares["golgi"] > 2 * shares["er"] and shares["nucleoli"] > 1.5 * shares["nucleus"]


def test_camera_statistics(cells):
    """Mean ADU follows the camera model of the mean photons (sCMOS: read noise only)."""
    mean_adu = np.asarray(expected_adu(cells["mean_photons"], CONFIG.camera))
    residual = cells["images"] - mean_adu
    assert abs(residual.mean()) < 0.05
    variance_e = CONFIG.camera.qe * cells["mean_photons"] + CONFIG.camera.read_noise_e ** 2
    z = residual * CONFIG.camera.e_per_adu / np.sqrt(variance_e)
    assert 0.95 < z.std() < 1.08


def test_balanced_labels():
    labels = np.asarray(balanced_labels(50, 8, [0, 7]))
    counts = np.bincount(labels, minlength=8)
    assert counts.min() == 6 and counts.max() == 7 and counts.sum() == 50
    assert not np.array_equal(labels, np.arange(50) % 8)
    np.testing.assert_array_equal(labels, np.asarray(balanced_labels(50, 8, [0, 7])))


@pytest.mark.parametrize("kwargs", [{"size": 8}, {"psf_sigma_px": 0.0},
                                    {"peak_photons": (10.0, 1.0)}, {"patterns": ("nucleus", "x")},
                                    {"patterns": ()}, {"patterns": ("er", "er")}])
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(LoczooError):
        CellImagingConfig(**kwargs)
