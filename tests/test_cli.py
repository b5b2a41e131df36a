"""CLI: bad input ends in one line naming the file, exit code 2, nothing half-written."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from synthmed.cli import main


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["synthmed", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def folder_config(tmp_path: Path, **source) -> Path:
    spec = {
        "kind": "folders",
        "root": str(tmp_path / "data"),
        "image_glob": "images/*.png",
        "label_glob": "labels/*.png",
        "id_regex": r"case(\d+)",
        **source,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"preset": "demo", "name": "user", "data": {"train": spec}}))
    return path


def write_case(root: Path, i: int, image: np.ndarray, label: np.ndarray) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(root / "images" / f"case{i:02d}.png")
    Image.fromarray(label).save(root / "labels" / f"case{i:02d}.png")


def good_cases(root: Path, n: int = 6, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        label = np.zeros((size, size), np.uint8)
        label[8:16, 8:20] = 255
        write_case(root, i, rng.integers(0, 255, (size, size), dtype=np.uint8), label)


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_help_lists_commands(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "--help")
    assert code == 0
    for cmd in ("demo", "train", "sample", "evaluate", "report"):
        assert cmd in out


def test_missing_config_file(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "train", str(tmp_path / "absent.yaml"))
    assert_one_line_error(code, err, "absent.yaml", "not found")


def test_unknown_config_key(monkeypatch, capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("preset: demo\nmodel: {nmae: x}\n")
    code, _, err = run_cli(monkeypatch, capsys, "train", str(path))
    assert_one_line_error(code, err, "bad.yaml", "model.nmae")


def test_empty_dataset(monkeypatch, capsys, tmp_path):
    (tmp_path / "data" / "images").mkdir(parents=True)
    cfg = folder_config(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "train", str(cfg), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "images/*.png")
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_unreadable_image(monkeypatch, capsys, tmp_path):
    good_cases(tmp_path / "data")
    (tmp_path / "data" / "images" / "case03.png").write_bytes(b"not a png at all")
    cfg = folder_config(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "train", str(cfg), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "case03.png")


def test_image_label_shape_mismatch(monkeypatch, capsys, tmp_path):
    good_cases(tmp_path / "data")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "data" / "labels" / "case02.png")
    cfg = folder_config(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "train", str(cfg), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "case02.png", "shape")


def test_label_values_outside_declared(monkeypatch, capsys, tmp_path):
    good_cases(tmp_path / "data")
    label = np.zeros((32, 32), np.uint8)
    label[2:5, 2:5] = 7
    Image.fromarray(label).save(tmp_path / "data" / "labels" / "case04.png")
    cfg = folder_config(tmp_path, label_values=[0, 255])
    code, _, err = run_cli(monkeypatch, capsys, "train", str(cfg), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "case04.png", "label_values")


def test_sample_on_untrained_folder(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "sample", str(tmp_path), "--n", "3")
    assert_one_line_error(code, err, str(tmp_path))


def test_dry_run_prints_resolved_config(monkeypatch, capsys):
    code, out, _ = run_cli(
        monkeypatch,
        capsys,
        "train",
        "--preset",
        "kossen2021-wgan-gp-sn",
        "--quick",
        "--dry-run",
        "--set",
        "train.steps=9",
    )
    assert code == 0
    cfg = yaml.safe_load(out)
    assert cfg["train"]["steps"] == 9 and cfg["model"]["name"] == "wgan_gp_sn"


def test_budget_option_and_bad_budget(monkeypatch, capsys):
    code, out, _ = run_cli(
        monkeypatch, capsys, "train", "--preset", "demo", "--budget", "20m", "--dry-run"
    )
    assert code == 0 and yaml.safe_load(out)["train"]["budget"] == "20m"
    code, _, err = run_cli(
        monkeypatch, capsys, "train", "--preset", "demo", "--budget", "soon", "--dry-run"
    )
    assert_one_line_error(code, err, "train.budget", "soon")


def test_demo_tiny_end_to_end(monkeypatch, capsys, tmp_path):
    out_dir = tmp_path / "demo"
    code, out, err = run_cli(
        monkeypatch, capsys, "demo", "--tiny", "--out", str(out_dir), "--quiet"
    )
    assert code == 0, err
    assert "report:" in out and (out_dir / "report.html").is_file()
    html = (out_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    import json

    metrics = json.loads((out_dir / "metrics.json").read_text())
    arms = metrics["utility"]["segmentation"]["arms"]
    assert set(arms) == {"real", "synthetic"}
    for vals in arms.values():
        assert 0.0 <= vals["dice_mean"] <= 1.0
    assert (out_dir / "synthetic" / "manifest.csv").is_file()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["train", "--preset", "demo", "--no-such-option"], ["synthmed train", "--no-such-option"]),
        (["sample"], ["synthmed sample", "Missing argument"]),
        (["sample", "runs/x", "--n", "many"], ["--n", "integer"]),
        (["no-such-command"], ["No such command", "no-such-command"]),
        (["models", "generate"], ["synthmed models generate", "Missing argument"]),
        (["train", "--preset", "demo", "--set"], ["--set", "requires an argument"]),
    ],
)
def test_usage_errors_are_one_line_without_click(monkeypatch, capsys, args, needles):
    """typer 0.29 vendors click and no longer installs it: the error path must not need it."""
    monkeypatch.setitem(sys.modules, "click", None)  # `import click` now raises ImportError
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert_one_line_error(code, err, *needles)
    assert out == ""


def test_main_takes_argv(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--n", "x"])
    assert exc.value.code == 2 and capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize("command", ["train", "sample", "evaluate"])
def test_torchrun_passes_every_option_through(command):
    """torchrun's parser takes an abbreviation of its own options anywhere on its command
    line (``--n`` -> "ambiguous option: --n could match --nnodes, ..."); the launcher's
    command must hand every synthmed option to the workers unchanged."""
    import typer.main
    from torch.distributed.run import get_args_parser

    from synthmed.cli import app, torchrun_command

    parser = get_args_parser()
    options = [
        name
        for param in typer.main.get_command(app).commands[command].params
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("-") and name != "--nproc"
    ]
    assert "--n" in options or command != "sample"
    for option in options:
        args = [command, "runs/x", option, "1", "--nproc", "2"]
        cmd = torchrun_command(args, 2)
        parsed = parser.parse_args(cmd[3:])  # what follows `python -m torch.distributed.run`
        passed = parsed.training_script_args
        assert (parsed.module, parsed.training_script) == (True, "synthmed")
        assert passed[passed[:1] == ["--"] :] == args[:4], option
    with pytest.raises(SystemExit):  # the bug this guards against: without "--"
        parser.parse_args(["--nproc-per-node", "2", "-m", "synthmed", "sample", "r", "--n", "4"])


def test_failed_rank_stops_the_job_with_one_line(tmp_path):
    from tests.torchrun import output, synthmed_cli

    done = synthmed_cli("sample", str(tmp_path), "--n", "2", "--nproc", "2", "--quiet")
    assert done.returncode != 0, output(done)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    # the first rank to fail says which it is; torchrun then stops the other (SIGTERM)
    own = [e for e in errors if e.startswith(("error: rank 0: ", "error: rank 1: "))]
    assert own and all(f"{tmp_path}: no config.yaml" in e for e in own), output(done)
    assert errors[-1].startswith("error: synthmed sample --nproc 2: a rank failed"), errors
