"""One camera interface (``loczoo.smlm.cameras``) and its ``--camera`` flag in localize,
simulate, train and finetune."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import tifffile

from loczoo.errors import LoczooError
from loczoo.smlm.cameras import (
    DERIVED,
    FIELDS,
    check_camera_item,
    describe_camera,
    known_camera_estimate,
    parse_camera,
)
from loczoo.smlm.simulate import CameraConfig

SMLM2016 = CameraConfig.smlm2016()
ONE_LINE_ERROR = "the model's camera is an EMCCD (EM gain 300)"


def test_fields_are_the_camera_config_fields():
    assert set(FIELDS) == {f.name for f in dataclasses.fields(CameraConfig)}
    assert not set(DERIVED) & set(FIELDS)


def test_named_cameras_replace_the_base():
    scmos = parse_camera(["scmos"], SMLM2016)
    assert (scmos.qe, scmos.em_gain, scmos.read_noise_e, scmos.e_per_adu,
            scmos.baseline_adu, scmos.photons_per_adu) == (1.0, None, 1.5, 1.0, 100.0, 1.0)
    assert parse_camera(["emccd"], CameraConfig()) == CameraConfig.emccd()
    assert parse_camera(["SMLM2016"], CameraConfig()) == SMLM2016
    assert parse_camera([], SMLM2016) == SMLM2016


def test_fields_change_the_camera():
    camera = parse_camera(["scmos", "baseline_adu=500", "read_noise_e=2", "qe=0.8",
                           "saturation_adu=4095", "quantize=false", "em_gain=null"],
                          SMLM2016)
    assert (camera.baseline_adu, camera.read_noise_e, camera.qe, camera.saturation_adu,
            camera.quantize, camera.em_gain) == (500.0, 2.0, 0.8, 4095.0, False, None)
    # The last of a key wins; em_gain=none keeps the conversion of the other fields.
    assert parse_camera(["baseline_adu=1", "baseline_adu=2"], SMLM2016).baseline_adu == 2.0
    assert parse_camera(["em_gain=None", "e_per_adu=2"], SMLM2016).photons_per_adu == 2.0


def test_photons_per_adu_sets_e_per_adu():
    # e_per_adu = P x (em_gain or 1) x qe, with the em_gain and qe the list ends up with:
    # 0.5 x 200 x 0.9 = 90 and 2 x 1 x 0.8 = 1.6.
    em = parse_camera(["photons_per_adu=0.5", "em_gain=200", "qe=0.9"], SMLM2016)
    assert em.e_per_adu == pytest.approx(90.0) and em.photons_per_adu == pytest.approx(0.5)
    cmos = parse_camera(["scmos", "qe=0.8", "photons_per_adu=2"], SMLM2016)
    assert cmos.e_per_adu == pytest.approx(1.6) and cmos.photons_per_adu == pytest.approx(2.0)
    # A named EMCCD keeps its gain (the user chose it): 0.2 x 100 x 0.9 = 18.
    assert parse_camera(["emccd", "photons_per_adu=0.2"], CameraConfig()).e_per_adu == \
        pytest.approx(18.0)


def test_em_gain_none_on_an_emccd_takes_scmos_noise():
    camera = parse_camera(["em_gain=none", "photons_per_adu=1"], SMLM2016)
    assert (camera.read_noise_e, camera.spurious_charge_e) == (1.5, 0.0)
    kept = parse_camera(["em_gain=none", "read_noise_e=3", "photons_per_adu=1"], SMLM2016)
    assert kept.read_noise_e == 3.0


@pytest.mark.parametrize("items, shown", [
    (["baseline_adu=500", "e_per_adu=1"], "--camera e_per_adu=1 would mean 1/300 photon per ADU"),
    (["photons_per_adu=1"], "--camera photons_per_adu=1 would keep that EM gain"),
])
def test_the_emccd_trap_is_refused(items, shown):
    with pytest.raises(LoczooError) as info:
        parse_camera(items, SMLM2016)
    message = str(info.value)
    assert message.startswith(ONE_LINE_ERROR) and shown in message and "\n" not in message
    assert "--camera em_gain=none" in message and "em_gain=G" in message
    # Saying the gain, or naming a camera, is fine; so is a new baseline alone.
    assert parse_camera(["em_gain=300", *items], SMLM2016).em_gain == 300
    assert parse_camera(["smlm2016", *items], CameraConfig()).em_gain == 300
    assert parse_camera(["baseline_adu=500"], SMLM2016).e_per_adu == SMLM2016.e_per_adu


@pytest.mark.parametrize("items, message", [
    (["baseline_adu=NaN"], "imaging.camera.baseline_adu must be a finite number, got nan"),
    (["qe=inf"], "imaging.camera.qe must be a finite number, got inf"),
    (["photons_per_adu=nan", "em_gain=none"], "photons_per_adu must be a finite number"),
    (["photons_per_adu=0", "em_gain=none"], "imaging.camera.photons_per_adu must be > 0"),
    (["em_gain=abc"], "em_gain must be a finite number or none, got 'abc'"),
    (["em_gain=0.5"], "em_gain must be >= 1"),
    (["qe=0"], "qe must be in (0, 1]"),
    (["saturation_adu=50"], "saturation_adu (50) must be above the baseline (100 ADU)"),
    (["quantize=1"], "quantize must be true or false"),
    (["offset=500"], "no field 'offset'"),
    (["foo"], "unknown camera 'foo'"),
    (["baseline_adu=500", "scmos"], "a named camera must come first"),
    (["em_gain=none", "e_per_adu=1", "photons_per_adu=1"], "both set the ADU conversion"),
])
def test_bad_items_are_refused_in_one_line_naming_the_field(items, message):
    with pytest.raises(LoczooError) as info:
        parse_camera(items, SMLM2016)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_item_syntax_check_needs_no_camera():
    assert check_camera_item(" scmos ") == "scmos"
    assert check_camera_item("em_gain=none") == "em_gain=none"
    for bad in ("foo", "offset=1", "baseline_adu=nan", "e_per_adu="):
        with pytest.raises(LoczooError):
            check_camera_item(bad)


def test_describe_camera():
    assert describe_camera(parse_camera(["scmos", "baseline_adu=500"], SMLM2016)) == (
        "sCMOS (no EM gain), 1 photon/ADU above a baseline of 500 ADU, QE 1, read noise 1.5 e-")
    assert describe_camera(SMLM2016).startswith(
        "EMCCD gain 300, 0.15 photon/ADU above a baseline of 100 ADU, QE 1, read noise 74.4 e-")


def test_known_camera_estimate_converts_in_the_cameras_photons():
    camera = parse_camera(["scmos", "qe=0.8", "photons_per_adu=2", "baseline_adu=90"], SMLM2016)
    known = known_camera_estimate(camera)
    assert known.baseline_adu == 90 and known.photons_per_adu == pytest.approx(2.0)
    # Variance per ADU of signal: ADU per detected photon = 1 / (2 x 0.8).
    assert known.variance_slope == pytest.approx(1 / 1.6)
    assert known.read_noise_adu == pytest.approx(1.5 / 1.6) and not known.estimated


# ------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def adu_stack(tmp_path_factory):
    """A small stack at 1 ADU per photon above an offset of 500 (an sCMOS), simulated by the
    CLI with the named camera."""
    from loczoo.tools import cli

    folder = tmp_path_factory.mktemp("cameras")
    stack = folder / "stack.tif"
    assert cli.main(["simulate", str(stack), "--frames", "6", "--size", "32", "32",
                     "--density", "1", "1.5", "--photons", "5000", "8000", "--background",
                     "60", "60", "--z-range", "-300", "300", "--astigmatism", "--camera",
                     "scmos", "--camera", "baseline_adu=500", "--seed", "3", "--quiet"]) == 0
    return stack


def test_localize_decode_with_the_stacks_camera(adu_stack, tmp_path, run_cli):
    out = tmp_path / "locs.csv"
    code, stdout, err = run_cli("localize", adu_stack, "--out", out, "--model",
                                "decode/sim-3d-smlm2016", "--camera", "em_gain=none",
                                "--camera", "photons_per_adu=1", "--camera", "baseline_adu=500",
                                "--quiet")
    assert code == 0, err
    assert ("camera: sCMOS (no EM gain), 1 photon/ADU above a baseline of 500 ADU, QE 1, read "
            "noise 1.5 e- (given with --camera)") in stdout
    found = int(re.search(r"^(\d+) localizations in 6 frames", stdout, re.M).group(1))
    assert found >= 20, stdout  # 82 emitters in the stack; DECODE finds most of them
    # Without em_gain the preset's EMCCD gain of 300 would stay: refused, nothing written.
    for items in (["photons_per_adu=1"], ["e_per_adu=1"]):
        bad = tmp_path / "bad.csv"
        code, stdout, err = run_cli("localize", adu_stack, "--out", bad, "--model",
                                    "decode/sim-3d-smlm2016", "--camera", "baseline_adu=500",
                                    *(f"--camera={item}" for item in items))
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert ONE_LINE_ERROR in err and "em_gain=none" in err and not bad.exists()


def test_simulate_with_a_named_camera(tmp_path, run_cli):
    out = tmp_path / "s.tif"
    code, stdout, err = run_cli("simulate", out, "--frames", "3", "--size", "16", "16",
                                "--density", "0", "0", "--background", "20", "20", "--camera",
                                "scmos", "--camera", "baseline_adu=500", "--quiet")
    assert code == 0, err
    assert "camera: sCMOS (no EM gain), 1 photon/ADU above a baseline of 500 ADU" in stdout
    # 500 ADU of offset plus 20 photons per pixel at 1 ADU per photon.
    assert tifffile.imread(out).mean() == pytest.approx(520, abs=1.0)
    # The flags of earlier versions are shortcuts; giving a field twice is refused.
    code, _, err = run_cli("simulate", tmp_path / "b.tif", "--camera", "scmos", "--camera",
                           "baseline_adu=500", "--baseline", "300")
    assert code == 2 and "--baseline and --camera baseline_adu" in err
    code, _, err = run_cli("simulate", tmp_path / "c.tif", "--camera", "baseline_adu=nan")
    assert code == 2 and "baseline_adu must be a finite number, got nan" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif", "s_gt.csv"]


def test_train_stores_the_camera_in_its_config(tmp_path, run_cli):
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", "deep_storm", "--config", "tiny", "--out", out,
                                "--camera", "scmos", "--camera", "baseline_adu=500", "--camera",
                                "photons_per_adu=2", "--steps-per-epoch", "1", "--epochs", "1",
                                "--validation-steps", "1", "--quiet")
    assert code == 0, err
    assert "camera: sCMOS (no EM gain), 2 photon/ADU above a baseline of 500 ADU" in stdout
    camera = json.loads((out / "config.json").read_text())["imaging"]["camera"]
    assert camera["baseline_adu"] == 500 and camera["e_per_adu"] == 2 and camera["em_gain"] is None
    # The EMCCD trap in a configuration (DECODE 3d: the SMLM 2016 camera) and a classifier.
    code, _, err = run_cli("train", "decode", "--config", "3d", "--out", tmp_path / "d",
                           "--camera", "e_per_adu=1")
    assert code == 2 and "the configuration's camera is an EMCCD (EM gain 300)" in err
    code, _, err = run_cli("train", "plcnn", "--config", "tiny", "--out", tmp_path / "p",
                           "--camera", "scmos")
    assert code == 2 and "has no camera" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_finetune_estimate_uses_the_given_camera(tmp_path, capsys):
    """With --camera the estimate measures no gain or offset: 6 frames (too few to measure
    them) are enough, and the fine-tuning configuration gets that camera."""
    from loczoo.smlm.estimate import estimate_imaging
    from loczoo.tools import cli
    from loczoo.tools.common import ToolParser
    from loczoo.tools.finetune import add_arguments, finetuning_config

    stack = tmp_path / "g.tif"
    assert cli.main(["simulate", str(stack), "--frames", "6", "--size", "64", "64", "--density",
                     "0.5", "1", "--photons", "3000", "5000", "--background", "30", "30",
                     "--camera", "scmos", "--camera", "baseline_adu=500", "--seed", "3",
                     "--quiet"]) == 0
    with pytest.raises(LoczooError, match="too few frames.*loczoo finetune --camera"):
        estimate_imaging(tifffile.imread(stack), 100.0)
    parser = ToolParser(prog="loczoo finetune")
    add_arguments(parser)
    args = parser.parse_args(["deep_storm", "--out", str(tmp_path / "ft"), "--data", str(stack),
                              "--camera", "scmos", "--camera", "baseline_adu=500",
                              "--estimate-only", "--quiet"])
    capsys.readouterr()
    _, config = finetuning_config(args)
    out = capsys.readouterr().out
    assert "camera baseline 500.0 ADU, 1 ADU/photon (1 photons/ADU; given)" in out
    assert "camera: sCMOS (no EM gain), 1 photon/ADU above a baseline of 500 ADU" in out
    assert config.imaging.camera == parse_camera(["scmos", "baseline_adu=500"], SMLM2016)
    low, high = config.imaging.background_photons
    assert low < 30 < high
