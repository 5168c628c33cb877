"""Shared test fixtures: quiet TensorFlow, the shared real data folder, a tiny trained run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A Deep-STORM run folder trained for a few steps with the TINY config."""
    from loczoo.registry import get_entry
    from loczoo.training import train

    out = tmp_path_factory.mktemp("runs") / "tiny_deep_storm"
    entry = get_entry("deep_storm")
    return train(entry, entry.config_cls.tiny(), out, steps_per_epoch=2, epochs=1,
                 validation_steps=1, quiet=True)


@pytest.fixture()
def run_cli(capsys):
    """``run_cli(*argv) -> (exit code, stdout, stderr)`` of the ``loczoo`` command."""
    from loczoo.tools import cli

    def run(*argv) -> tuple[int, str, str]:
        code = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
