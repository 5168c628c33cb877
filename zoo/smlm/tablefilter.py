"""Keep the rows of a localization CSV that satisfy an expression over its numeric columns
(``loczoo filter LOCS.csv --where "prob > 0.5 and uncertainty_x < 20"``).

A column is named in an expression by its header without the unit in brackets, made an
identifier: ``uncertainty_x [nm]`` is ``uncertainty_x``, ``intensity [photon]`` is
``intensity``, ``x [nm]`` is ``x`` (a header that is already an identifier is used as it is).
Expressions are Python syntax limited to numbers, column names, arithmetic (+ - * / ** %,
unary minus), comparisons (chains allowed: ``10 < x < 500``), ``and`` / ``or`` / ``not``
and the functions ``abs``, ``sqrt``, ``log``, ``log10``, ``exp`` and ``isfinite``; anything
else (attributes, calls of other functions, strings, subscripts) is refused before any row is
read. Rows are written back exactly as they were (other columns and number formats kept), so a
filtered table reads like the original in every tool.
"""

from __future__ import annotations

import ast
import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loczoo.errors import LoczooError
from loczoo.outputs import atomic_path

FUNCTIONS = {"abs": np.abs, "sqrt": np.sqrt, "log": np.log, "log10": np.log10,
             "exp": np.exp, "isfinite": np.isfinite}
_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
           ast.Div: np.true_divide, ast.Pow: np.power, ast.Mod: np.mod}
_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
            ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}


def column_identifier(header: str) -> str:
    """The name an expression uses for a CSV header: the unit in brackets dropped, other
    characters that cannot be in an identifier turned into ``_``."""
    name = re.sub(r"\s*\[[^\]]*\]\s*$", "", header.strip())
    name = re.sub(r"\W", "_", name)
    return f"_{name}" if name[:1].isdigit() else name


@dataclass(frozen=True)
class Table:
    """A CSV as read: its header line and data lines verbatim, the header names, and the
    numeric value of every cell (NaN where a cell is not a number)."""

    header_line: str
    lines: list[str]
    names: tuple[str, ...]
    values: np.ndarray   # [rows, columns] float64

    def column(self, identifier: str) -> np.ndarray:
        return self.values[:, self.identifiers.index(identifier)]

    @property
    def identifiers(self) -> list[str]:
        return [column_identifier(n) for n in self.names]


def read_table(path: str | Path) -> Table:
    """The CSV at ``path`` (comma-separated, one header line). One-line errors for a missing
    or empty file, a header with repeated names, or rows of the wrong length."""
    path = Path(path)
    if not path.is_file():
        raise LoczooError(f"{path} does not exist" if not path.exists() else
                          f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise LoczooError(f"{path} is not a text (CSV) file") from None
    raw = text.splitlines()
    if not raw or not raw[0].strip():
        raise LoczooError(f"{path} is empty: no header line")
    names = tuple(next(csv.reader([raw[0]])))
    identifiers = [column_identifier(n) for n in names]
    repeated = sorted({i for i in identifiers if identifiers.count(i) > 1})
    if repeated:
        raise LoczooError(f"{path}: columns {', '.join(repeated)} appear twice in the header")
    lines = [line for line in raw[1:] if line.strip()]
    values = np.full((len(lines), len(names)), np.nan)
    for row, cells in enumerate(csv.reader(lines)):
        if len(cells) != len(names):
            raise LoczooError(f"{path}: line {row + 2} has {len(cells)} values, the header "
                              f"{len(names)}")
        for col, cell in enumerate(cells):
            try:
                values[row, col] = float(cell)
            except ValueError:
                pass
    return Table(raw[0], lines, names, values)


def compile_expression(expression: str, identifiers: list[str]):
    """(a function of a column lookup (name -> array) that evaluates ``expression`` to a
    boolean row mask, the names of the columns it reads); LoczooError (one line) for bad
    syntax, a construct that is not allowed, or an unknown column (the known ones listed)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as err:
        raise LoczooError(f"--where {expression!r} is not a valid expression "
                          f"({err.msg} at column {err.offset})") from None
    known = set(identifiers)

    def check(node):
        if isinstance(node, ast.Expression):
            return check(node.body)
        if isinstance(node, ast.BoolOp):
            return all(check(v) for v in node.values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            return check(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return check(node.left) and check(node.right)
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            return check(node.left) and all(check(c) for c in node.comparators)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in FUNCTIONS and len(node.args) == 1 and not node.keywords:
            return check(node.args[0])
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return True
        if isinstance(node, ast.Name):
            if node.id in ("nan", "inf"):
                return True
            if node.id not in known:
                raise LoczooError(f"--where: no column {node.id!r} in the table (columns: "
                                  f"{', '.join(identifiers)})")
            return True
        raise LoczooError(f"--where: {ast.unparse(node)!r} is not allowed (numbers, columns, "
                          f"arithmetic, comparisons, and/or/not, "
                          f"{'/'.join(FUNCTIONS)})")

    check(tree)

    def evaluate(node, column):
        if isinstance(node, ast.Expression):
            return evaluate(node.body, column)
        if isinstance(node, ast.BoolOp):
            parts = [np.asarray(evaluate(v, column), bool) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = parts[0]
            for part in parts[1:]:
                out = combine(out, part)
            return out
        if isinstance(node, ast.UnaryOp):
            value = evaluate(node.operand, column)
            if isinstance(node.op, ast.Not):
                return np.logical_not(np.asarray(value, bool))
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](evaluate(node.left, column),
                                          evaluate(node.right, column))
        if isinstance(node, ast.Compare):
            left, out = evaluate(node.left, column), True
            for op, right_node in zip(node.ops, node.comparators):
                right = evaluate(right_node, column)
                out = np.logical_and(out, _COMPARE[type(op)](left, right))
                left = right
            return out
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id](evaluate(node.args[0], column))
        if isinstance(node, ast.Constant):
            return float(node.value)
        if node.id in ("nan", "inf"):
            return math.nan if node.id == "nan" else math.inf
        return column(node.id)

    def mask(column) -> np.ndarray:
        with np.errstate(all="ignore"):   # NaN cells compare False, as "unknown"
            return evaluate(tree, column)

    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id in known}
    return mask, used


def filter_rows(table: Table, expression: str) -> np.ndarray:
    """Boolean mask [rows] of the rows where ``expression`` holds (NaN cells: False). An empty
    table, or a column in the expression without a single number, is a LoczooError."""
    evaluate, used = compile_expression(expression, table.identifiers)
    if not table.lines:
        raise LoczooError("the table has no rows to filter")
    for name in sorted(used):
        if not np.isfinite(table.column(name)).any():
            raise LoczooError(f"--where: column {name!r} holds no numbers")
    mask = evaluate(table.column)
    mask = np.broadcast_to(np.asarray(mask), (len(table.lines),))
    if mask.dtype != bool:
        raise LoczooError(f"--where {expression!r} gives numbers, not a condition; compare "
                          f"them, e.g. {expression} > 0")
    return mask


def write_rows(path: str | Path, table: Table, mask: np.ndarray) -> Path:
    """The header and the kept lines, verbatim, written atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        buffer = io.StringIO()
        buffer.write(table.header_line + "\n")
        for line, keep in zip(table.lines, mask):
            if keep:
                buffer.write(line + "\n")
        Path(tmp).write_text(buffer.getvalue(), encoding="utf-8")
    return path
