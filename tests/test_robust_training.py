"""Damaged run folders and models that cannot be calibrated: one ``error:`` line that names the
file, exit code 2, no traceback, and every file left as it was. A resume checkpoint
(``checkpoint/state.json``, ``checkpoint/train.weights.h5``) for ``train``/``finetune
--resume``; a run whose network detects nothing, and too few or too small frames, for
``calibrate``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from loczoo import training
from loczoo.calibration import DEFAULT_THRESHOLDS, NothingDetectedError, calibrate_run_folder
from loczoo.errors import LoczooError

TINY = ["--config", "tiny", "--steps-per-epoch", "2", "--epochs", "2", "--validation-steps", "1"]


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory) -> Path:
    """A tiny Deep-STORM run stopped by Ctrl-C in its first step: a run folder with the
    resume checkpoint of epoch 0 (the settings are those of ``loczoo train deep_storm TINY``)."""
    from loczoo.tools import cli

    out = tmp_path_factory.mktemp("robust") / "interrupted"

    def on_train_batch_end(self, step, logs=None):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training._EpochEnd, "on_train_batch_end", on_train_batch_end)
        assert cli.main(["train", "deep_storm", *TINY, "--out", str(out), "--quiet"]) == 130
    assert (out / "checkpoint" / "state.json").is_file()
    assert (out / "checkpoint" / "train.weights.h5").is_file()
    return out


def snapshot(folder: Path) -> dict:
    """Every file and folder under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def assert_one_error_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


def edit_state(change):
    def damage(ckpt: Path) -> None:
        state = json.loads((ckpt / "state.json").read_text())
        change(state)
        (ckpt / "state.json").write_text(json.dumps(state))
    return damage


def write(name: str, data: bytes):
    return lambda ckpt: (ckpt / name).write_bytes(data)


def delete(name: str):
    return lambda ckpt: (ckpt / name).unlink()


