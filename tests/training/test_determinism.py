"""The same training command in two processes gives bit-identical checkpoints on CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

TINY = [
    "data.train.phantom.n_patients=6",
    "data.train.phantom.size=32",
    "data.patches.per_image=4",
    "model.base_channels=8",
    "train.steps=6",
    "train.batch_size=8",
    "train.n_critic=2",
    "train.log_every=2",
    "train.checkpoint_every=3",
]


def _train(out: Path) -> dict:
    args = ["train", "--preset", "demo", "--out", str(out), "-q", "--device", "cpu"]
    for override in TINY:
        args += ["--set", override]
    code = (
        "import sys; from synthmed.cli import main; sys.argv = ['synthmed', *sys.argv[1:]]; main()"
    )
    subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
    return torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)


def test_two_processes_train_identical_weights(tmp_path: Path) -> None:
    first, second = _train(tmp_path / "a"), _train(tmp_path / "b")
    for part in ("generator", "critic"):
        assert first[part].keys() == second[part].keys()
        for name, tensor in first[part].items():
            assert torch.equal(tensor, second[part][name]), f"{part}.{name} differs"
    assert first["step"] == second["step"] == 6
    log_a = (tmp_path / "a" / "train_log.csv").read_text().splitlines()
    log_b = (tmp_path / "b" / "train_log.csv").read_text().splitlines()
    drop_time = [[c for i, c in enumerate(row.split(",")) if i != 1] for row in log_a]
    assert drop_time == [[c for i, c in enumerate(row.split(",")) if i != 1] for row in log_b]


def test_mkl_dynamic_threads_switched_off() -> None:
    from synthmed.determinism import fix_mkl_threads

    if torch.backends.mkl.is_available() and sys.platform.startswith("linux"):
        assert fix_mkl_threads(), "MKL_Set_Dynamic not reachable in libtorch_cpu"
