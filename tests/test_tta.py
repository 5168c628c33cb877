"""Test-time augmentation (loczoo.smlm.tta, localize --tta): outputs of flipped and transposed
frames mapped back onto the frame and averaged."""

from __future__ import annotations

import numpy as np
import pytest

from loczoo.smlm import tta

CHANNELS = ("p", "x", "y", "sigma_x", "sigma_y", "z")


def fake_network(bias_x=0.3, bias_y=-0.2, sigma_x=1.0, sigma_y=3.0):
    """A 'network' that is exactly equivariant in p and z (copies of its input) and has a
    constant learned offset and anisotropic sigmas in the frame it is given."""
    def forward(inputs):
        frame = inputs[..., 0]
        out = np.zeros(frame.shape + (len(CHANNELS),), np.float32)
        out[..., 0] = frame
        out[..., 1] = bias_x
        out[..., 2] = bias_y
        out[..., 3] = sigma_x
        out[..., 4] = sigma_y
        out[..., 5] = 2.0 * frame
        return out
    return forward


@pytest.mark.parametrize("astigmatic, passes", [(True, 4), (False, 8)])
def test_maps_come_back_onto_the_frame_and_a_constant_offset_cancels(astigmatic, passes):
    rng = np.random.default_rng(0)
    inputs = rng.random((2, 8, 12, 3)).astype(np.float32)   # not square: transposes work too
    assert len(tta.symmetries(astigmatic)) == passes
    out = tta.averaged(fake_network(), inputs, CHANNELS, astigmatic)
    assert out.shape == (2, 8, 12, len(CHANNELS))
    np.testing.assert_allclose(out[..., 0], inputs[..., 0], atol=1e-6)      # p restored
    np.testing.assert_allclose(out[..., 5], 2.0 * inputs[..., 0], atol=1e-6)
    np.testing.assert_allclose(out[..., 1:3], 0.0, atol=1e-6)                # bias cancelled
    if astigmatic:   # x and y never swap: the astigmatic widths stay on their axes
        np.testing.assert_allclose(out[..., 3], 1.0)
        np.testing.assert_allclose(out[..., 4], 3.0)
    else:            # half the passes are transposed
        np.testing.assert_allclose(out[..., 3:5], 2.0)


def test_each_symmetry_restores_an_offset_pointing_at_the_same_place():
    """An emitter at row 2.5 + dy, column 5.5 + dx: a network that reads the offset of the
    brightest pixel's neighbours in its own frame gives, after restore, the same offset in
    the original frame for every symmetry."""
    dx, dy = 0.25, -0.125
    frame = np.zeros((1, 6, 10, 1), np.float32)
    frame[0, 2, 5, 0] = 1.0
    frame[0, 2, 6, 0] = dx      # weight to the right: +x
    frame[0, 1, 5, 0] = -dy     # weight above: -y

    def forward(inputs):
        img = inputs[0, ..., 0]
        r, c = np.unravel_index(np.argmax(img), img.shape)
        right = img[r, c + 1] if c + 1 < img.shape[1] else 0.0
        left = img[r, c - 1] if c > 0 else 0.0
        down = img[r + 1, c] if r + 1 < img.shape[0] else 0.0
        up = img[r - 1, c] if r > 0 else 0.0
        out = np.zeros(img.shape + (2,), np.float32)
        out[r, c] = (right - left, down - up)
        return out[None]

    for s in tta.symmetries(astigmatic=False):
        got = tta.restore(forward(tta.transform(frame, s)), s, ("x", "y"))
        np.testing.assert_allclose(got[0, 2, 5], (dx, dy), atol=1e-7, err_msg=str(s))
        assert np.count_nonzero(got) == 2


@pytest.fixture(scope="module")
def decode_frames():
    from loczoo.bundle import load_bundle
    from loczoo.smlm.simulate import simulate_stack

    bundle = load_bundle("decode/sim-dense-100nm")
    imaging = bundle.config.imaging
    from dataclasses import replace
    sparse = replace(imaging, density_per_um2=(0.5, 0.5), photon_params=(3000.0, 3000.0),
                     background_photons=(20.0, 20.0))
    frames, truth = simulate_stack(sparse, 6, 48, 48, seed=4)
    return bundle, frames, truth


def test_decode_with_tta_localizes_the_same_emitters_no_worse(decode_frames):
    from loczoo.smlm.metrics import evaluate

    bundle, frames, truth = decode_frames
    pixel = bundle.config.imaging.pixel_size_nm
    plain = evaluate(truth, bundle.localize(frames, pixel_size_nm=pixel))
    augmented = bundle.with_test_time_augmentation()
    assert augmented.augmentation_passes() == 8 and not bundle.test_time_augmentation
    with_tta = evaluate(truth, augmented.localize(frames, pixel_size_nm=pixel))
    assert plain["tp"] >= 20
    assert with_tta["jaccard"] >= plain["jaccard"] - 0.05
    # A sign error in the restored x or y offsets would put the average near the pixel centre,
    # tens of nm from the emitter.
    assert with_tta["rmse_lateral"] <= 1.1 * plain["rmse_lateral"]
    assert abs(with_tta["bias_x"]) < 5.0 and abs(with_tta["bias_y"]) < 5.0


def test_localize_tta_prints_its_cost(tmp_path, run_cli, decode_frames):
    from loczoo.smlm.io import write_stack

    _, frames, _ = decode_frames
    stack = tmp_path / "s.tif"
    write_stack(stack, frames[:2], pixel_size_nm=100.0)
    code, out, err = run_cli("localize", stack, "--out", tmp_path / "l.csv", "--model",
                             "decode/sim-3d-smlm2016", "--tta", "--quiet")
    assert code == 0, err
    assert "test-time augmentation: 4 network passes per frame (flips)" in out
    code, _, err = run_cli("localize", stack, "--out", tmp_path / "m.csv", "--model",
                           "plcnn", "--tta")
    assert code == 2 and err.count("\n") == 1
