"""The bad-input corpus: every command a hostile tester or a hurried user ran against loczoo,
exactly as typed (in a workspace folder holding a stack, its ground truth, a localization
table, a trained run folder, class folders of cell images and an earlier cross-validation).

Each must give exit code 2 and one ``error:`` line naming the problem, no traceback, and leave
every file in the workspace as it was (nothing deleted, replaced or half-written)."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from loczoo.tools import cli


@pytest.fixture(scope="module")
def template(tmp_path_factory, tiny_run) -> Path:
    """The workspace every case starts from (copied per case)."""
    root = tmp_path_factory.mktemp("workspace")
    assert cli.main(["simulate", str(root / "stack.tif"), "--frames", "3", "--size", "32", "32",
                     "--density", "2", "2", "--seed", "5", "--quiet"]) == 0
    os.replace(root / "stack_gt.csv", root / "gt.csv")
    data = root / "data"
    data.mkdir()
    shutil.copy(root / "stack.tif", data / "stack.tif")
    shutil.copy(root / "gt.csv", data / "gt.csv")
    shutil.copy(root / "gt.csv", root / "locs.csv")
    shutil.copytree(tiny_run, root / "run")
    assert cli.main(["simulate-cells", str(root / "cells"), "--per-class", "2", "--size", "32",
                     "--seed", "1", "--quiet"]) == 0
    # An earlier cross-validation result that a failing command must not delete.
    old = root / "old"
    old.mkdir()
    (old / ".loczoo-output").write_text('{"written_by": "loczoo", "kind": "cross-validation"}')
    (old / "summary.json").write_text('{"accuracy_mean": 0.9}\n')
    (root / "mine.md").write_text("my own notes\n")
    (root / "notes.txt").write_text("precious\n")
    full = tifffile.imread(root / "cells" / "nucleus" / "cell_000.tif")
    tifffile.imwrite(root / "cell.tif", np.stack([full, full]), photometric="minisblack")
    whole = (root / "cell.tif").read_bytes()
    (root / "truncated_cell.tif").write_bytes(whole[: len(whole) * 3 // 4])
    os.symlink("gt.csv", root / "link_to_gt.json")
    os.symlink("stack.tif", root / "link_to_stack.csv")
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file and link under ``root`` with its content hash."""
    state = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = "link:" + os.readlink(path)
        elif path.is_file():
            state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[key] = "folder"
    return state


LONG = "x" * 300

# (command as typed in the workspace, a fragment the error line must contain)
CASES = [
    # 1. --overwrite replaces only what loczoo wrote, never an input's folder
    ("train deep_storm --config tiny --out . --overwrite", "loczoo did not write"),
    ("finetune run --out . --overwrite --steps-per-epoch 1 --epochs 1", "contains the input"),
    ("train deep_storm --config tiny --data data/stack.tif --gt data/gt.csv --out data "
     "--overwrite", "contains the input"),
    ("train deep_storm --config tiny --init run --out run --overwrite", "is the input run"),
    ("finetune run --data stack.tif --gt gt.csv --out run --overwrite", "is the input run"),
    ("simulate-cells data --overwrite --per-class 1", "loczoo did not write"),
    # 2. an output is never an input
    ("localize stack.tif --out stack.tif --overwrite --model run", "must end in .csv"),
    ("localize stack.tif --out link_to_stack.csv --overwrite --model run", "is the input"),
    ("evaluate locs.csv gt.csv --json gt.csv --overwrite", "must end in .json"),
    ("evaluate locs.csv gt.csv --json link_to_gt.json --overwrite", "is the input gt.csv"),
    ("render locs.csv --out locs.csv --overwrite", ".png"),
    ("simulate stack.tif --frames 1 --overwrite --gt stack.tif", "must end in .csv"),
    ("simulate new.tif --frames 1 --gt new.tif", "must end in .csv"),
    ("classify cells --out cells/nucleus/cell_000.tif --overwrite", "must end in .csv"),
    ("classify cells --out p.csv --explain cells --overwrite", "is the input cells"),
    ("classify cells/nucleus --out p.csv --explain cells --overwrite", "contains the input"),
    ("make-preset run --name x --out run --overwrite", "is the input run"),
    ("export run --format savedmodel --out run --overwrite", "is the input run"),
    # 3. every check before anything is deleted
    ("train plcnn --config tiny --data cells --folds 50 --out old --overwrite", "fold"),
    ("train plcnn --config tiny --data cells --folds 1 --out old --overwrite", "at least 2"),
    # 4. every file an export writes is checked
    ("export run --format tflite --out mine.tflite", "mine.md exists"),
    # 5. NaN and infinity are refused up front
    ("simulate s.tif --photons nan nan", "finite"),
    ("simulate s.tif --density inf inf", "finite"),
    ("localize stack.tif --out l.csv --pixel-size nan", "finite"),
    ("localize stack.tif --out l.csv --threshold nan", "finite"),
    ("localize stack.tif --out l.csv --render-pixel inf --render l.png", "finite"),
    ("evaluate locs.csv gt.csv --tolerance nan", "finite"),
    ("render locs.csv --out r.png --sigma nan", "finite"),
    ("finetune run --out ft --learning-rate nan", "finite"),
    ("train deep_storm --config tiny --out r --pixel-size nan", "finite"),
    # 6. every numeric flag has a checked range
    ("train deep_storm --config tiny --out r --steps-per-epoch 0", ">= 1"),
    ("train deep_storm --config tiny --out r --epochs -1", ">= 1"),
    ("train deep_storm --config tiny --out r --validation-steps 0", ">= 1"),
    ("finetune run --out ft --epochs 0", ">= 1"),
    ("calibrate run --frames 0", ">= 1"),
    ("calibrate run --size 2", ">= 16"),
    ("localize stack.tif --out l.csv --threshold -1", ">= 0"),
    ("localize stack.tif --out l.csv --batch-size 0", ">= 1"),
    ("localize stack.tif --out l.csv --render l.png --render-pixel 0", "> 0"),
    ("classify cells --out p.csv --batch-size -3", ">= 1"),
    ("simulate-cells c2 --per-class 0", ">= 1"),
    ("export run --format tflite --out m.tflite --size 0 64", ">= 8"),
    ("evaluate locs.csv gt.csv --border -5 --fov 100 100", ">= 0"),
    ("simulate s.tif --frames 1.5", "integer"),
    # 7. file names the file system refuses
    (f"localize stack.tif --out {LONG}.csv --model run", "file name has"),
    (f"train deep_storm --config tiny --out {LONG}", "file name has"),
    ("localize stack.tif --out notes.txt/l.csv --model run", "is a file, not a folder"),
    # calibrate-psf: no beads, no z step, a stack too short, tampered inputs
    ("calibrate-psf stack.tif --out psf.json", "--z-step"),
    ("calibrate-psf stack.tif --z-step 0 --out psf.json", "> 0"),
    ("calibrate-psf stack.tif --z-step nan --out psf.json", "finite"),
    ("calibrate-psf stack.tif --z-step 20 --out psf.json", None),
    ("calibrate-psf stack.tif --z-step 20 --out stack.tif --overwrite", "must end in .json"),
    ("calibrate-psf stack.tif --z-step 20 --out p.json --camera baseline_adu=nan", "finite"),
    # 10. truncated images
    ("classify truncated_cell.tif --out p.csv", "truncated"),
    # 11. outputs checked before anything is written
    ("localize stack.tif --out l.csv --render l.bmp --model run", "must end in"),
    ("localize stack.tif --out l.csv --render l.csv --model run", "must end in"),
    ("localize stack.tif --out l.csv --render-pixel 0.0001 --render l.png --model run",
     "pixel"),
]


