"""loczoo.runfolder owns the run folder: every file name, and the readers and writers (round
trips, atomic updates); no other module hard-codes a run-folder file name. The bundle splits
localization into one forward pass and any number of post-processings (what calibration
sweeps)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from loczoo import runfolder
from loczoo.errors import LoczooError

REPO = Path(__file__).resolve().parents[1]

# The run-folder file names only loczoo.runfolder may spell out.
OWNED_NAMES = (runfolder.CONFIG, runfolder.WEIGHTS, runfolder.METADATA, runfolder.STATE,
               runfolder.HISTORY, runfolder.CURVES, runfolder.CHECKPOINT_WEIGHTS,
               runfolder.MODEL_CARD)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def tiny_model():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_the_names_are_those_on_disk():
    """Existing run folders, presets and tests depend on them."""
    assert (runfolder.CONFIG, runfolder.WEIGHTS, runfolder.METADATA, runfolder.HISTORY,
            runfolder.CURVES, runfolder.LOGS, runfolder.CHECKPOINT, runfolder.CHECKPOINT_WEIGHTS,
            runfolder.STATE, runfolder.MODEL_CARD) == (
        "config.json", "model.weights.h5", "metadata.json", "history.csv", "curves.png", "logs",
        "checkpoint", "train.weights.h5", "state.json", "MODEL_CARD.md")


def test_config_round_trip(tmp_path):
    from loczoo.registry import get_entry

    cls = get_entry("deep_storm").config_cls
    config = replace(cls.tiny(), threshold=0.25)
    runfolder.write_config(tmp_path, config)
    assert runfolder.read_config(tmp_path, cls) == config
    assert listing(tmp_path) == [runfolder.CONFIG]
    (tmp_path / runfolder.CONFIG).write_text("{not json")
    with pytest.raises(LoczooError, match="config.json is not valid JSON"):
        runfolder.read_config(tmp_path, cls)


def test_new_record_round_trip(tmp_path):
    written = runfolder.write_metadata(tmp_path, {"command": "loczoo train", "history": []},
                                       entry="deep_storm", parameters=12)
    meta = runfolder.read_metadata(tmp_path)
    assert meta == written
    assert list(meta)[:4] == ["entry", "date", "versions", "parameters"]
    assert meta["entry"] == "deep_storm" and meta["parameters"] == 12
    assert meta["command"] == "loczoo train" and meta["history"] == []
    assert set(meta["versions"]) == {"loczoo", "tensorflow", "keras", "numpy", "python"}
    # The format every writer used before: two-space indent, a final newline.
    assert (tmp_path / runfolder.METADATA).read_text() == json.dumps(meta, indent=2) + "\n"
    assert listing(tmp_path) == [runfolder.METADATA]


def test_a_record_is_written_as_it_is_and_must_name_its_entry(tmp_path):
    meta = {"entry": "dsir", "date": "2024-01-01T00:00:00", "calibration": {"threshold": 0.3}}
    runfolder.write_metadata(tmp_path, meta)
    assert runfolder.read_metadata(tmp_path) == meta
    with pytest.raises(ValueError, match="must name its entry"):
        runfolder.write_metadata(tmp_path, {"date": "today"})
    with pytest.raises(ValueError, match="parameter count"):
        runfolder.write_metadata(tmp_path, {}, entry="dsir")
    assert runfolder.read_metadata(tmp_path) == meta  # untouched by the refused writes


def test_update_metadata_keeps_the_other_keys_and_is_atomic(tmp_path):
    runfolder.write_metadata(tmp_path, {"command": "c", "history": [{"epoch": 0, "loss": 1.0}]},
                             entry="deep_storm", parameters=5)
    before = runfolder.read_metadata(tmp_path)
    after = runfolder.update_metadata(tmp_path, calibration={"threshold": 0.2}, command="d")
    assert after == {**before, "calibration": {"threshold": 0.2}, "command": "d"}
    assert runfolder.read_metadata(tmp_path) == after
    assert listing(tmp_path) == [runfolder.METADATA]  # no temporary file left
    # A failed update leaves the record as it was, and no temporary file.
    text = (tmp_path / runfolder.METADATA).read_text()
    with pytest.raises(TypeError):
        runfolder.update_metadata(tmp_path, bad=object())
    assert (tmp_path / runfolder.METADATA).read_text() == text
    assert listing(tmp_path) == [runfolder.METADATA]


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"), ("{not json", "not valid JSON"), ("[1]", "JSON object"),
    ('{"date": "x"}', '"entry"')])
def test_a_damaged_record_is_an_error_that_names_it(tmp_path, content, message):
    if content is not None:
        (tmp_path / runfolder.METADATA).write_text(content)
    with pytest.raises(LoczooError, match=re.escape(message)) as err:
        runfolder.read_metadata(tmp_path)
    assert str(tmp_path / runfolder.METADATA) in str(err.value)
    with pytest.raises(LoczooError):
        runfolder.update_metadata(tmp_path, x=1)


def test_history_and_curves_round_trip(tmp_path):
    from PIL import Image

    history = [{"epoch": 0, "loss": 0.5, "learning_rate": 1e-3, "seconds": 1.25},
               {"epoch": 1, "loss": 0.25, "val_loss": 0.3, "learning_rate": 1e-3,
                "seconds": 1.0}]
    runfolder.write_history(tmp_path, history)
    assert runfolder.read_history(tmp_path) == history
    assert (tmp_path / runfolder.HISTORY).read_text().splitlines()[0] == (
        "epoch,loss,learning_rate,seconds,val_loss")
    runfolder.write_curves(tmp_path, Image.new("RGB", (4, 3), (255, 0, 0)))
    with Image.open(tmp_path / runfolder.CURVES) as image:
        assert image.format == "PNG" and image.size == (4, 3)
    assert listing(tmp_path) == [runfolder.CURVES, runfolder.HISTORY]
    with pytest.raises(LoczooError, match="cannot read"):
        runfolder.read_history(tmp_path / "none")


def test_weights_round_trip(tmp_path):
    model = tiny_model()
    runfolder.write_weights(tmp_path, model)
    assert runfolder.weights_path(tmp_path) == tmp_path / runfolder.WEIGHTS
    again = tiny_model()
    again.load_weights(runfolder.weights_path(tmp_path))
    for ours, theirs in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert listing(tmp_path) == [runfolder.WEIGHTS]


def test_checkpoint_round_trip(tmp_path):
    from loczoo.outputs import OUTPUT_MARKER

    model = tiny_model()
    state = {"epochs_done": 1, "history": [{"epoch": 0, "loss": 1.0}], "settings": {"seed": 0}}
    runfolder.write_checkpoint(tmp_path, model, state)
    assert runfolder.read_state(tmp_path) == state
    ckpt = runfolder.checkpoint_folder(tmp_path)
    assert ckpt == tmp_path / runfolder.CHECKPOINT
    assert sorted(p.name for p in ckpt.iterdir()) == sorted([
        OUTPUT_MARKER, runfolder.CHECKPOINT_WEIGHTS, runfolder.STATE])
    again = tiny_model()
    again.load_weights(ckpt / runfolder.CHECKPOINT_WEIGHTS)  # optimizer state included
    for ours, theirs in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # Replaced as a whole.
    runfolder.write_checkpoint(tmp_path, model, {**state, "epochs_done": 2})
    assert runfolder.read_state(tmp_path)["epochs_done"] == 2
    assert listing(tmp_path) == sorted([runfolder.CHECKPOINT] + [
        f"{runfolder.CHECKPOINT}/{name}" for name in (
            OUTPUT_MARKER, runfolder.CHECKPOINT_WEIGHTS, runfolder.STATE)])
    (ckpt / runfolder.STATE).write_text("{oops")
    with pytest.raises(LoczooError, match="state.json is not valid JSON"):
        runfolder.read_state(tmp_path)
    runfolder.remove_checkpoint(tmp_path)
    assert listing(tmp_path) == []
    with pytest.raises(LoczooError, match="cannot read .*state.json"):
        runfolder.read_state(tmp_path)


def test_a_run_folder_is_recognised_by_its_files(tmp_path):
    from loczoo.outputs import is_loczoo_folder

    assert not runfolder.is_run_folder(tmp_path) and not is_loczoo_folder(tmp_path)
    runfolder.write_metadata(tmp_path, {"entry": "deep_storm"})
    assert is_loczoo_folder(tmp_path)  # the record is the marker of run folders and presets
    for name in (runfolder.CONFIG, runfolder.WEIGHTS):
        (tmp_path / name).write_text("")
    assert runfolder.is_run_folder(tmp_path)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the module, class and function docstring nodes."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _preset_weights_names(tree: ast.AST) -> set[int]:
    """ids of the file names in ``WeightsFile("...", sha256, size)`` declarations: data that
    names a shipped file (the code finds it by ``preset.weights.name``), like its sha256."""
    return {id(node.args[0]) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "WeightsFile"
            and node.args}


def test_no_module_but_runfolder_spells_out_a_run_folder_file_name():
    """Code outside loczoo.runfolder uses its names (``runfolder.CONFIG``, ...) or its readers
    and writers. Docstrings and comments may name the files for the reader; preset
    declarations name their shipped weights file. A name inside a longer file name (an
    export's ``loczoo_config.json``) is another file."""
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])"
                                  for name in OWNED_NAMES))
    owner = REPO / "zoo" / "runfolder.py"
    offending = []
    for folder in ("zoo", "tools", "export", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path == owner:
                continue
            tree = ast.parse(path.read_text(), str(path))
            allowed = _docstrings(tree) | _preset_weights_names(tree)
            for node in ast.walk(tree):
                if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                        and id(node) not in allowed and pattern.search(node.value)):
                    offending.append(f"{path.relative_to(REPO)}:{node.lineno}: "
                                     f"{pattern.search(node.value).group()}")
    assert not offending, "\n".join(offending)


