"""Memorization-aware checkpoint selection: better fidelity wins, a copying checkpoint loses."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from synthmed import api
from synthmed.config import resolve_config
from synthmed.evaluation.privacy.memorization import calibrate_copy_threshold
from synthmed.models.wgan import GANModel
from synthmed.training.selection import CheckpointSelector, Reference, near_copy_p_value
from tests.training.test_training import tiny_config


class FlatExtractor:
    """Pixels as features: enough to tell a shifted sample and a copied one apart."""

    def embed(self, images) -> torch.Tensor:
        return torch.as_tensor(np.asarray(images), dtype=torch.float32).flatten(1)


class FixedGenerator(nn.Module):
    """A 'generator' that returns planted images (label channel empty)."""

    def __init__(self, images01: torch.Tensor) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        label = -torch.ones_like(images01)
        self.register_buffer("pairs", torch.cat([images01 * 2 - 1, label], dim=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.pairs[: len(z)]


@dataclass
class Inputs:
    z: torch.Tensor
    classes: None = None
    condition: None = None


def _images(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.5 + 0.1 * torch.randn(n, 1, 8, 8, generator=g) + shift).clamp(0, 1)


def test_selects_the_better_checkpoint_and_refuses_the_copying_one(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    train, val = _images(200, 0), _images(200, 1)
    ext = FlatExtractor()
    train_feats = ext.embed(train).numpy()
    threshold = calibrate_copy_threshold(train_feats, ext.embed(val).numpy(), 0.05)
    ref = Reference(ext, ext.embed(val), train_feats, threshold)
    overrides = ["train.select.every=1", "train.select.n=64", "train.select.quantile=0.05"]
    cfg = resolve_config({"name": "t"}, preset="demo-gan", overrides=overrides)
    selector = CheckpointSelector(cfg, ref, Inputs(torch.zeros(64, 4)), tmp_path)
    dims = {"image_channels": 1, "label_channels": 1, "spatial_size": (8, 8), "spatial_dims": 2}
    model = GANModel(FixedGenerator(train[:1]), None, latent_dim=4, **dims)
    saved: list[str] = []
    planted = {
        "shifted": _images(64, 2, shift=0.15),  # new images, but too bright: worse KID
        "good": _images(64, 3),  # new images from the real distribution
        "copying": train[:64],  # training images: the best KID of all, but copies
    }
    rows = {}
    for step, (name, images) in enumerate(planted.items(), start=1):
        save = lambda path, name=name: saved.append(name)  # noqa: E731
        rows[name] = selector.consider(model, FixedGenerator(images), 1, step, save)
    assert rows["copying"]["kid"] < rows["good"]["kid"] < rows["shifted"]["kid"]
    assert rows["copying"]["near_copy_rate"] == 1.0 and not rows["copying"]["eligible"]
    assert rows["good"]["eligible"] and rows["shifted"]["eligible"]
    assert saved == ["shifted", "good"]  # each new best is saved; the copying one never
    summary = json.loads((tmp_path / "selection.json").read_text())
    assert summary["best_step"] == 2 and summary["n_refused"] == 1
    with (tmp_path / "selection.csv").open() as fh:
        assert [r["best"] for r in csv.DictReader(fh)] == ["True", "True", "False"]


def test_near_copy_p_value() -> None:
    assert near_copy_p_value(0, 256, 0.01) == 1.0
    assert near_copy_p_value(3, 256, 0.01) > 0.1  # 2.56 expected from real-like samples
    assert near_copy_p_value(20, 256, 0.01) < 1e-6


def test_training_writes_curve_and_sampling_uses_best(tmp_path: Path) -> None:
    run = tmp_path / "run"
    extra = {
        "data.patches.per_image": "12",
        "train.select.every": "2",
        "train.select.n": "16",
        # a 4-step generator draws near-constant patches: with the default 1% quantile they
        # all count as near-copies of flat training patches; 0.99 lets the mechanics show
        "train.select.quantile": "0.99",
        "evaluate.encoder_steps": "5",
        "sample.n": "4",
    }
    api.train(tiny_config(4, **extra), run, quiet=True)
    with (run / "selection.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert all(np.isfinite(float(r["kid"])) for r in rows)
    assert (run / "checkpoints" / "best.pt").is_file()
    best_step = json.loads((run / "selection.json").read_text())["best_step"]
    assert torch.load(run / "checkpoints" / "best.pt", weights_only=True)["step"] == best_step
    out = api.sample(run, quiet=True)
    with (out / "manifest.csv").open() as fh:
        assert {r["checkpoint"] for r in csv.DictReader(fh)} == {"checkpoints/best.pt"}
    settings = ["evaluate.utility.steps=2", "evaluate.utility.val_every=1"]
    metrics = api.evaluate(run, overrides=settings, quiet=True)
    assert metrics["provenance"]["checkpoint"] == "checkpoints/best.pt"
    html = api.report(run).read_text()
    assert "Checkpoint selection" in html and f"step\n{best_step}" in html
