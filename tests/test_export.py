"""Exports of the shipped presets: SavedModels (native and frozen) and TFLite reload and give
the Keras outputs; TFLite has built-in ops only and tiles large frames; loczoo localize runs a
.tflite; bioimage.io packages pass bioimageio.spec validation and bioimageio.core's
test_model; bad input gets one error line and nothing is written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from loczoo.export import export_model
from loczoo.export.common import load_source, network_input, sample_raw_input
from loczoo.registry import KNOWN_ENTRIES

# max |exported - Keras| / max |Keras| allowed: float32 graphs with other kernels and fusions.
RELATIVE_TOLERANCE = 1e-5



def reference(source, size):
    raw = sample_raw_input(source, size)
    x = network_input(source, raw)
    return raw, x, np.asarray(source.model(x, training=False))


def test_test_inputs_are_the_entries_own_preprocessing():
    source = load_source("deep_storm")
    raw = sample_raw_input(source, (24, 30))
    assert raw.shape == (1, 24, 30, 1) and raw.std() > 0  # camera frames in ADU
    x = network_input(source, raw)
    expected = source.entry.preprocess(raw[..., 0], source.bundle.config)
    np.testing.assert_allclose(x, expected)


@pytest.mark.parametrize("name", KNOWN_ENTRIES)
def test_saved_models_reload_with_the_keras_outputs(name, tmp_path):
    from loczoo.export.saved_model import run_saved_model

    out = export_model(name, "savedmodel", tmp_path / "sm")
    source = load_source(name)
    layout = source.layout
    size = (layout.fixed_size or 2 * layout.min_size(), ) * 2
    if layout.fixed_size is None:  # not square, to catch swapped axes
        size = (size[0], size[1] + layout.input_multiple)
    _, x, expected = reference(source, size)
    for kind in ("native", "frozen"):
        got = run_saved_model(out / kind, x)
        diff = float(np.abs(got - expected).max())
        print(f"{name} {kind}: max abs difference {diff:.3g} (output scale "
              f"{np.abs(expected).max():.3g})")
        assert got.shape == expected.shape
        assert diff <= RELATIVE_TOLERANCE * np.abs(expected).max() + 1e-6
    card = (out / "model_card.md").read_text()
    assert f"entry: `{source.entry.name}`" in card and "training command" in card


@pytest.mark.parametrize("name", KNOWN_ENTRIES)
def test_tflite_has_builtin_ops_only_and_matches_keras(name, tmp_path):
    from loczoo.export.tflite import TiledInterpreter, operator_names, read_metadata

    path = export_model(name, "tflite", tmp_path / "m.tflite")
    ops = operator_names(path.read_bytes())
    print(name, ops)
    assert not [op for op in ops if "CUSTOM" in op or "Flex" in op]
    meta = read_metadata(path)
    assert meta["entry"] == load_source(name).entry.name
    source = load_source(name)
    size = tuple(meta["input_size"])
    _, x, expected = reference(source, size)
    runner = TiledInterpreter(path, source.layout, size)
    diff = float(np.abs(runner(x) - expected).max())
    print(f"{name} tflite: max abs difference {diff:.3g}")
    assert diff <= 10 * RELATIVE_TOLERANCE * np.abs(expected).max() + 1e-6
    assert (tmp_path / "m.md").read_text().startswith(f"# {source.name}: tflite export")


def test_tflite_tiles_large_frames_like_the_whole_frame(tmp_path):
    """Deep-STORM normalises outside the network and its receptive field fits in the tile
    margin, so a 2 x 3 tiling of a large frame equals the whole-frame output."""
    from loczoo.export.tflite import load_tflite_bundle

    path = export_model("deep_storm", "tflite", tmp_path / "m.tflite", size=(32, 32))
    source = load_source("deep_storm")
    _, x, expected = reference(source, (50, 70))
    got = load_tflite_bundle(path).model(x)
    assert got.shape == expected.shape == (1, 200, 280, 1)
    assert float(np.abs(got - expected).max()) <= RELATIVE_TOLERANCE * np.abs(expected).max()


def test_tile_starts_cover_the_frame_on_the_pooling_grid():
    from loczoo.export.tflite import tile_starts

    starts = tile_starts(150, 64, 10, 4)
    assert starts[0] == 0 and starts[-1] == 150 - 64
    assert all(s % 4 == 0 for s in starts[:-1])
    kept_until = 0
    for s in starts:  # each tile keeps [s + margin, s + tile - margin) except at the edges
        lo = 0 if s == 0 else s + 10
        assert lo <= kept_until
        kept_until = 150 if s == starts[-1] else s + 64 - 10
    assert kept_until == 150 and tile_starts(40, 64, 10, 4) == [0]


def test_localize_runs_a_tflite_export(tmp_path, run_cli):
    from loczoo.smlm.simulate import simulate_stack

    source = load_source("deep_storm")
    frames, _ = simulate_stack(source.bundle.config.imaging, 4, 40, 56, seed=3)
    stack = tmp_path / "s.tif"
    tifffile.imwrite(stack, np.asarray(frames).astype(np.uint16), photometric="minisblack")
    model = export_model("deep_storm", "tflite", tmp_path / "m.tflite", size=(32, 32))
    results = {}
    for name, arg in (("tflite", model), ("keras", "deep_storm")):
        code, _, err = run_cli("localize", stack, "--out", tmp_path / f"{name}.csv",
                               "--model", arg, "--pixel-size", 100, "--quiet")
        assert code == 0, err
        results[name] = np.loadtxt(tmp_path / f"{name}.csv", delimiter=",", skiprows=1,
                                   usecols=(1, 2, 3))
    assert len(results["tflite"]) == len(results["keras"]) > 10
    np.testing.assert_allclose(results["tflite"], results["keras"], atol=0.01)


@pytest.fixture(scope="module")
def tflite_export(tmp_path_factory):
    """A 32 x 32 Deep-STORM TFLite export and a small stack to localize."""
    folder = tmp_path_factory.mktemp("tflite")
    model = export_model("deep_storm", "tflite", folder / "m.tflite", size=(32, 32))
    stack = folder / "s.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(stack, rng.poisson(120, (2, 40, 40)).astype(np.uint16),
                     photometric="minisblack")
    return model, stack


def _replace_metadata(data: bytes, payload: bytes | None) -> bytes:
    """``data`` with the loczoo metadata replaced by ``payload`` (None: removed)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    kept = []
    for entry in model.metadata:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name != "loczoo":
            kept.append(entry)
        elif payload is not None:
            model.buffers[entry.buffer].data = np.frombuffer(payload, np.uint8)
            kept.append(entry)
    model.metadata = kept
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _metadata(data: bytes, **changes) -> bytes:
    from loczoo.export.tflite import read_metadata

    path = Path(tempfile.mkdtemp()) / "x.tflite"
    path.write_bytes(data)
    meta = {**read_metadata(path), **changes}
    return _replace_metadata(data, json.dumps({k: v for k, v in meta.items()
                                               if v is not None}).encode())