def test_no_module_but_runfolder_writes_the_record():
    """metadata.json is written only through runfolder.write_metadata / update_metadata."""
    offending = []
    for folder in ("zoo", "tools", "export", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path != REPO / "zoo" / "runfolder.py":
                text = path.read_text()
                if re.search(r"METADATA\)?\s*\)?\.write_(text|bytes)|open\([^)]*METADATA", text):
                    offending.append(str(path.relative_to(REPO)))
    assert not offending


@pytest.fixture(scope="module")
def preset_and_frames():
    from loczoo.bundle import load_bundle
    from loczoo.smlm.simulate import simulate_stack

    bundle = load_bundle("deep_storm")
    frames, truth = simulate_stack(bundle.config.imaging, 5, 32, 40, seed=3)
    return bundle, frames, truth


def test_localize_is_the_network_outputs_post_processed(preset_and_frames):
    bundle, frames, _ = preset_and_frames
    pixel = bundle.config.imaging.pixel_size_nm
    seen = []
    direct = bundle.localize(frames, pixel_size_nm=pixel, batch_size=2,
                             progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]
    cached = bundle.network_outputs(frames, batch_size=2)
    assert [start for start, _ in cached] == [0, 2, 4]
    again = bundle.postprocess_outputs(cached, pixel_size_nm=pixel, height=32, width=40)
    assert len(direct) > 0
    for column in ("frame", "x", "y", "photons"):
        np.testing.assert_array_equal(getattr(again, column), getattr(direct, column))


def test_a_threshold_post_processes_as_the_config_would(preset_and_frames):
    """What the calibration sweep relies on: ``threshold=`` is the config's threshold, and
    the cached outputs give the same localizations every time."""
    from loczoo.calibration import sweep_thresholds
    from loczoo.smlm.localizations import Localizations
    from loczoo.smlm.metrics import evaluate

    bundle, frames, truth = preset_and_frames
    pixel = bundle.config.imaging.pixel_size_nm
    cached = bundle.network_outputs(frames, batch_size=4)
    thresholds = (0.05, 0.2, 0.5)
    rows = sweep_thresholds(bundle, frames, truth, pixel, thresholds=thresholds, batch_size=4)
    for threshold, row in zip(thresholds, rows, strict=True):
        # The loop calibration ran before it went through the bundle.
        config = replace(bundle.config, threshold=threshold)
        tables = []
        for start, out in cached:
            locs = bundle.entry.postprocess(out, config, pixel_size_nm=pixel, height=32,
                                            width=40)
            locs.frame += start
            tables.append(locs)
        expected = Localizations.concatenate(tables)
        got = bundle.postprocess_outputs(cached, pixel_size_nm=pixel, height=32, width=40,
                                         threshold=threshold)
        np.testing.assert_array_equal(got.x, expected.x)
        np.testing.assert_array_equal(got.frame, expected.frame)
        np.testing.assert_equal(row, {"threshold": threshold,  # NaN where nothing matches
                                      **evaluate(truth, expected, tolerance_nm=250.0)})
