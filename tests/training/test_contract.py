"""A new generative family is one model + one method (+ a preset): a toy family without a
critic, registered here only, trains, resumes and samples through the shared machinery."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from synthmed import api
from synthmed.checkpoints import load_checkpoint
from synthmed.errors import InputError
from synthmed.models import MODELS
from synthmed.models.base import GenerativeModel
from synthmed.training.methods import StepContext, adam, method, real_batch_indices
from tests.training.test_training import tiny_config


class ToyPairs(GenerativeModel):
    """z -> image+label pairs through one linear layer; no critic."""

    kind = "toy-moments"

    def synthesize(self, z=None, classes=None, condition=None) -> torch.Tensor:
        flat = torch.tanh(self.generator(z))
        return flat.view(len(z), self.image_channels + self.label_channels, *self.spatial_size)


@MODELS.register("toy-moments")
def build_toy(*, image_channels, label_channels, spatial_size, latent_dim, **_) -> ToyPairs:
    size = tuple(spatial_size)
    out = (image_channels + label_channels) * int(torch.tensor(size).prod())
    return ToyPairs(
        nn.Linear(latent_dim, out),
        None,
        latent_dim=latent_dim,
        image_channels=image_channels,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=len(size),
    )


def _toy_optimizers(model, cfg, device):
    return {"g": adam(model.generator.parameters(), cfg.lr_g, cfg, device)}


@method("toy-moments", optimizers=_toy_optimizers, lr_of={"g": "lr_g"})
def toy_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """Match the batch mean and spread of real pairs (a moment-matching toy loss)."""
    real = ctx.data[real_batch_indices(ctx)]
    z = torch.randn(len(real), ctx.model.latent_dim, generator=ctx.rng).to(ctx.device)
    fake = ctx.model.synthesize(z)
    loss = (fake.mean(0) - real.mean(0)).pow(2).mean() + (fake.std(0) - real.std(0)).pow(2).mean()
    opt = ctx.optimizers["g"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.detach()}


TOY = {"model.name": "toy-moments", "train.method": "toy-moments", "sample.n": "3"}


def test_toy_family_trains_resumes_and_samples(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    api.train(tiny_config(3, **TOY), straight, quiet=True)
    api.train(tiny_config(2, **TOY), resumed, quiet=True)
    api.train(tiny_config(3, **TOY), resumed, resume=True, quiet=True)
    a, b = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (straight, resumed))
    assert "critic" not in a and set(a["optimizers"]) == {"g"}
    for part in ("generator", "generator_ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    folder = api.sample(straight, quiet=True)
    with (folder / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["toy-moments"] * 3
    assert {r["generator_weights"] for r in rows} == {"ema"}
    assert len(list((folder / "labels").iterdir())) == 3


def test_adversarial_method_needs_a_critic(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="critic"):
        api.train(tiny_config(1, **{**TOY, "train.method": "wgan_gp"}), tmp_path, quiet=True)
