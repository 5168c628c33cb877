"""The import rules of docs/design.md, enforced: every import statement in zoo/, datasets/,
export/, tools/ and benchmarks/ (lazy imports inside functions included) is read with ``ast``
and checked against

- entries: an entry folder (``loczoo.registry.KNOWN_ENTRIES``) imports no other entry, and not
  ``loczoo.training``, ``loczoo.bundle``, ``loczoo.calibration``, ``loczoo.crossval`` or
  ``loczoo.tools`` (what two entries share moves down into ``loczoo.smlm`` / ``loczoo.layers``);
- registry: ``datasets/``, ``export/`` and ``tools/`` reach entries only through
  ``loczoo.registry`` (``get_entry``, ``list_entries``), never by importing an entry folder;
- tools: nothing but ``benchmarks/`` (and tools itself) imports ``loczoo.tools``;
- shared stages: ``loczoo.smlm``, ``loczoo.layers`` and ``loczoo.proteins`` sit below the
  entries and import none of them.

Imports of a constant module name through ``importlib.import_module`` count too; the registry's
own ``import_module(f"loczoo.{name}")`` is not a constant and is the sanctioned way in.
"""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

from loczoo.registry import KNOWN_ENTRIES

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("zoo", "datasets", "export", "tools", "benchmarks")
ENTRY_FORBIDDEN = ("loczoo.training", "loczoo.bundle", "loczoo.calibration", "loczoo.crossval",
                   "loczoo.tools")
THROUGH_REGISTRY = ("loczoo.datasets", "loczoo.export", "loczoo.tools")
SHARED_STAGES = ("loczoo.smlm", "loczoo.layers", "loczoo.proteins")


def package_roots() -> dict[str, str]:
    """Folder -> import name, from setup.cfg's package_dir (benchmarks/ are plain scripts)."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    roots = {}
    for line in cfg["options"]["package_dir"].strip().split("\n"):
        name, folder = (s.strip() for s in line.split("="))
        roots[folder] = name
    roots["benchmarks"] = "benchmarks"
    return roots


def module_name(path: str, roots: dict[str, str]) -> tuple[str, bool]:
    """The dotted name of the file ``path`` (relative to the repository, posix) and whether it
    is a package's ``__init__``: zoo/smlm/pipeline.py -> loczoo.smlm.pipeline."""
    parts = path.removesuffix(".py").split("/")
    package = parts[-1] == "__init__"
    if package:
        parts = parts[:-1]
    # The longest folder prefix wins (tools/ before a hypothetical zoo/tools/).
    for n in range(len(parts), 0, -1):
        folder = "/".join(parts[:n])
        if folder in roots:
            return ".".join([roots[folder], *parts[n:]]), package
    raise AssertionError(f"{path} is in no mapped folder")


