"""Damaged run folders and bad numbers: a corrupt ``config.json``, ``metadata.json`` or
``model.weights.h5`` in a run folder, NaN, infinity or a value of the wrong type in a config or
an override (``--set``, ``--camera``), and a ``LOCZOO_HOME`` that is not a folder.

Each must give exit code 2 and exactly one ``error:`` line naming the file or field and the
problem, no traceback, and leave every file as it was (nothing written)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from loczoo.config import from_dict, load_json, to_dict, with_overrides
from loczoo.errors import LoczooError


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def workspace(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run folder (``run``) and a small stack (``stack.tif``)."""
    shutil.copytree(tiny_run, tmp_path / "run")
    frames = np.random.default_rng(0).integers(90, 200, (2, 16, 16)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", frames)
    return tmp_path


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))  # json writes NaN and Infinity as such


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def wider_filters(data: dict) -> None:
    data["filters"] = [data["filters"][0], data["filters"][1], data["filters"][2], 16]


# (file in the run folder, how it is damaged, fragments the error line must contain)
DAMAGE = {
    "config-not-json": ("config.json", lambda p: p.write_text("{not json"),
                        ["config.json", "not valid JSON"]),
    "config-truncated": ("config.json", truncate, ["config.json", "not valid JSON"]),
    "config-binary": ("config.json", lambda p: p.write_bytes(b"\xff\xfe\x00garbage" * 20),
                      ["config.json", "not valid JSON"]),
    "config-a-list": ("config.json", lambda p: p.write_text("[1, 2]"),
                      ["config.json", "JSON object"]),
    "config-nan": ("config.json",
                   lambda p: edit_json(p, lambda d: d["imaging"]["camera"].update(
                       baseline_adu=float("nan"))),
                   ["config.json", "imaging.camera.baseline_adu must be a finite number, got nan"]),
    "config-infinity": ("config.json",
                        lambda p: edit_json(p, lambda d: d.update(threshold=float("inf"))),
                        ["config.json", "threshold must be a finite number, got inf"]),
    "config-nan-in-range": ("config.json",
                            lambda p: edit_json(p, lambda d: d["imaging"].update(
                                density_per_um2=[float("nan"), float("nan")])),
                            ["config.json", "imaging.density_per_um2[0] must be a finite"]),
    "config-string-number": ("config.json",
                             lambda p: edit_json(p, lambda d: d.update(batch_size="abc")),
                             ["config.json", "batch_size must be an integer, got 'abc'"]),
    "config-bad-range": ("config.json",
                         lambda p: edit_json(p, lambda d: d.update(learning_rate=-1)),
                         ["config.json", "learning_rate must be > 0"]),
    "config-unknown-field": ("config.json", lambda p: edit_json(p, lambda d: d.update(foo=1)),
                             ["config.json", "unknown DeepSTORMConfig field(s) ['foo']"]),
    "metadata-not-json": ("metadata.json", lambda p: p.write_text('{"entry": "deep_st'),
                          ["metadata.json", "not valid JSON"]),
    "metadata-no-entry": ("metadata.json", lambda p: edit_json(p, lambda d: d.pop("entry")),
                          ["metadata.json", '"entry"', "got none"]),
    "metadata-entry-number": ("metadata.json",
                              lambda p: edit_json(p, lambda d: d.update(entry=42)),
                              ["metadata.json", '"entry"', "got 42"]),
    "metadata-unknown-entry": ("metadata.json",
                               lambda p: edit_json(p, lambda d: d.update(entry="nope")),
                               ["metadata.json", "unknown zoo entry 'nope'"]),
    "metadata-a-string": ("metadata.json", lambda p: p.write_text('"deep_storm"'),
                          ["metadata.json", "JSON object"]),
    "weights-truncated": ("model.weights.h5", truncate,
                          ["model.weights.h5", "truncated"]),
    "weights-garbage": ("model.weights.h5", lambda p: p.write_bytes(b"garbage" * 100),
                        ["model.weights.h5", "cannot read weights"]),
    "weights-empty": ("model.weights.h5", lambda p: p.write_bytes(b""),
                      ["model.weights.h5", "cannot read weights"]),
    # config.json and weights of two architectures: Keras's multi-line error in one line
    "weights-other-model": ("config.json", lambda p: edit_json(p, wider_filters),
                            ["model.weights.h5", "cannot load weights", "could not be loaded"]),
}

