"""loczoo filter: rows of a localization CSV kept by an expression over its columns."""

from __future__ import annotations

import numpy as np
import pytest

from loczoo.errors import LoczooError
from loczoo.smlm.tablefilter import column_identifier, filter_rows, read_table

CSV = ('"id","frame","x [nm]","y [nm]","z [nm]","intensity [photon]","prob",'
       '"uncertainty_x [nm]"\n'
       "1,1,100.000,200.000,-50.0,1000.0,0.9,12.5\n"
       "2,1,300.500,400.000,150.0,2000.0,0.4,25.0\n"
       "3,2,500.000,600.000,,3000.0,0.7,8.0\n"
       "4,3,700.000,800.000,420.0,500.0,0.95,40.0\n")


@pytest.fixture()
def table_path(tmp_path):
    path = tmp_path / "locs.csv"
    path.write_text(CSV)
    return path


def test_column_names_drop_their_units():
    assert column_identifier("uncertainty_x [nm]") == "uncertainty_x"
    assert column_identifier("intensity [photon]") == "intensity"
    assert column_identifier("x [nm]") == "x" and column_identifier("prob") == "prob"
    assert column_identifier("sigma (nm)") == "sigma__nm_"


@pytest.mark.parametrize("expression, kept", [
    ("prob > 0.5 and uncertainty_x < 20", [1, 3]),
    ("prob > 0.5 or intensity >= 2000", [1, 2, 3, 4]),
    ("not prob > 0.5", [2]),
    ("abs(z) < 300", [1, 2]),                  # row 3 has no z: unknown is not kept
    ("10 < x < 400 and frame == 1", [1, 2]),
    ("sqrt(x ** 2 + y ** 2) > 1000", [4]),
    ("isfinite(z)", [1, 2, 4]),
    ("-z > 0", [1]),
    ("intensity / 1000 % 2 == 1", [1, 3]),
])
def test_expressions_select_the_rows(table_path, expression, kept):
    table = read_table(table_path)
    mask = filter_rows(table, expression)
    assert (np.flatnonzero(mask) + 1).tolist() == kept


@pytest.mark.parametrize("expression, message", [
    ("prob >", "is not a valid expression"),
    ("photons > 5", "no column 'photons' in the table (columns: id, frame, x, y, z, "
                    "intensity, prob, uncertainty_x)"),
    ("__import__('os').system('true')", "is not allowed"),
    ("x.real > 0", "is not allowed"),
    ("'a' < 'b'", "is not allowed"),
    ("x", "gives numbers, not a condition"),
])
def test_bad_expressions_are_refused(table_path, expression, message):
    table = read_table(table_path)
    with pytest.raises(LoczooError, match=message.replace("(", r"\(").replace(")", r"\)")):
        filter_rows(table, expression)


def test_cli_writes_the_kept_lines_verbatim(table_path, tmp_path, run_cli):
    out = tmp_path / "f.csv"
    code, stdout, err = run_cli("filter", table_path, "--out", out, "--where",
                                "prob > 0.5 and uncertainty_x < 20")
    assert code == 0, err
    lines = CSV.splitlines()
    assert out.read_text().splitlines() == [lines[0], lines[1], lines[3]]
    assert "kept 2 of 4 localizations (50.0 %)" in stdout
    # The filtered table reads as localizations again.
    from loczoo.smlm.io import read_localizations

    locs = read_localizations(out)
    assert locs.x.tolist() == [100.0, 500.0]


def test_cli_bad_input_is_one_line_and_writes_nothing(table_path, tmp_path, run_cli):
    out = tmp_path / "f.csv"

    def refused(*args, needle):
        code, _, err = run_cli("filter", *args)
        assert code == 2 and err.count("\n") == 1 and needle in err, err
        assert not out.exists()

    refused(table_path, "--out", out, "--where", "photons > 1", needle="no column 'photons'")
    refused(table_path, "--out", table_path, "--where", "prob > 0", needle="input")
    empty = tmp_path / "empty.csv"
    empty.write_text(CSV.splitlines()[0] + "\n")
    refused(empty, "--out", out, "--where", "prob > 0", needle="no rows")
    text = tmp_path / "text.csv"
    text.write_text("frame,x,y,label\n1,2,3,a\n")
    refused(text, "--out", out, "--where", "label > 0", needle="'label' holds no numbers")
    refused(tmp_path / "missing.csv", "--out", out, "--where", "x > 0", needle="does not exist")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("frame,x,y\n1,2\n")
    refused(ragged, "--out", out, "--where", "x > 0", needle="line 2 has 2 values")
    out.write_text("mine")
    code, _, err = run_cli("filter", table_path, "--out", out, "--where", "x > 0")
    assert code == 2 and "exists" in err and out.read_text() == "mine"
