"""Each command's bad arguments, output folders, checkpoints and model packages: one line
naming the option, key or file and the cause, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch

from tests.bad_inputs.helpers import (
    assert_refused,
    folder_data,
    folder_source,
    read_only,
    run_config,
    train_args,
)

# --------------------------------------------------------------------------- usage


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["train", "--preset", "demo", "--epochs", "3"], ["synthmed train", "--epochs"]),
        (["sample"], ["synthmed sample", "Missing argument"]),
        (["sample", "RUN", "--n", "ten"], ["--n", "valid integer"]),
        (["export", "RUN"], ["synthmed export", "--format"]),
        (["reticulate"], ["No such command 'reticulate'"]),
        (["models", "explode"], ["No such command 'explode'"]),
        (["train", "--preset", "demo", "--set"], ["--set", "requires an argument"]),
        (["evaluate", "RUN", "--seeds", "1.5"], ["--seeds", "valid integer"]),
    ],
)
def test_usage_error(args, needles, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_refused(capsys, tmp_path, args, *needles)


# --------------------------------------------------------------------------- train


def test_train_without_config_or_preset(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_refused(capsys, tmp_path, ["train"], "CONFIG.yaml or --preset")


def test_train_bad_override(tmp_path, capsys):
    args = ["train", "--preset", "demo", "--set", "train.steps", "--out", tmp_path / "o"]
    assert_refused(capsys, tmp_path, args, "train.steps", "key.path=value")


def test_train_override_not_yaml(tmp_path, capsys):
    args = ["train", "--preset", "demo", "--set", "train.betas=[0.5,", "--out", tmp_path / "o"]
    assert_refused(capsys, tmp_path, args, "train.betas=[0.5,", "not valid YAML")


def test_train_bad_budget(tmp_path, capsys):
    args = ["train", "--preset", "demo", "--budget", "soon", "--out", tmp_path / "o"]
    assert_refused(capsys, tmp_path, args, "train.budget", "soon")


def test_train_data_file_missing(tmp_path, capsys):
    args = ["train", "--preset", "demo", "--data", tmp_path / "nodata.yaml", "--dry-run"]
    assert_refused(capsys, tmp_path, args, "nodata.yaml", "not found")


def _good_config(tmp: Path) -> Path:
    return run_config(tmp, folder_source(folder_data(tmp)))


def test_train_out_is_a_file(tmp_path, capsys):
    config = _good_config(tmp_path)
    (tmp_path / "out").write_text("my notes")
    assert_refused(capsys, tmp_path, train_args(config, tmp_path), "out", "is a file")


def test_train_out_below_a_file(tmp_path, capsys):
    config = _good_config(tmp_path)
    (tmp_path / "notes").write_text("my notes")
    args = ["train", config, "--out", tmp_path / "notes" / "run", "-q"]
    assert_refused(capsys, tmp_path, args, "notes", "is a file")


def test_train_out_read_only(tmp_path, capsys):
    config = _good_config(tmp_path)
    with read_only(tmp_path / "locked"):
        args = ["train", config, "--out", tmp_path / "locked" / "run", "-q"]
        assert_refused(capsys, tmp_path, args, "locked", "not writable")


def test_train_into_a_trained_run(run_copy, tmp_path, capsys):
    config = _good_config(tmp_path)
    args = ["train", config, "--out", run_copy, "-q"]
    assert_refused(capsys, tmp_path, args, "run", "already holds a trained model")


def test_resume_without_checkpoint(tmp_path, capsys):
    config = _good_config(tmp_path)
    (tmp_path / "out").mkdir()
    args = [*train_args(config, tmp_path), "--resume"]
    assert_refused(capsys, tmp_path, args, "out", "no checkpoints/last.pt")


# --------------------------------------------------------------------------- checkpoints


class _Payload:
    """Pickled into a checkpoint: weights-only loading must refuse it without running it."""

    def __reduce__(self):
        return (print, ("this must never run",))


def corrupt_bytes(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(raw))


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def pickled_object(path: Path) -> None:
    torch.save({"step": 2, "model_name": "x", "evil": _Payload()}, path)


def plain_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"step": 2}))


def foreign_torch_file(path: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)


CHECKPOINTS = {
    corrupt_bytes: ["last.pt", "corrupt"],
    truncated: ["last.pt", "not a checkpoint written by torch.save"],
    empty: ["last.pt", "empty file"],
    pickled_object: ["last.pt", "pickled Python objects"],
    plain_pickle: ["last.pt", "not a checkpoint written by torch.save"],
    foreign_torch_file: ["last.pt", "not a synthmed checkpoint", "'step'"],
}


@pytest.mark.parametrize("damage", list(CHECKPOINTS), ids=lambda f: f.__name__)
def test_sample_refuses_bad_checkpoint(damage, run_copy, tmp_path, capsys):
    damage(run_copy / "checkpoints" / "last.pt")
    args = ["sample", run_copy, "--out", tmp_path / "s", "--device", "cpu", "-q"]
    assert_refused(capsys, tmp_path, args, *CHECKPOINTS[damage])


@pytest.mark.parametrize("damage", [corrupt_bytes, pickled_object], ids=lambda f: f.__name__)
def test_resume_refuses_bad_checkpoint(damage, run_copy, tmp_path, capsys):
    damage(run_copy / "checkpoints" / "last.pt")
    config = _good_config(tmp_path)
    args = ["train", config, "--out", run_copy, "--resume", "-q"]
    assert_refused(capsys, tmp_path, args, *CHECKPOINTS[damage])


# --------------------------------------------------------------------------- sample


def _sample(run: Path, *extra) -> list:
    return ["sample", run, "--device", "cpu", "-q", *extra]


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--n", "0"], ["--n 0", "at least 1"]),
        (["--n", "-3"], ["--n -3", "at least 1"]),
        (["--threshold", "1.5"], ["--threshold 1.5", "[-1, 1]"]),
        (["--threshold", "-2"], ["--threshold -2", "[-1, 1]"]),
        (["--threshold", "nan"], ["--threshold nan", "[-1, 1]"]),
        (["--format", "jpeg"], ["--format", "'jpeg'", "valid names"]),
        (["--device", "tpu:7"], ["device 'tpu:7'"]),
        (["--lesion-centre", "middle"], ["--lesion-centre 'middle'", "y,x"]),
    ],
)
def test_sample_bad_argument(extra, needles, run_copy, tmp_path, capsys):
    assert_refused(capsys, tmp_path, _sample(run_copy, "--out", tmp_path / "s", *extra), *needles)


def test_sample_on_cuda_without_cuda(run_copy, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = ["sample", run_copy, "--out", tmp_path / "s", "--device", "cuda", "-q"]
    assert_refused(capsys, tmp_path, args, "device 'cuda'", "CUDA is not available")


def test_sample_into_a_file(run_copy, tmp_path, capsys):
    (tmp_path / "s").write_text("keep me")
    assert_refused(capsys, tmp_path, _sample(run_copy, "--out", tmp_path / "s"), "is a file")


def test_sample_into_a_non_empty_folder(run_copy, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    args = _sample(run_copy, "--out", tmp_path / "mine")
    assert_refused(capsys, tmp_path, args, "mine", "not empty", "no earlier synthmed output")


def test_sample_into_the_run_folder(run_copy, tmp_path, capsys):
    args = _sample(run_copy, "--out", run_copy)
    assert_refused(capsys, tmp_path, args, str(run_copy), "is the run folder")


def test_sample_into_a_folder_above_the_run(run_copy, tmp_path, capsys):
    args = _sample(run_copy, "--out", tmp_path)
    assert_refused(capsys, tmp_path, args, "a folder above the run folder")


def test_sample_into_the_checkpoints(run_copy, tmp_path, capsys):
    args = _sample(run_copy, "--out", run_copy / "checkpoints")
    assert_refused(capsys, tmp_path, args, "checkpoints", "not empty")


def test_sample_into_read_only(run_copy, tmp_path, capsys):
    with read_only(tmp_path / "locked"):
        args = _sample(run_copy, "--out", tmp_path / "locked" / "s")
        assert_refused(capsys, tmp_path, args, "locked", "not writable")


def test_sample_untrained_folder(tmp_path, capsys):
    (tmp_path / "empty_run").mkdir()
    args = _sample(tmp_path / "empty_run", "--n", "2")
    assert_refused(capsys, tmp_path, args, "empty_run", "not a synthmed run folder")


def test_sample_run_config_not_utf8(run_copy, tmp_path, capsys):
    config = run_copy / "config.yaml"
    config.write_bytes(config.read_bytes() + "# r\xe9sum\xe9\n".encode("latin-1"))
    args = _sample(run_copy, "--out", tmp_path / "s")
    assert_refused(capsys, tmp_path, args, "config.yaml", "not UTF-8")


def test_evaluate_bad_override(run_copy, tmp_path, capsys):
    args = ["evaluate", run_copy, "--set", "evaluate.utility.stepz=3", "-q"]
    assert_refused(capsys, tmp_path, args, "evaluate.utility.stepz")


# --------------------------------------------------------------------------- export


def _export(run: Path, *extra) -> list:
    return ["export", run, "--quiet", *extra]


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--format", "jpeg2000"], ["--format", "'jpeg2000'", "valid names"]),
        (["--format", "png", "--bits", "12"], ["--bits", "12"]),
        (["--format", "nnunet", "--name", "my data!"], ["'my data!'", "DatasetNNN_Name"]),
    ],
)
def test_export_bad_argument(extra, needles, run_copy, tmp_path, capsys):
    args = _export(run_copy, *extra, "--out", tmp_path / "e")
    assert_refused(capsys, tmp_path, args, *needles)


def test_export_into_the_synthetic_dataset(run_copy, tmp_path, capsys):
    args = _export(run_copy, "--format", "png", "--out", run_copy / "synthetic")
    assert_refused(capsys, tmp_path, args, "synthetic", "dataset being exported")


def test_export_into_the_run_folder(run_copy, tmp_path, capsys):
    args = _export(run_copy, "--format", "png", "--out", run_copy)
    assert_refused(capsys, tmp_path, args, "is the run folder")


def test_export_into_a_non_empty_folder(run_copy, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.csv").write_text("keep,me\n")
    args = _export(run_copy, "--format", "monai", "--out", tmp_path / "mine")
    assert_refused(capsys, tmp_path, args, "mine", "not empty")


def test_export_into_a_file(run_copy, tmp_path, capsys):
    (tmp_path / "e").write_text("keep me")
    args = _export(run_copy, "--format", "npz", "--out", tmp_path / "e")
    assert_refused(capsys, tmp_path, args, "is a file")


def test_export_before_sampling_checks_out_first(run_copy, tmp_path, capsys):
    """Without a synthetic set `export` samples first: a bad --out must be refused before."""
    import shutil

    shutil.rmtree(run_copy / "synthetic")
    (tmp_path / "e").write_text("keep me")
    args = _export(run_copy, "--format", "png", "--out", tmp_path / "e")
    assert_refused(capsys, tmp_path, args, "is a file")


# --------------------------------------------------------------------------- package + models


def test_package_into_the_run_folder(run_copy, tmp_path, capsys):
    args = ["package", run_copy, "--out", run_copy]
    assert_refused(capsys, tmp_path, args, "is the run folder")


def test_package_into_a_non_empty_folder(run_copy, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("keep me")
    args = ["package", run_copy, "--out", tmp_path / "mine"]
    assert_refused(capsys, tmp_path, args, "mine", "no checksums.sha256")


def test_package_bad_name(run_copy, tmp_path, capsys):
    args = ["package", run_copy, "--name", "../escape"]
    assert_refused(capsys, tmp_path, args, "'../escape'", "letters, digits")


def _rewrite_meta(package: Path, text: str) -> None:
    """Replace package.json and update the checksums, as a careless editor would."""
    (package / "package.json").write_text(text)
    lines = []
    for line in (package / "checksums.sha256").read_text().splitlines():
        digest, name = line.split("  ")
        if name == "package.json":
            digest = hashlib.sha256(text.encode()).hexdigest()
        lines.append(f"{digest}  {name}\n")
    (package / "checksums.sha256").write_text("".join(lines))


def _meta(package: Path) -> dict:
    return json.loads((package / "package.json").read_text())


def meta_invalid_json(package):
    _rewrite_meta(package, (package / "package.json").read_text()[:-20])
    return ["package.json", "not valid JSON"]


def meta_not_an_object(package):
    _rewrite_meta(package, "[1, 2, 3]")
    return ["package.json", "JSON object"]


def meta_missing_field(package):
    meta = _meta(package)
    del meta["model_kwargs"]
    _rewrite_meta(package, json.dumps(meta))
    return ["package.json", "'model_kwargs'"]


def meta_bad_threshold(package):
    meta = _meta(package)
    meta["sample_defaults"]["label_threshold"] = 3
    _rewrite_meta(package, json.dumps(meta))
    return ["package.json", "label_threshold in [-1, 1]"]


def meta_unknown_model(package):
    meta = _meta(package)
    meta["model_name"] = "stylegan9"
    _rewrite_meta(package, json.dumps(meta))
    return ["package.json", "stylegan9"]


def tampered_weights(package):
    raw = bytearray((package / "weights.safetensors").read_bytes())
    raw[-1] ^= 1
    (package / "weights.safetensors").write_bytes(bytes(raw))
    return ["weights.safetensors", "checksum mismatch"]


def extra_file(package):
    (package / "README.txt").write_text("hello")
    return ["README.txt", "not covered by the package checksums"]


def no_checksums(package):
    (package / "checksums.sha256").unlink()
    return ["tiny.synthmed", "not a synthmed model package"]


PACKAGES = {f.__name__: f for f in [
    meta_invalid_json, meta_not_an_object, meta_missing_field, meta_bad_threshold,
    meta_unknown_model, tampered_weights, extra_file, no_checksums,
]}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(PACKAGES))
def test_models_generate_refuses_bad_package(damage, package_copy, tmp_path, capsys):
    needles = PACKAGES[damage](package_copy)
    args = ["models", "generate", package_copy, "--n", "2", "--out", tmp_path / "g", "-q"]
    assert_refused(capsys, tmp_path, args, *needles)


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--n", "0"], ["--n 0"]),
        (["--format", "tga"], ["--format", "'tga'"]),
        (["--bits", "4"], ["--bits", "4"]),
        (["--sha256", "0" * 64], ["checksums.sha256", "digest differs"]),
    ],
)
def test_models_generate_bad_argument(extra, needles, package_copy, tmp_path, capsys):
    args = ["models", "generate", package_copy, "--out", tmp_path / "g", "-q", *extra]
    assert_refused(capsys, tmp_path, args, *needles)


def test_models_generate_into_the_package(package_copy, tmp_path, capsys):
    args = ["models", "generate", package_copy, "--n", "2", "--out", package_copy, "-q"]
    assert_refused(capsys, tmp_path, args, "is the model package")


def test_models_generate_into_a_non_empty_folder(package_copy, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("keep me")
    args = ["models", "generate", package_copy, "--n", "2", "--out", tmp_path / "mine", "-q"]
    assert_refused(capsys, tmp_path, args, "mine", "not empty")


def test_models_show_not_a_package(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    assert_refused(
        capsys, tmp_path, ["models", "show", tmp_path / "folder"], "not a synthmed model package"
    )