# Every command that loads a run folder, with the damages it is checked against.
COMMANDS = {
    "localize": ["localize", "stack.tif", "--out", "locs.csv", "--model", "run"],
    "export": ["export", "run", "--format", "savedmodel", "--out", "exported"],
    "calibrate": ["calibrate", "run", "--frames", "2", "--size", "16"],
    "finetune": ["finetune", "run", "--out", "tuned", "--epochs", "1", "--steps-per-epoch", "1"],
    "train-init": ["train", "deep_storm", "--init", "run", "--out", "child", "--epochs", "1",
                   "--steps-per-epoch", "1"],
}
CASES = [("localize", name) for name in DAMAGE] + [
    (command, name) for command in ("export", "calibrate", "finetune")
    for name in ("config-nan", "metadata-no-entry", "weights-truncated", "weights-other-model")
] + [("train-init", name) for name in ("config-not-json", "config-nan", "metadata-no-entry",
                                       "weights-truncated", "weights-garbage")]


def check_one_error(code: int, err: str, fragments: list[str]) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command, damage", CASES, ids=[f"{c}-{d}" for c, d in CASES])
def test_damaged_run_folder_gives_one_error_line(command, damage, workspace, monkeypatch,
                                                 run_cli):
    name, corrupt, fragments = DAMAGE[damage]
    corrupt(workspace / "run" / name)
    before = snapshot(workspace)
    monkeypatch.chdir(workspace)
    code, _, err = run_cli(*COMMANDS[command])
    check_one_error(code, err, fragments)
    assert snapshot(workspace) == before


OVERRIDES = [
    (["--set", "imaging.density_per_um2=[NaN,NaN]"],
     "imaging.density_per_um2[0] must be a finite number, got nan"),
    (["--set", "learning_rate=Infinity"], "learning_rate must be a finite number, got inf"),
    (["--set", "threshold=-Infinity"], "threshold must be a finite number, got -inf"),
    (["--set", "imaging.camera.baseline_adu=1e999"],
     "imaging.camera.baseline_adu must be a finite number, got inf"),
    (["--set", "batch_size=abc"], "batch_size must be an integer, got 'abc'"),
    (["--set", "batch_size=2.5"], "batch_size must be an integer, got 2.5"),
    (["--set", "batch_size=0"], "batch_size must be >= 1, got 0"),
    (["--set", "learning_rate=0"], "learning_rate must be > 0, got 0"),
    (["--set", "threshold=-0.5"], "threshold must be >= 0, got -0.5"),
    (["--set", "imaging.camera.quantize=1"], "imaging.camera.quantize must be true or false"),
    (["--set", "imaging.pixel_size_nm=abc"],
     "imaging.pixel_size_nm must be a finite number, got 'abc'"),
    (["--set", "filters=[4,4]"], "filters must be a list of 4 values"),
    (["--set", "imaging=3"], "imaging must be a section"),
]


@pytest.mark.parametrize("flags, message", OVERRIDES, ids=[f[1] for f, _ in OVERRIDES])
def test_bad_set_values_are_refused_before_training(flags, message, tmp_path, monkeypatch,
                                                    run_cli):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("train", "deep_storm", "--config", "tiny", "--out", "r", *flags)
    check_one_error(code, err, [message])
    assert list(tmp_path.iterdir()) == []


CAMERA = [("NaN", "baseline_adu must be a finite number, got nan"),
          ("Infinity", "baseline_adu must be a finite number, got inf"),
          ("abc", "baseline_adu must be a finite number, got 'abc'")]


@pytest.mark.parametrize("value, message", CAMERA)
def test_bad_camera_values_are_refused(value, message, workspace, monkeypatch, run_cli):
    before = snapshot(workspace)
    monkeypatch.chdir(workspace)
    code, _, err = run_cli("localize", "stack.tif", "--out", "locs.csv", "--model", "run",
                           "--camera", f"baseline_adu={value}")
    check_one_error(code, err, [message])
    assert snapshot(workspace) == before


@pytest.fixture(scope="module")
def decode_bundle():
    """An untrained tiny DECODE model (it reads the camera)."""
    from loczoo.bundle import ModelBundle
    from loczoo.registry import get_entry

    entry = get_entry("decode")
    config = entry.prepare_config(entry.config_cls.tiny(), None, 0)
    return ModelBundle(entry=entry, config=config, model=entry.build_model(config), metadata={},
                       source="test")


@pytest.mark.parametrize("value, message", CAMERA)
def test_with_camera_names_the_camera_field(value, message, decode_bundle):
    bundle = decode_bundle
    with pytest.raises(LoczooError, match=f"^imaging.camera.{message}$"):
        bundle.with_camera(["qe=1", f"baseline_adu={value}"])


