"""Mixed-precision training (--precision bfloat16): bfloat16 arithmetic, float32 weights,
outputs and loss; the run's weights load into the float32 model that localizes."""

from __future__ import annotations

import json

import numpy as np


def test_bfloat16_run_trains_and_its_weights_localize_in_float32(tmp_path, run_cli):
    out = tmp_path / "run"
    code, _, err = run_cli("train", "decode", "--config", "tiny", "--out", out,
                           "--precision", "bfloat16", "--steps-per-epoch", "2", "--epochs", "1",
                           "--validation-steps", "1", "--quiet")
    assert code == 0, err
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["precision"] == "bfloat16"
    assert np.isfinite(meta["history"][0]["loss"])

    import keras

    from loczoo.bundle import load_bundle

    assert keras.config.dtype_policy().name == "float32"   # the global policy is restored
    bundle = load_bundle(str(out))
    assert all(w.dtype == "float32" for w in bundle.model.weights)
    frames = np.random.default_rng(0).poisson(100.0, (3, 16, 16)).astype(np.float32)
    outputs = bundle.network_outputs(frames)
    assert outputs[0][1].dtype == np.float32 and np.isfinite(outputs[0][1]).all()


def test_decode_outputs_stay_float32_under_a_mixed_policy():
    import keras

    from loczoo.decode.config import DECODEConfig
    from loczoo.decode.model import build_model

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model(DECODEConfig.tiny())
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("heads").get_layer("outputs").compute_dtype == "float32"
    out = model(np.zeros((1, 8, 8, 3), np.float32))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
