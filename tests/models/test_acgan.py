"""Tests for the AC-GAN networks (Odena 2017) and their registry entry."""

from __future__ import annotations

import pytest
import torch

from synthmed.models.acgan import ACGANModel, build_acgan
from synthmed.models.registry import MODELS


def _build(size=(16, 16), label_channels: int = 1, num_classes: int | None = 3) -> ACGANModel:
    torch.manual_seed(0)
    return MODELS.build(
        "acgan",
        image_channels=1,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=len(size),
        latent_dim=8,
        base_channels=4,
        num_classes=num_classes,
    )


@pytest.mark.parametrize("size", [(16, 16), (8, 8, 8)])
@pytest.mark.parametrize("label_channels", [0, 1])
def test_shapes_2d_3d(size: tuple[int, ...], label_channels: int) -> None:
    gan = _build(size, label_channels)
    assert (gan.kind, gan.num_classes) == ("class_pair", 3)
    out = gan.generate(torch.randn(4, 8), torch.tensor([0, 1, 2, 1]))
    assert out.shape == (4, 1 + label_channels, *size)
    assert out.min() >= -1 and out.max() <= 1
    adv, aux = gan.critic(out)
    assert adv.shape == (4,) and aux.shape == (4, 3)


def test_class_changes_the_sample() -> None:
    gan = _build().eval()
    z = torch.randn(1, 8).repeat(2, 1)
    a, b = gan.generate(z, torch.tensor([0, 2]))
    assert not torch.allclose(a, b)


def test_num_classes_is_required() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        _build(num_classes=None)
    with pytest.raises(ValueError, match="num_classes"):
        build_acgan(image_channels=1, label_channels=1, spatial_size=(16, 16))
    assert "acgan" in MODELS.names()