def test_every_number_of_a_loaded_config_is_checked(tmp_path):
    """load_json, from_dict and with_overrides check nested sections, tuples and optional
    fields; good configs come back unchanged."""
    from loczoo.decode.config import DECODEConfig

    config = DECODEConfig.variants()["3d"]
    assert from_dict(DECODEConfig, to_dict(config)) == config
    data = to_dict(config)
    data["imaging"]["astigmatism"]["a_x"] = float("-inf")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LoczooError, match=r"config.json: imaging.astigmatism.a_x must be a "
                                          r"finite number, got -inf"):
        load_json(DECODEConfig, path)
    with pytest.raises(LoczooError, match=r"imaging.camera.em_gain must be a finite number"):
        with_overrides(config, ["imaging.camera.em_gain=NaN"])
    assert with_overrides(config, ["imaging.camera.em_gain=null"]).imaging.camera.em_gain is None
    assert with_overrides(config, ["batch_size=8.0"]).batch_size == 8
    with pytest.raises(LoczooError, match=r"imaging.photon_params\[1\] must be a finite"):
        with_overrides(config, ["imaging.photon_params=[1000, NaN]"])


@pytest.mark.parametrize("where", ["file", "below-a-file", "unwritable"])
def test_loczoo_home_that_is_not_a_usable_folder(where, tmp_path, monkeypatch, run_cli):
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    if where == "unwritable":
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere")
        home = tmp_path / "readonly"
        home.mkdir()
        home.chmod(0o500)
        monkeypatch.setenv("LOCZOO_MIRRORS", "https://127.0.0.1:9/zoo")  # never reached
    else:
        home = afile if where == "file" else afile / "sub"
    monkeypatch.setenv("LOCZOO_HOME", str(home))
    from dataclasses import replace

    from loczoo.registry import get_entry

    entry = get_entry("deep_storm")
    preset = replace(entry.presets["sim-dense-100nm"], name="home-test")
    monkeypatch.setitem(entry.presets, preset.name, preset)
    try:
        if where == "unwritable":
            code, _, err = run_cli("export", "deep_storm/home-test", "--format", "savedmodel",
                                   "--out", tmp_path / "out")
            check_one_error(code, err, [f"weights cache {home}", "LOCZOO_HOME to a writable"])
            return
        code, _, err = run_cli("list")
        check_one_error(code, err, [f"LOCZOO_HOME={home} is not a folder"])
        code, _, err = run_cli("export", "deep_storm", "--format", "savedmodel", "--out",
                               tmp_path / "out")
        check_one_error(code, err, [f"LOCZOO_HOME={home} is not a folder"])
        assert not (tmp_path / "out").exists()
    finally:
        home.chmod(0o700) if where == "unwritable" else None


def test_domain_note_with_a_given_camera_suggests_fine_tuning(decode_bundle):
    bundle = decode_bundle
    imaging = bundle.config.imaging
    cam = imaging.camera
    high = imaging.background_photons[1] * (1 + imaging.background_field_fraction)
    frames = np.full((3, 16, 16), 20 * high / cam.photons_per_adu + cam.baseline_adu, np.float32)
    (note,) = bundle.domain_notes(frames)
    assert "by the model's camera" in note and "give the stack's camera with --camera" in note
    given = bundle.with_camera([f"baseline_adu={cam.baseline_adu}"])
    (note,) = given.domain_notes(frames)
    assert "by the given camera" in note and "outside its training range" in note
    assert "--camera" not in note and "fine-tune" in note


def table(per_frame: int, frames: int, photons: float | None):
    from loczoo.smlm.localizations import Localizations

    n = per_frame * frames
    rng = np.random.default_rng(0)
    return Localizations(frame=np.repeat(np.arange(1, frames + 1), per_frame),
                         x=rng.uniform(0, 3200, n), y=rng.uniform(0, 3200, n),
                         photons=None if photons is None else np.full(n, photons))


def test_domain_notes_after_localization_check_density_and_photons(decode_bundle):
    bundle = decode_bundle
    imaging = bundle.config.imaging
    low, high = imaging.density_per_um2
    shape, pixel = (4, 32, 32), 100.0  # 10.24 um^2 per frame
    middle = int(0.5 * (low + high) * 10.24)
    assert bundle.domain_notes_after(table(middle, 4, 3000.0), shape, pixel) == []
    assert bundle.domain_notes_after(table(middle, 4, None), shape, pixel) == []
    (note,) = bundle.domain_notes_after(table(int(3 * high * 10.24), 4, None), shape, pixel)
    assert "localizations per um^2 and frame, over twice" in note and f"{high:g}" in note
    # Sparse data is no warning: a frame may simply hold few emitters.
    assert bundle.domain_notes_after(table(1, 4, None), shape, pixel) == []
    assert bundle.domain_notes_after(table(0, 4, None), shape, pixel) == []
    p_low, p_high = imaging.photon_params  # uniform
    for photons in (3 * p_high, p_low / 3):
        (note,) = bundle.domain_notes_after(table(middle, 4, photons), shape, pixel)
        assert f"median is {photons:.0f} photons, outside the model's training range" in note
    # the frame count comes from the stack, not from the frames that have localizations
    crowded = table(int(3 * high * 10.24), 4, None)
    assert bundle.domain_notes_after(crowded, (40, 32, 32), pixel) == []