def truncate(name: str):
    def damage(ckpt: Path) -> None:
        data = (ckpt / name).read_bytes()
        (ckpt / name).write_bytes(data[:len(data) // 2])
    return damage


def inference_weights(ckpt: Path) -> None:
    """The run's best weights (no optimizer state) in place of the checkpoint's."""
    shutil.copyfile(ckpt.parent / "model.weights.h5", ckpt / "train.weights.h5")


# (case, damage to checkpoint/, file the error names, what the error says)
STATE_DAMAGE = [
    ("not-json", write("state.json", b"{not json"), "state.json", "not valid JSON"),
    ("binary", write("state.json", b"\x89HDF\r\n\x1a\n\xff\xfe"), "state.json", "not valid JSON"),
    ("empty", write("state.json", b""), "state.json", "not valid JSON"),
    ("list", write("state.json", b"[1, 2]"), "state.json", "a JSON object"),
    ("missing", delete("state.json"), "state.json", "cannot read"),
    ("no-settings", edit_state(lambda s: s.pop("settings")), "state.json",
     "no 'settings' entry"),
    ("no-history", edit_state(lambda s: s.pop("history")), "state.json", "no 'history' entry"),
    ("history-object", edit_state(lambda s: s.update(history={"0": 1.0})), "state.json",
     "'history' has the wrong type"),
    ("history-row", edit_state(lambda s: s.update(history=[{"epoch": 0}], epochs_done=1)),
     "state.json", "'history' row 0"),
    ("epochs-done", edit_state(lambda s: s.update(epochs_done=3)), "state.json",
     "'epochs_done' is 3"),
    ("settings-string", edit_state(lambda s: s.update(settings="deep_storm")), "state.json",
     "'settings' has the wrong type"),
    ("settings-no-entry", edit_state(lambda s: s["settings"].pop("entry")), "state.json",
     "no 'settings.entry' entry"),
    ("steps-string", edit_state(lambda s: s["settings"].update(steps_per_epoch="2")),
     "state.json", "'settings.steps_per_epoch' has the wrong type"),
    ("reduce-lr", edit_state(lambda s: s.update(reduce_lr={"wait": "x"})), "state.json",
     "'reduce_lr'"),
    ("seed-states", edit_state(lambda s: s.update(seed_states={"x": 1})), "state.json",
     "'seed_states'"),
    ("config", edit_state(lambda s: s["config"].update(upsampling="four")), "state.json",
     "upsampling"),
]
WEIGHTS_DAMAGE = [
    ("garbage", write("train.weights.h5", b"not an HDF5 file"), "train.weights.h5",
     "cannot restore the checkpoint"),
    ("empty", write("train.weights.h5", b""), "train.weights.h5",
     "cannot restore the checkpoint"),
    ("truncated", truncate("train.weights.h5"), "train.weights.h5",
     "cannot restore the checkpoint"),
    ("no-optimizer-state", inference_weights, "train.weights.h5",
     "cannot restore the checkpoint"),
    ("missing", delete("train.weights.h5"), "train.weights.h5", "are missing"),
]
FINETUNE_CASES = {"not-json", "no-settings", "history-row", "reduce-lr"}


@pytest.mark.parametrize(
    "command, damage, name, message",
    [pytest.param("train", *case[1:], id=f"train-{case[0]}")
     for case in STATE_DAMAGE + WEIGHTS_DAMAGE]
    + [pytest.param("finetune", *case[1:], id=f"finetune-{case[0]}")
       for case in STATE_DAMAGE if case[0] in FINETUNE_CASES])
def test_resume_from_a_damaged_checkpoint_is_one_error_line(
        command, damage, name, message, interrupted_run, tmp_path, run_cli):
    run = tmp_path / "run"
    shutil.copytree(interrupted_run, run)
    damage(run / "checkpoint")
    before = snapshot(run)
    # finetune reads the configuration from the run folder: no --config.
    argv = ["train", "deep_storm", *TINY] if command == "train" else [
        "finetune", "deep_storm", *TINY[2:]]
    code, _, err = run_cli(*argv, "--out", run, "--resume")
    assert_one_error_line(code, err, str(run / "checkpoint" / name), message,
                          "--overwrite")  # and what to do about it
    assert snapshot(run) == before


def test_an_intact_copy_of_the_checkpoint_resumes(interrupted_run, tmp_path, run_cli):
    """The damage above, not the copying, is what the errors are about."""
    run = tmp_path / "run"
    shutil.copytree(interrupted_run, run)
    code, _, err = run_cli("train", "deep_storm", *TINY, "--out", run, "--resume", "--quiet")
    assert code == 0, err
    assert json.loads((run / "metadata.json").read_text())["complete"]


@pytest.fixture
def blind_run(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run whose network outputs zeros: no threshold detects anything."""
    from loczoo.bundle import load_bundle

    run = tmp_path / "blind"
    shutil.copytree(tiny_run, run)
    model = load_bundle(str(run)).model
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.save_weights(run / "model.weights.h5")
    return run


def test_calibrate_refuses_when_no_threshold_detects_anything(blind_run, run_cli):
    threshold = json.loads((blind_run / "config.json").read_text())["threshold"]
    before = snapshot(blind_run)
    code, out, err = run_cli("calibrate", blind_run, "--frames", 4, "--size", 32)
    assert_one_error_line(code, err, str(blind_run),
                          "no threshold detects any emitter on the 4 simulated frames",
                          "Jaccard 0 for every threshold 0.01-0.95",
                          f"stays {threshold:g}", "untrained")
    assert "stored" not in out
    assert snapshot(blind_run) == before
    # finetune catches this subclass and reports it as a warning.
    with pytest.raises(NothingDetectedError) as info:
        calibrate_run_folder(blind_run, frames=4, size=32)
    assert isinstance(info.value, LoczooError)
    assert len(info.value.rows) == len(DEFAULT_THRESHOLDS)
    assert snapshot(blind_run) == before


@pytest.mark.parametrize("frames, size, message", [
    (0, 64, "at least 1 simulated frame, got 0"),
    (-3, 64, "at least 1 simulated frame, got -3"),
    (4, 8, "frames of 8 px are too small for .* at least 16 px"),
    (4, 0, "frames of 0 px are too small"),
])
def test_calibrate_refuses_too_few_or_too_small_frames(frames, size, message, tiny_run,
                                                       tmp_path, run_cli, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = snapshot(run)
    with pytest.raises(LoczooError, match=message) as info:
        calibrate_run_folder(run, frames=frames, size=size)
    assert str(run) in str(info.value)
    try:  # the flag check (argparse exits) or calibrate_run_folder's
        code, _, err = run_cli("calibrate", run, "--frames", frames, "--size", size)
    except SystemExit as exit:
        code, err = exit.code, capsys.readouterr().err
    assert_one_error_line(code, err)
    assert snapshot(run) == before