def imported_modules(tree: ast.AST, module: str, package: bool):
    """(line, module) for every import in ``tree``, relative ones resolved. ``from a import b``
    gives ``a`` then ``a.b`` (b may be a submodule, e.g. ``from loczoo import dsir``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{target}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name)
                       and node.func.id in ("import_module", "__import__")))):
            yield node.lineno, node.args[0].value


def within(module: str, parent: str) -> bool:
    return module == parent or module.startswith(parent + ".")


def entry_of(module: str) -> str | None:
    for name in KNOWN_ENTRIES:
        if within(module, f"loczoo.{name}"):
            return name
    return None


def check_import(source: str, target: str) -> str | None:
    """The rule that ``source`` (a module) importing ``target`` breaks, or None."""
    source_entry, target_entry = entry_of(source), entry_of(target)
    if source_entry is not None:
        if target_entry is not None and target_entry != source_entry:
            return "an entry imports no other entry"
        for forbidden in ENTRY_FORBIDDEN:
            if within(target, forbidden):
                return f"an entry does not import {forbidden}"
    if target_entry is not None and any(within(source, p) for p in THROUGH_REGISTRY):
        return "datasets, export and tools reach entries through loczoo.registry only"
    if target_entry is not None and any(within(source, p) for p in SHARED_STAGES):
        return "shared stages (loczoo.smlm, loczoo.layers, loczoo.proteins) import no entry"
    if within(target, "loczoo.tools") and not (within(source, "loczoo.tools")
                                                or within(source, "benchmarks")):
        return "only benchmarks and tools import loczoo.tools"
    return None


def violations_in_source(text: str, path: str, roots: dict[str, str] | None = None) -> list[str]:
    """``path:line imports module (rule)`` for every import in ``text`` (the file ``path``)
    that breaks a rule; one line per (line, rule), naming the statement's module (or, for
    ``from loczoo import dsir``, the submodule)."""
    roots = roots or package_roots()
    module, package = module_name(path, roots)
    found: dict[tuple[int, str], str] = {}
    for line, target in imported_modules(ast.parse(text, filename=path), module, package):
        rule = check_import(module, target)
        if rule is not None:
            found.setdefault((line, rule), target)
    return [f"{path}:{line} imports {target} ({rule})"
            for (line, rule), target in sorted(found.items())]


def scanned_files() -> list[Path]:
    files = []
    for folder in SCANNED:
        files += [p for p in sorted((REPO / folder).rglob("*.py"))
                  if "__pycache__" not in p.parts]
    return files


def test_scan_covers_every_entry_and_folder():
    files = [p.relative_to(REPO).as_posix() for p in scanned_files()]
    for folder in SCANNED:
        assert any(f.startswith(folder + "/") for f in files), f"nothing scanned in {folder}/"
    for name in KNOWN_ENTRIES:
        assert f"zoo/{name}/__init__.py" in files, f"entry folder zoo/{name} not found"


def test_imports_follow_the_layering_rules():
    roots = package_roots()
    problems = []
    for path in scanned_files():
        rel = path.relative_to(REPO).as_posix()
        problems += violations_in_source(path.read_text(encoding="utf-8"), rel, roots)
    assert not problems, (f"{len(problems)} imports break the layering rules "
                          "(docs/design.md, Layout):\n" + "\n".join(problems))


def test_scanner_catches_planted_violations():
    planted = {
        # A lazy import of an entry in a data set builder.
        "datasets/fake/builder.py": ("import numpy\n\n\ndef f():\n"
                                     "    from loczoo.dsir import pipeline\n"),
        # Relative imports from one entry into another and into training.
        "zoo/deep_storm/fake.py": "from ..deepcel0 import config\nfrom .. import training\n",
        # An entry reached as a name of the zoo package, and tools imported by the core.
        "export/fake.py": "from loczoo import decode\n",
        "zoo/smlm/fake.py": "import loczoo.tools.common as common\n",
        "tools/fake.py": "import importlib\nimportlib.import_module('loczoo.plcnn.pipeline')\n",
        # A shared stage that reaches up into an entry.
        "zoo/proteins/fake.py": "from loczoo.plcnn.pipeline import LabelledImages\n",
    }
    found = {path: violations_in_source(text, path) for path, text in planted.items()}
    assert found["datasets/fake/builder.py"] == [
        "datasets/fake/builder.py:5 imports loczoo.dsir (datasets, export and tools "
        "reach entries through loczoo.registry only)"]
    assert found["zoo/deep_storm/fake.py"] == [
        "zoo/deep_storm/fake.py:1 imports loczoo.deepcel0 (an entry imports no other "
        "entry)",
        "zoo/deep_storm/fake.py:2 imports loczoo.training (an entry does not import "
        "loczoo.training)"]
    assert [v.split(" (")[0] for v in found["export/fake.py"]] == [
        "export/fake.py:1 imports loczoo.decode"]
    assert found["zoo/smlm/fake.py"] == [
        "zoo/smlm/fake.py:1 imports loczoo.tools.common (only benchmarks and tools import "
        "loczoo.tools)"]
    assert [v.split(" (")[0] for v in found["tools/fake.py"]] == [
        "tools/fake.py:2 imports loczoo.plcnn.pipeline"]
    assert [v.split(" (")[0] for v in found["zoo/proteins/fake.py"]] == [
        "zoo/proteins/fake.py:1 imports loczoo.plcnn.pipeline"]


def test_scanner_accepts_the_allowed_imports():
    allowed = {
        "export/fake.py": "from loczoo.registry import get_entry, list_entries\n"
                          "from loczoo import get_entry as g\nimport loczoo.smlm.simulate\n",
        "datasets/fake.py": "from loczoo.smlm.pipeline import SPLIT_SEED_OFFSET\n",
        "zoo/dsir/fake.py": "from . import pipeline\nfrom loczoo.dsir.loss import make_loss\n"
                            "from loczoo.smlm import targets\nfrom loczoo.layers import blocks\n",
        "zoo/dsir/__init__.py": "from .pipeline import make_dataset\n",
        "benchmarks/fake.py": "from loczoo.tools.common import number\n",
        "tools/fake.py": "from .common import number\nfrom loczoo.tools import common\n",
    }
    for path, text in allowed.items():
        assert violations_in_source(text, path) == [], path
