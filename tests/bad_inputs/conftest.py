"""A tiny trained run (2 steps, 16x16 patches, 3 samples) and its model package, made once
per session; each case works on its own copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    from synthmed.packaging import build_package
    from tests.export.helpers import tiny_run

    root = tmp_path_factory.mktemp("bad_inputs_run")
    run = tiny_run(root)
    package = build_package(run, root / "tiny.synthmed", name="tiny")
    return {"run": run, "package": package}


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    """This case's own copy of the trained run (``tmp_path/run``)."""
    return Path(shutil.copytree(trained["run"], tmp_path / "run", symlinks=True))


@pytest.fixture
def package_copy(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained["package"], tmp_path / "tiny.synthmed"))