# (case, bytes of the bad .tflite from those of a good one, what the error says)
BAD_TFLITE = [
    ("text", lambda data: b"this is not a model\n", "is not a TFLite model"),
    ("empty", lambda data: b"", "is not a TFLite model"),
    ("tiff", lambda data: b"II*\x00\x08\x00\x00\x00" + data[8:100], "is not a TFLite model"),
    ("truncated-header", lambda data: data[:8], "damaged or truncated"),
    ("truncated-half", lambda data: data[:len(data) // 2], "damaged or truncated"),
    ("truncated-end", lambda data: data[:-50], "damaged or truncated"),
    ("no-metadata", lambda data: _replace_metadata(data, None), "has no loczoo metadata "
     "(was it exported by `loczoo export"),
    ("metadata-not-json", lambda data: _replace_metadata(data, b"{not json"),
     "has damaged loczoo metadata (not JSON"),
    ("metadata-list", lambda data: _replace_metadata(data, b"[1, 2]"),
     "has damaged loczoo metadata (no entry, config, input_size"),
    ("metadata-no-config", lambda data: _metadata(data, config=None),
     "has damaged loczoo metadata (no config"),
    ("unknown-entry", lambda data: _metadata(data, entry="nope"),
     "has damaged loczoo metadata: unknown zoo entry 'nope'"),
    ("bad-config", lambda data: _metadata(data, config={"threshold": "high"}),
     "has damaged loczoo metadata: threshold must be a finite number"),
    ("bad-size", lambda data: _metadata(data, input_size=[32]),
     "has damaged loczoo metadata: input_size must be two positive integers"),
]


@pytest.mark.parametrize("make, message", [pytest.param(*case[1:], id=case[0])
                                           for case in BAD_TFLITE])
def test_a_bad_tflite_model_is_one_error_line(make, message, tflite_export, tmp_path,
                                              run_cli):
    from loczoo.errors import LoczooError
    from loczoo.export.tflite import load_tflite_bundle

    good, stack = tflite_export
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(make(good.read_bytes()))
    with pytest.raises(LoczooError, match=re.escape(message)):
        load_tflite_bundle(bad)
    code, out, err = run_cli("localize", stack, "--model", bad, "--out", tmp_path / "l.csv",
                             "--quiet")
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad} "), err
    assert message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tflite"]


def test_tflite_export_and_run_print_nothing_from_cpp(tmp_path):
    """The converter's log and warnings, and LiteRT's XNNPACK line, stay off descriptor 2
    (also in the Python API, without TF_CPP_MIN_LOG_LEVEL)."""
    code = ("import numpy as np\n"
            "from loczoo.export import export_model\n"
            "from loczoo.export.tflite import load_tflite_bundle\n"
            f"path = export_model('deep_storm', 'tflite', {str(tmp_path / 'm.tflite')!r}, "
            "size=(32, 32))\n"
            "bundle = load_tflite_bundle(path)\n"
            "bundle.localize(np.full((1, 32, 32), 100.0), pixel_size_nm=100)\n"
            "print('done')\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert result.stderr == ""


@pytest.mark.parametrize("name", ["deep_storm", "subpixel_dt", "decode", "plcnn"])
def test_bioimageio_package_validates_and_passes_test_model(name, tmp_path, monkeypatch):
    # bioimageio.core unzips SavedModel weights into the working folder.
    monkeypatch.chdir(tmp_path)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # bioimageio.core's Keras adapter
    import yaml
    from bioimageio.core import test_model
    from bioimageio.spec import ValidationContext, load_description

    package = export_model(name, "bioimageio", tmp_path / "model.zip")
    with zipfile.ZipFile(package) as zf:
        names = set(zf.namelist())
        description = yaml.safe_load(zf.read("rdf.yaml"))
        with zipfile.ZipFile(zf.open("tf_saved_model.zip")) as saved:
            assert "saved_model.pb" in saved.namelist()  # at the zip root, as JDLL unzips it
    assert {"rdf.yaml", "README.md", "cover.png", "test_input.npy", "test_output.npy",
            "tf_saved_model.zip", "loczoo_config.json", "loczoo_model.weights.h5",
            "model_card.md"} <= names
    # What DeepImageJ's reader needs: plain strings, tiling flags, ids = signature keys.
    assert description["format_version"] == "0.5.4"
    assert isinstance(description["documentation"], str)
    assert all(isinstance(c, str) for c in description["covers"])
    deepimagej = description["config"]["deepimagej"]
    assert deepimagej["pyramidal_model"] is False
    assert deepimagej["allow_tiling"] is (name != "plcnn")
    assert [t["id"] for t in description["inputs"] + description["outputs"]] == ["input",
                                                                                 "output"]
    weights = description["weights"]
    assert isinstance(weights["tensorflow_saved_model_bundle"]["tensorflow_version"], str)
    layout = load_source(name).layout
    if layout.spatial_output:  # the upsampling is in the output axes' scale
        y_in, y_out = description["inputs"][0]["axes"][1], description["outputs"][0]["axes"][1]
        assert y_in["scale"] / y_out["scale"] == pytest.approx(layout.upsampling)
        assert y_out["size"] == {"tensor_id": "input", "axis_id": "y"}
    assert "## Validation" in zipfile.ZipFile(package).read("README.md").decode()

    with ValidationContext(perform_io_checks=True):
        summary = load_description(package).validation_summary
    assert summary.status == "valid-format", summary.format()
    for weight_format in weights:
        result = test_model(package, weight_format=weight_format)
        assert result.status == "passed", result.format()


def test_bad_input_gets_one_error_line_and_nothing_written(tmp_path, run_cli):
    out = tmp_path / "m.tflite"
    blocker = tmp_path / "file"  # a file where the output's folder should be
    blocker.write_text("not a folder")
    cases = [
        (["export", "nope", "--format", "tflite", "--out", out],
         "neither a run folder nor a preset"),
        (["export", "deep_storm", "--format", "onnx", "--out", out], "unknown export format"),
        (["export", "deep_storm", "--format", "tflite", "--out", tmp_path / "m.zip"],
         "must end in .tflite"),
        (["export", "deep_storm", "--format", "tflite", "--out", out, "--size", "33", "64"],
         "multiples of 2"),
        (["export", "deep_storm", "--format", "tflite", "--out", out, "--size", "16", "16"],
         "too small"),
        (["export", "deep_storm", "--format", "savedmodel", "--out", tmp_path / "sm",
          "--size", "64", "64"], "--size is for --format tflite"),
        (["export", "deep_storm", "--format", "tflite", "--out", blocker / "m.tflite"],
         "is a file, not a folder"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(*argv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    blocker.unlink()
    out.write_bytes(b"keep me")
    code, _, err = run_cli("export", "deep_storm", "--format", "tflite", "--out", out)
    assert code == 2 and "exists" in err and out.read_bytes() == b"keep me"
    # An entry the format cannot take (ZeroCostDL4Mic: Deep-STORM networks only).
    code, _, err = run_cli("export", "plcnn", "--format", "zerocost", "--out",
                           tmp_path / "zc")
    assert code == 2 and not (tmp_path / "zc").exists()
    assert json.dumps(sorted(p.name for p in tmp_path.iterdir())) == '["m.tflite"]'
