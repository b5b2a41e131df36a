"""Tests for the Kossen-style WGAN-GP pair networks and their registry entries."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synthmed.losses import gradient_penalty, wasserstein_critic_loss, wasserstein_generator_loss
from synthmed.models import MODELS, GANModel, PairCritic, PairGenerator

CASES = [(2, (32, 32)), (2, (16, 16)), (3, (16, 16, 16))]
_SN_LAYERS = (nn.Conv2d, nn.Conv3d, nn.Linear)


def _build(name: str, spatial_dims: int = 2, size: tuple[int, ...] = (16, 16)) -> GANModel:
    torch.manual_seed(0)
    return MODELS.build(
        name,
        image_channels=1,
        label_channels=1,
        spatial_size=size,
        spatial_dims=spatial_dims,
        latent_dim=16,
        base_channels=8,
    )


def _top_singular_values(critic: nn.Module) -> list[float]:
    weights = [m.weight.detach() for m in critic.modules() if isinstance(m, _SN_LAYERS)]
    return [torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item() for w in weights]


@pytest.mark.parametrize(("spatial_dims", "size"), CASES)
def test_generator_shape_and_tanh_range(spatial_dims: int, size: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    gen = PairGenerator(16, 3, size, spatial_dims, base_channels=8)
    out = gen(torch.randn(2, 16) * 10)  # large z pushes activations towards saturation
    assert out.shape == (2, 3, *size)
    assert out.min() >= -1.0 and out.max() <= 1.0


@pytest.mark.parametrize(("spatial_dims", "size"), CASES)
def test_critic_gives_one_score_per_sample(spatial_dims: int, size: tuple[int, ...]) -> None:
    critic = PairCritic(2, size, spatial_dims, base_channels=8)
    assert critic(torch.randn(2, 2, *size)).shape == (2,)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())


@pytest.mark.parametrize(
    ("size", "n_up", "start"),
    [((64, 64), 4, (4, 4)), ((96, 96), 4, (6, 6)), ((32, 32), 3, (4, 4)), ((16,) * 3, 2, (4,) * 3)],
)
def test_generator_starts_from_small_grid(size: tuple[int, ...], n_up: int, start: tuple) -> None:
    gen = PairGenerator(4, 2, size, spatial_dims=len(size), base_channels=2)
    assert (gen.n_up, gen.start_size) == (n_up, start)


@pytest.mark.parametrize(
    ("size", "spatial_dims"), [((30, 30), 2), ((100, 100), 2), ((4, 4), 2), ((16, 16), 3)]
)
def test_bad_spatial_size_raises(size: tuple[int, ...], spatial_dims: int) -> None:
    with pytest.raises(ValueError, match="spatial_size"):
        PairGenerator(8, 2, size, spatial_dims, base_channels=4)
    with pytest.raises(ValueError, match="spatial_size"):
        PairCritic(2, size, spatial_dims, base_channels=4)


@pytest.mark.parametrize(("spatial_dims", "size"), [(2, (32, 32)), (3, (16, 16, 16))])
def test_spectral_norm_keeps_top_singular_value_near_one(
    spatial_dims: int, size: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    critic = PairCritic(2, size, spatial_dims, base_channels=8, spectral_norm=True).train()
    x = torch.randn(2, 2, *size)
    for _ in range(5):  # each train-mode forward runs one power iteration
        critic(x)
    sigmas = _top_singular_values(critic)
    assert len(sigmas) == critic.n_down + 1
    assert sigmas == pytest.approx([1.0] * len(sigmas), abs=0.05)
    plain = PairCritic(2, size, spatial_dims, base_channels=8, spectral_norm=False)
    assert any(abs(s - 1.0) > 0.2 for s in _top_singular_values(plain))


@pytest.mark.parametrize("name", ["wgan_gp", "wgan_gp_sn"])
def test_one_adam_step_updates_both_networks(name: str) -> None:
    gan = _build(name)
    real = torch.rand(2, 2, 16, 16) * 2 - 1
    z = gan.sample_latent(2, torch.Generator().manual_seed(1))
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=1e-3, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(gan.critic.parameters(), lr=1e-3, betas=(0.0, 0.9))
    g_before = [p.detach().clone() for p in gan.generator.parameters()]
    d_before = [p.detach().clone() for p in gan.critic.parameters()]

    fake = gan.generate(z).detach()
    gp = gradient_penalty(gan.critic, real, fake, generator=torch.Generator().manual_seed(2))
    d_loss = wasserstein_critic_loss(gan.critic(real), gan.critic(fake)) + 10.0 * gp
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()

    gan.critic.requires_grad_(False)
    g_loss = wasserstein_generator_loss(gan.critic(gan.generate(z)))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()

    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    assert any(
        not torch.equal(a, p) for a, p in zip(d_before, gan.critic.parameters(), strict=True)
    )
    assert any(
        not torch.equal(a, p) for a, p in zip(g_before, gan.generator.parameters(), strict=True)
    )


def test_registry_unknown_name_lists_valid_names() -> None:
    with pytest.raises(KeyError, match="wgan_gp, wgan_gp_sn"):
        MODELS.get("nope")
    assert {"wgan_gp", "wgan_gp_sn", "unet"} <= set(MODELS.names())


def test_builder_rejects_unknown_kwargs() -> None:
    with pytest.raises(TypeError):
        MODELS.build("wgan_gp", image_channels=1, label_channels=1, spatial_size=(16, 16), lr=1)


def test_variants_differ_only_in_spectral_norm() -> None:
    plain, sn = _build("wgan_gp"), _build("wgan_gp_sn")
    assert not plain.critic.spectral_norm and sn.critic.spectral_norm
    gen_shapes = [p.shape for p in plain.generator.parameters()]
    assert gen_shapes == [p.shape for p in sn.generator.parameters()]
    sn_layers = [m for m in sn.critic.modules() if isinstance(m, _SN_LAYERS)]
    assert sn_layers and all(hasattr(m, "parametrizations") for m in sn_layers)
    assert not any(hasattr(m, "parametrizations") for m in plain.critic.modules())
    sn_weights = [m.parametrizations.weight.original.shape for m in sn_layers]
    assert sn_weights == [
        m.weight.shape for m in plain.critic.modules() if isinstance(m, _SN_LAYERS)
    ]


def test_gan_model_metadata_latents_and_split() -> None:
    gan = _build("wgan_gp", spatial_dims=3, size=(16, 16, 16))
    assert (gan.latent_dim, gan.image_channels, gan.label_channels) == (16, 1, 1)
    assert (gan.spatial_size, gan.spatial_dims) == ((16, 16, 16), 3)
    z1 = gan.sample_latent(2, torch.Generator().manual_seed(3))
    z2 = gan.sample_latent(2, torch.Generator().manual_seed(3))
    assert z1.shape == (2, 16) and torch.equal(z1, z2)
    image, label = gan.split(gan.eval().generate(z1))
    assert image.shape == label.shape == (2, 1, 16, 16, 16)
