"""Packaging: every package folder is listed in setup.cfg, and the CLI starts without
TensorFlow."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    listed = {p.strip() for p in cfg["options"]["packages"].split("\n") if p.strip()}
    roots = {}
    for line in cfg["options"]["package_dir"].strip().split("\n"):
        name, folder = (s.strip() for s in line.split("="))
        roots[folder] = name
    found = set()
    for folder, name in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == listed, f"unlisted: {found - listed}, stale: {listed - found}"


def test_help_is_fast_and_does_not_import_tensorflow():
    code = ("import sys; from loczoo.tools import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
            "for sub in cli.SUBCOMMANDS:\n"
            "    try:\n        cli.main([sub, '--help'])\n    except SystemExit:\n        pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported by a --help'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "localize" in result.stdout


def test_tools_run_as_scripts():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "localize.py"), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--pixel-size" in result.stdout
