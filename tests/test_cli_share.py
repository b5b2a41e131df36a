"""CLI for sharing: export, package, models list/show/generate; errors in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthmed.cli import app
from synthmed.cli_share import register
from synthmed.data.synthetic import read_synthetic_arrays
from tests.export.helpers import tiny_run
from tests.test_cli import assert_one_line_error, run_cli

if "export" not in [c.name for c in app.registered_commands]:
    register(app)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("cli_share"))


def test_help_lists_share_commands(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "--help")
    assert code == 0 and all(name in out for name in ("export", "package", "models"))
    register(app)  # a second registration changes nothing
    assert [c.name for c in app.registered_commands].count("export") == 1


def test_export_command(run: Path, tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "raw"
    code, text, err = run_cli(
        monkeypatch, capsys, "export", str(run), "--format", "nnunet", "--out", str(out),
        "--name", "Dataset042_Cli", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads((out / "Dataset042_Cli" / "dataset.json").read_text())["numTraining"] == 3
    assert "nnunet export" in text
    code, _, err = run_cli(monkeypatch, capsys, "export", str(run), "--format", "jpeg2000")
    assert_one_line_error(code, err, "--format", "valid names")


def test_package_install_list_show_generate(run: Path, tmp_path: Path, monkeypatch, capsys):
    registry = tmp_path / "models"
    monkeypatch.setenv("SYNTHMED_MODELS", str(registry))
    code, text, err = run_cli(
        monkeypatch, capsys, "package", str(run), "--out", str(tmp_path / "demo.synthmed"),
        "--name", "demo", "--install",
    )  # fmt: skip
    assert code == 0, err
    assert (registry / "demo.synthmed" / "weights.safetensors").is_file()
    code, text, _ = run_cli(monkeypatch, capsys, "models", "list")
    assert code == 0 and text.split()[:2] == ["demo", "wgan_gp_sn"]
    code, text, _ = run_cli(monkeypatch, capsys, "models", "show", "demo")
    assert code == 0 and "## Intended use" in text
    out = tmp_path / "gen"
    code, _, err = run_cli(
        monkeypatch, capsys, "models", "generate", "demo", "--n", "3", "--out", str(out), "-q"
    )
    assert code == 0, err
    np.testing.assert_array_equal(
        read_synthetic_arrays(out)[0], read_synthetic_arrays(run / "synthetic")[0]
    )


def test_models_errors_are_one_line(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHMED_MODELS", str(tmp_path / "empty"))
    code, _, err = run_cli(monkeypatch, capsys, "models", "generate", "ghost", "--out", "x")
    assert_one_line_error(code, err, "no model package 'ghost'")
    code, text, _ = run_cli(monkeypatch, capsys, "models", "list")
    assert code == 0 and "no models installed" in text
