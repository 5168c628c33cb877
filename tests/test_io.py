"""TIFF stacks and localization CSVs: round trips, real files, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from loczoo.errors import LoczooError
from loczoo.smlm import io
from loczoo.smlm.localizations import Localizations

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _data(relative: str) -> Path:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path


def _stack(n=10, h=12, w=9) -> np.ndarray:
    return (np.arange(n * h * w) % 4000).astype(np.uint16).reshape(n, h, w)


# --------------------------------------------------------------------------- stacks


def test_stack_round_trip_keeps_values_and_pixel_size(tmp_path):
    frames = _stack()
    out = io.write_stack(tmp_path / "s.tif", frames, pixel_size_nm=107.0)
    stack = io.read_stack(out)
    assert stack.frames.shape == (10, 12, 9)
    assert stack.frames.dtype == np.uint16
    np.testing.assert_array_equal(stack.frames, frames)
    assert stack.pixel_size_nm == 107.0
    assert len(stack) == 10 and stack.path == out


def test_stack_round_trip_float_single_frame_and_option_wins(tmp_path):
    frame = np.array([[0.5, -1.25], [3.0, 1e6]], np.float64)
    io.write_stack(tmp_path / "f.tif", frame)
    stack = io.read_stack(tmp_path / "f.tif")
    assert stack.frames.shape == (1, 2, 2) and stack.frames.dtype == np.float32
    np.testing.assert_array_equal(stack.frames[0], frame.astype(np.float32))
    assert stack.pixel_size_nm is None
    assert io.read_stack(tmp_path / "f.tif", pixel_size_nm=65.0).pixel_size_nm == 65.0


def test_whole_number_floats_are_stored_as_uint16(tmp_path):
    io.write_stack(tmp_path / "w.tif", np.full((2, 3, 3), 7.0))
    assert io.read_stack(tmp_path / "w.tif").frames.dtype == np.uint16


def test_folder_of_tiffs_is_read_in_natural_order(tmp_path):
    for i in (1, 2, 10, 3):
        tifffile.imwrite(tmp_path / f"frame{i}.tif", np.full((4, 5), i, np.uint16))
    (tmp_path / "notes.txt").write_text("not a frame")
    stack = io.read_stack(tmp_path)
    assert stack.frames.shape == (4, 4, 5)
    assert stack.frames[:, 0, 0].tolist() == [1, 2, 3, 10]


def test_folder_with_odd_frame_shape_names_the_file(tmp_path):
    tifffile.imwrite(tmp_path / "a1.tif", np.zeros((4, 5), np.uint16))
    tifffile.imwrite(tmp_path / "a2.tif", np.zeros((4, 6), np.uint16))
    with pytest.raises(LoczooError, match="a2.tif"):
        io.read_stack(tmp_path)


def test_pixel_size_from_imagej_micron_metadata():
    stack = io.read_stack(_data("deepstorm_demo1/ArtificialDataset_demo1.tif"))
    assert stack.frames.shape == (20, 64, 64)
    assert stack.pixel_size_nm == 100.0


def test_pixel_size_from_72_dpi_is_unknown():
    stack = io.read_stack(_data("nairr_smlm/2DGauss_HD/2DGauss_HD_Train_Frame.tif"))
    assert stack.frames.shape == (1000, 32, 32)
    assert stack.pixel_size_nm is None


def test_pixel_size_from_centimetre_resolution(tmp_path):
    tifffile.imwrite(tmp_path / "cm.tif", np.zeros((3, 3), np.uint16), resolution=(1e5, 1e5),
                     resolutionunit="CENTIMETER")
    assert io.read_stack(tmp_path / "cm.tif").pixel_size_nm == 100.0


def test_missing_stack(tmp_path):
    with pytest.raises(LoczooError, match="nope.tif does not exist"):
        io.read_stack(tmp_path / "nope.tif")


def test_text_file_named_tif(tmp_path):
    (tmp_path / "fake.tif").write_text("hello, I am not an image\n")
    with pytest.raises(LoczooError, match="fake.tif is not a readable TIFF"):
        io.read_stack(tmp_path / "fake.tif")


@pytest.mark.parametrize("imagej", [True, False])
def test_truncated_tiff_is_an_error_not_zeros(tmp_path, imagej):
    full = tmp_path / "full.tif"
    if imagej:
        io.write_stack(full, _stack(n=10, h=32, w=32), pixel_size_nm=100)
    else:
        tifffile.imwrite(full, _stack(n=10, h=32, w=32))
    data = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoczooError, match="cut.tif .*(truncated|not a readable)"):
        io.read_stack(cut)


def test_rgb_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(LoczooError, match="rgb.tif is an RGB image; expected single-channel"):
        io.read_stack(tmp_path / "rgb.tif")


def test_4d_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "4d.tif", np.zeros((2, 3, 8, 8), np.uint16), imagej=True,
                     metadata={"axes": "TZYX"})
    with pytest.raises(LoczooError, match=r"shape \(2, 3, 8, 8\).*\[frames, height, width\]"):
        io.read_stack(tmp_path / "4d.tif")


def test_empty_folder(tmp_path):
    with pytest.raises(LoczooError, match="contains no .tif/.tiff files"):
        io.read_stack(tmp_path)


def test_float_stack_with_nan(tmp_path):
    frames = np.ones((3, 4, 5), np.float32)
    frames[2, 1, 1] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", frames, photometric="minisblack")
    with pytest.raises(LoczooError, match="nan.tif contains NaN .*frame 3"):
        io.read_stack(tmp_path / "nan.tif")


def test_bool_stack(tmp_path):
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((4, 4), bool))
    with pytest.raises(LoczooError, match="pixel type bool"):
        io.read_stack(tmp_path / "b.tif")


def test_existing_stack_refused_and_kept(tmp_path):
    target = tmp_path / "s.tif"
    target.write_bytes(b"original")
    with pytest.raises(LoczooError, match="s.tif exists; pass --overwrite"):
        io.write_stack(target, _stack())
    assert target.read_bytes() == b"original"
    io.write_stack(target, _stack(), overwrite=True)
    assert io.read_stack(target).frames.shape == (10, 12, 9)


# --------------------------------------------------------------------------- CSV


def _table(n=6) -> Localizations:
    rng = np.random.default_rng(0)
    return Localizations(
        frame=np.array([1, 1, 2, 5, 5, 9])[:n],
        x=np.round(rng.uniform(0, 6400, n), 3),
        y=np.round(rng.uniform(0, 6400, n), 3),
        z=np.round(rng.uniform(-400, 400, n), 3),
        photons=np.array([1000.5, 2000, 1500, 800, 3000, 123.25])[:n],
        prob=np.array([0.9, 0.5, 0.75, 0.125, 1.0, 0.3])[:n],
        sigma_x=np.array([10.5, 12, 8, 20, 9, 11])[:n],
        sigma_y=np.array([11.5, 13, 9, 21, 10, 12])[:n],
        sigma_z=np.array([30.0, np.nan, 25, 40, 35, 50])[:n],
    )


def test_csv_round_trip_with_all_columns(tmp_path):
    locs = _table()
    out = io.write_localizations(tmp_path / "l.csv", locs)
    header = out.read_text().splitlines()[0]
    assert header == ('"id","frame","x [nm]","y [nm]","z [nm]","intensity [photon]","prob",'
                      '"uncertainty_x [nm]","uncertainty_y [nm]","uncertainty_z [nm]"')
    back = io.read_localizations(out)
    for column in ("frame", "x", "y", "z", "photons", "prob", "sigma_x", "sigma_y", "sigma_z"):
        np.testing.assert_allclose(getattr(back, column), getattr(locs, column), rtol=0,
                                   atol=1e-9, err_msg=column)


def test_csv_writes_only_known_columns_sorted_by_frame(tmp_path):
    locs = Localizations(frame=[3, 1, 2], x=[30.0, 10.0, 20.0], y=[1.0, 2.0, 3.0])
    out = io.write_localizations(tmp_path / "l.csv", locs)
    assert out.read_text().splitlines() == [
        '"id","frame","x [nm]","y [nm]"', "1,1,10.000,2.000", "2,2,20.000,3.000",
        "3,3,30.000,1.000"]


def test_read_thunderstorm_demo1():
    locs = io.read_localizations(_data("deepstorm_demo1/positions_demo1.csv"))
    assert len(locs) == 4956
    assert (locs.frame[0], locs.x[0], locs.y[0], locs.photons[0]) == (1, 67.843, 2484.15594,
                                                                      2458.46515)
    assert (locs.frame[-1], locs.x[-1], locs.y[-1]) == (20, 6384.35579, 5200.34775)
    assert not locs.has("sigma_x") and not locs.has("prob")


def test_read_nairr():
    locs = io.read_localizations(_data("nairr_smlm/2DGauss_HD/2DGauss_HD_Train_xy.csv"))
    assert len(locs) == 51650
    assert (locs.frame[0], locs.x[0], locs.y[0], locs.photons[0]) == (
        1, 1798.0604454477, 1552.34811098944, 3000.0)
    assert locs.frame[-1] == 1000 and locs.x[-1] == 677.501288582442


@pytest.mark.parametrize("text, column, value", [
    ("Ground-truth,frame,xnano,ynano,znano,intensity\n1,3,10.5,20.5,-30,500\n", "z", -30.0),
    ("frame,x [nm],y [nm],confidence [a.u]\n3,10.5,20.5,0.75\n", "prob", 0.75),
    ("FRAME , X , Y , Photons\n3,10.5,20.5,500\n", "photons", 500.0),
    ('"frame";"x [µm]";"y [µm]";"uncertainty [nm]"\n3;0.0105;0.0205;7\n', "sigma_y", 7.0),
])
def test_read_other_formats(tmp_path, text, column, value):
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    locs = io.read_localizations(path)
    assert len(locs) == 1 and locs.frame[0] == 3
    assert locs.x[0] == pytest.approx(10.5) and locs.y[0] == pytest.approx(20.5)
    assert getattr(locs, column)[0] == pytest.approx(value)


def test_csv_missing_y_names_it(tmp_path):
    path = tmp_path / "noy.csv"
    path.write_text("frame,x,photons\n1,2,3\n")
    with pytest.raises(LoczooError, match=r"no column 'y' \(columns found: frame, x, photons\)"):
        io.read_localizations(path)


def test_csv_non_numeric_value_names_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("frame,x,y\n1,2,3\n2,abc,4\n")
    with pytest.raises(LoczooError, match=r"bad.csv line 3: column 'x' holds 'abc'"):
        io.read_localizations(path)


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("1,2,3\n4,5,6\n", "no header"),
    ("frame,x,y\n1,nan,3\n", "line 2: column 'x' is NaN"),
    ("frame,x,y\n1,5,3\n2,,3\n", "line 3: column 'x' is empty"),
    ("frame,x,y\n0,1,3\n", "line 2: frame 0 is invalid"),
    ("frame,x,y\n1,2\n", "line 2: 2 values"),
    ("frame,x [px],y [px]\n1,2,3\n", "in pixels"),
])
def test_csv_errors(tmp_path, text, message):
    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(LoczooError, match=message):
        io.read_localizations(path)


def test_missing_csv(tmp_path):
    with pytest.raises(LoczooError, match="gone.csv does not exist"):
        io.read_localizations(tmp_path / "gone.csv")


def test_existing_csv_refused_and_untouched(tmp_path):
    target = tmp_path / "l.csv"
    target.write_text("precious")
    with pytest.raises(LoczooError, match="l.csv exists; pass --overwrite to replace it"):
        io.write_localizations(target, _table())
    assert target.read_text() == "precious"
    io.write_localizations(target, _table(), overwrite=True)
    assert len(io.read_localizations(target)) == 6


def test_failed_writes_leave_no_files(tmp_path, monkeypatch):
    def broken_imwrite(path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.tifffile, "imwrite", broken_imwrite)
    with pytest.raises(LoczooError, match="cannot write .*s.tif: No space left on device"):
        io.write_stack(tmp_path / "s.tif", _stack())

    class FullDisk:
        """Writes the header, then fails like a full disk."""

        def __init__(self, path, *args, **kwargs):
            self.fh = open(path, *args, **kwargs)  # noqa: SIM115
            self.calls = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.calls += 1
            if self.calls > 1:
                raise OSError(28, "No space left on device")
            self.fh.write(text)

    monkeypatch.setattr(io, "open", FullDisk, raising=False)
    with pytest.raises(LoczooError, match="cannot write .*l.csv: No space left on device"):
        io.write_localizations(tmp_path / "l.csv", _table())
    assert list(tmp_path.iterdir()) == []
