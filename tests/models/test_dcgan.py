"""Tests for the DCGAN pair networks (Radford 2016; Kossen 2021 options) and their registry."""

from __future__ import annotations

import pytest
import torch

from synthmed.models.dcgan import DCGANDiscriminator, MinibatchDiscrimination, build_dcgan
from synthmed.models.registry import MODELS
from synthmed.models.wgan import GANModel, PairGenerator
from tests.models.tiny import tiny_model

CASES = [(2, (16, 16)), (3, (8, 8, 8))]


def _build(size=(16, 16), label_channels: int = 1, **options) -> GANModel:
    return tiny_model("dcgan", size, label_channels, **options)


@pytest.mark.parametrize(("spatial_dims", "size"), CASES)
@pytest.mark.parametrize("label_channels", [0, 1, 2])
def test_shapes_2d_3d_and_image_only(
    spatial_dims: int, size: tuple[int, ...], label_channels: int
) -> None:
    gan = _build(size, label_channels)
    assert gan.kind == "pair" and isinstance(gan.generator, PairGenerator)
    pairs = gan.generate(torch.randn(2, 8))
    assert pairs.shape == (2, 1 + label_channels, *size)
    assert pairs.min() >= -1 and pairs.max() <= 1
    logits, feats = gan.critic(pairs, return_features=True)
    assert logits.shape == (2,) and feats.shape == (2, gan.critic.feature_dim)
    assert torch.equal(gan.critic(pairs), logits)


def test_batchnorm_everywhere_but_the_first_layer() -> None:
    disc = DCGANDiscriminator(2, (32, 32), base_channels=4)
    kinds = [type(m).__name__ for m in disc.features]
    assert kinds[:2] == ["Conv2d", "LeakyReLU"]
    assert kinds.count("BatchNorm2d") == disc.n_down - 1


def test_minibatch_discrimination_widens_the_logit_input() -> None:
    plain = _build()
    mbd = _build(minibatch_discrimination=True, mbd_kernels=6, mbd_dim=3)
    width = plain.critic.feature_dim
    assert plain.critic.logit.in_features == width
    assert mbd.critic.logit.in_features == width + 6
    x = torch.rand(4, 2, 16, 16) * 2 - 1
    logits = mbd.critic(x)
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert mbd.critic.mbd.T.grad is not None and mbd.critic.mbd.T.grad.abs().sum() > 0


def test_minibatch_features_count_similar_other_samples() -> None:
    layer = MinibatchDiscrimination(5, num_kernels=3, kernel_dim=2)
    same = layer(torch.ones(4, 5))
    assert same.shape == (4, 8)
    assert torch.allclose(same[:, 5:], torch.full((4, 3), 3.0))  # 3 identical others
    assert torch.allclose(layer(torch.randn(1, 5))[:, 5:], torch.zeros(1, 3))


def test_registry_and_bad_arguments() -> None:
    assert "dcgan" in MODELS.names() and MODELS.get("dcgan") is build_dcgan
    with pytest.raises(TypeError):
        _build(lr=1.0)
    with pytest.raises(ValueError, match="label_channels"):
        _build(label_channels=-1)
