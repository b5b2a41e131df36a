"""A diffusion family through the shared loop: trains with one optimiser and no critic,
resumes exactly, selects checkpoints, samples with its sampler recorded in the manifest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from synthmed import api
from synthmed.checkpoints import load_checkpoint
from synthmed.errors import InputError
from tests.training.test_training import tiny_config

DIFFUSION = {
    "model.name": "diffusion_pairs",
    "train.method": "diffusion",
    "model.options": "{channels: [4, 8], attention: [false, true], sample_steps: 2}",
    "sample.n": "3",
}


def test_diffusion_trains_resumes_and_samples(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    api.train(tiny_config(3, **DIFFUSION), straight, quiet=True)
    api.train(tiny_config(2, **DIFFUSION), resumed, quiet=True)
    api.train(tiny_config(3, **DIFFUSION), resumed, resume=True, quiet=True)
    a, b = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (straight, resumed))
    assert "critic" not in a and set(a["optimizers"]) == {"g"}
    for part in ("generator", "generator_ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    folder = api.sample(straight, steps=4, quiet=True)
    with (folder / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["sampler"] for r in rows] == ["rflow euler 4 steps"] * 3
    desc = json.loads((folder / "dataset.json").read_text())
    assert desc["generator"]["sampler"] == "rflow euler 4 steps"


def test_checkpoint_selection_runs_for_diffusion(tmp_path: Path) -> None:
    run = tmp_path / "run"
    extra = {
        "data.patches.per_image": "12",
        "train.select.every": "2",
        "train.select.n": "16",
        "train.select.quantile": "0.99",  # as in test_selection: tiny runs draw flat patches
        "evaluate.encoder_steps": "5",
    }
    api.train(tiny_config(4, **DIFFUSION, **extra), run, quiet=True)
    assert (run / "checkpoints" / "best.pt").is_file()
    assert (run / "selection.csv").read_text().count("\n") == 1 + 2


def test_gan_runs_refuse_diffusion_sampler_settings(tmp_path: Path) -> None:
    run = tmp_path / "gan"
    api.train(tiny_config(1, **{"sample.n": "2"}), run, quiet=True)
    with pytest.raises(InputError, match="sample.steps"):
        api.sample(run, steps=5, quiet=True)


def test_a_diffusion_run_packages_and_generates(tmp_path: Path) -> None:
    from synthmed import hub
    from synthmed.packaging.package import build_package

    run = tmp_path / "run"
    api.train(tiny_config(2, **DIFFUSION), run, quiet=True)
    package = build_package(run, tmp_path / "diff.synthmed", name="diff")
    images, labels = hub.generate(package, n=3, seed=7)
    again, _ = hub.generate(package, n=1, seed=7)
    assert images.shape[0] == 3 and labels.shape == (3, *images.shape[2:])
    assert (images >= 0).all() and (images <= 1).all()
    assert torch.allclose(torch.as_tensor(images[:1]), torch.as_tensor(again), atol=1e-5)