@pytest.mark.parametrize("command, message", CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_gives_one_error_line_and_touches_nothing(command, message, template,
                                                            tmp_path, monkeypatch, capsys):
    workspace = tmp_path / "ws"
    shutil.copytree(template, workspace, symlinks=True)
    before = snapshot(workspace)
    monkeypatch.chdir(workspace)
    code = cli.main(shlex.split(command))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    if message:
        assert message in lines[0], lines[0]
    assert snapshot(workspace) == before


def test_long_but_legal_names_and_missing_folders_are_fine(template, tmp_path, monkeypatch,
                                                           run_cli):
    """A 250-character file name (its temporary name is shortened to fit) and an output in
    folders that do not exist yet (created when the output is written)."""
    workspace = tmp_path / "ws"
    shutil.copytree(template, workspace, symlinks=True)
    monkeypatch.chdir(workspace)
    name = "y" * 246 + ".csv"
    code, _, err = run_cli("localize", "stack.tif", "--out", name, "--model", "run",
                           "--quiet")
    assert code == 0, err
    assert (workspace / name).is_file()
    code, _, err = run_cli("localize", "stack.tif", "--out", "new/deeper/l.csv", "--model",
                           "run", "--render", "new/other/l.png", "--quiet")
    assert code == 0, err
    assert (workspace / "new/deeper/l.csv").is_file() and (workspace / "new/other/l.png").is_file()
    assert not [p for p in workspace.rglob(".tmp*")]


def test_overwrite_replaces_what_loczoo_wrote(template, tmp_path, monkeypatch, run_cli):
    workspace = tmp_path / "ws"
    shutil.copytree(template, workspace, symlinks=True)
    monkeypatch.chdir(workspace)
    code, _, err = run_cli("simulate-cells", "c2", "--per-class", "1", "--size", "32",
                           "--quiet")
    assert code == 0, err
    code, _, err = run_cli("simulate-cells", "c2", "--per-class", "2", "--size", "32",
                           "--quiet", "--overwrite")
    assert code == 0, err
    assert len(list((workspace / "c2" / "nucleus").glob("*.tif"))) == 2
    code, _, err = run_cli("localize", "stack.tif", "--out", "locs.csv", "--model", "run",
                           "--overwrite", "--quiet")
    assert code == 0, err


def test_a_full_disk_is_one_error_line_and_leaves_nothing(template, tmp_path, monkeypatch,
                                                          run_cli):
    import errno

    import loczoo.smlm.io as io_module

    class FullDisk:
        def __init__(self, *args, **kwargs):
            self.file = open(*args, **kwargs)  # noqa: SIM115 - closed in __exit__

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    workspace = tmp_path / "ws"
    shutil.copytree(template, workspace, symlinks=True)
    before = snapshot(workspace)
    monkeypatch.chdir(workspace)
    monkeypatch.setattr(io_module, "open", FullDisk, raising=False)
    code, _, err = run_cli("localize", "stack.tif", "--out", "l.csv", "--model", "run",
                           "--quiet")
    assert code == 2 and err.strip() == "error: cannot write l.csv: No space left on device", err
    assert snapshot(workspace) == before


def test_training_creates_the_parent_folders_of_its_run_folder(template, tmp_path,
                                                               monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("train", "deep_storm", "--config", "tiny", "--out", "runs/new/mine",
                           "--steps-per-epoch", "1", "--epochs", "1", "--validation-steps", "1",
                           "--quiet")
    assert code == 0, err
    assert (tmp_path / "runs/new/mine/model.weights.h5").is_file()
