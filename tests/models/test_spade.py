"""SPADE translator: shapes, multi-scale critic, seeded determinism, label sensitivity."""

from __future__ import annotations

import pytest
import torch
from monai.networks.blocks.spade_norm import SPADE
from torch import nn

from synthmed.models import spade  # noqa: F401  (registers "spade")
from synthmed.models.registry import MODELS
from synthmed.models.spade import SpadeGenerator
from synthmed.models.translator import TranslatorModel
from tests.models.test_pix2pix import disc_condition

CASES = [(2, (32, 32), 1), (2, (32, 32), 3), (3, (16, 16, 16), 1)]


def build(spatial_dims: int = 2, size=(32, 32), image_channels: int = 1, latent_dim: int = 0):
    torch.manual_seed(0)
    return MODELS.build(
        "spade",
        image_channels=image_channels,
        label_channels=2,
        spatial_size=size,
        spatial_dims=spatial_dims,
        latent_dim=latent_dim,
        base_channels=4,
        kernel_size=3,
    )


@pytest.mark.parametrize(("spatial_dims", "size", "channels"), CASES)
def test_shapes_and_tanh_range(spatial_dims: int, size: tuple, channels: int) -> None:
    model = build(spatial_dims, size, channels)
    assert isinstance(model, TranslatorModel) and model.kind == "translator"
    cond = disc_condition(size)
    out = model.generator(cond * 50)
    assert out.shape == (2, channels, *size)
    assert out.min() >= -1 and out.max() <= 1
    logits, features = model.critic.forward_with_features(cond, out)
    assert len(logits) == len(features) == 2  # two scales
    assert all(lg.shape[:2] == (2, 1) and lg.dim() == 2 + spatial_dims for lg in logits)
    assert all(
        len(f) == n + 1 for f, n in zip(features, model.critic.layers_per_scale, strict=True)
    )


def test_generator_upsamples_from_a_small_grid_to_full_resolution() -> None:
    gen = SpadeGenerator(3, 1, (32, 32), base_channels=4)
    assert gen.start_size == (4, 4) and len(gen.blocks) == gen.n_up + 1 == 4


def test_modulation_maps_are_plain_convs() -> None:
    spades = [m for m in build().generator.modules() if isinstance(m, SPADE)]
    assert spades
    for layer in spades:  # MONAI's default would instance-normalise gamma and beta
        assert isinstance(layer.mlp_gamma, nn.Conv2d) and isinstance(layer.mlp_beta, nn.Conv2d)


def test_eval_is_deterministic_and_follows_the_label_map() -> None:
    model = build().eval()
    cond = disc_condition((32, 32))
    with torch.no_grad():
        a, b = model.generator(cond), model.generator(cond)
        moved = model.generator(disc_condition((32, 32), shift=5))
    assert torch.equal(a, b)
    assert not torch.allclose(a, moved)


def test_latent_mode_is_deterministic_given_a_seed() -> None:
    model = build(latent_dim=8).eval()
    cond = disc_condition((32, 32))

    def sample(seed: int) -> torch.Tensor:
        z = model.sample_latent(2, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return model.generate(cond, z)

    assert torch.equal(sample(1), sample(1))
    assert not torch.allclose(sample(1), sample(2))
    assert model.generator(cond).shape == (2, 1, 32, 32)  # z drawn when not given


def test_critic_is_spectrally_normalised_and_size_checked() -> None:
    critic = build().critic
    assert critic.layers_per_scale == [3, 2]
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    with pytest.raises(ValueError, match="too small"):
        MODELS.build("spade", image_channels=1, label_channels=1, spatial_size=(8, 8))
