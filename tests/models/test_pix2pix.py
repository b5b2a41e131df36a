"""pix2pix translator: U-Net shapes and depth, PatchGAN, determinism, label sensitivity."""

from __future__ import annotations

import pytest
import torch

from synthmed.models import pix2pix  # noqa: F401  (registers "pix2pix")
from synthmed.models.pix2pix import Pix2PixGenerator, unet_depth
from synthmed.models.registry import MODELS
from synthmed.models.translator import MultiScalePatchCritic, TranslatorModel

CASES = [(2, (32, 32), 1), (2, (32, 32), 3), (3, (16, 16, 16), 1)]


def build(spatial_dims: int = 2, size=(32, 32), image_channels: int = 1, **options):
    torch.manual_seed(0)
    return MODELS.build(
        "pix2pix",
        image_channels=image_channels,
        label_channels=2,
        spatial_size=size,
        spatial_dims=spatial_dims,
        latent_dim=128,  # the loop always passes these two; pix2pix ignores them
        base_channels=4,
        kernel_size=5,
        **options,
    )


def disc_condition(size: tuple[int, ...], shift: int = 0, n: int = 2) -> torch.Tensor:
    """One-hot (n, 3, *size): background, a disc (class 1) and a box (class 2)."""
    grids = torch.meshgrid(*[torch.arange(s) for s in size], indexing="ij")
    centre = [s // 2 + shift for s in size]
    disc = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= (size[0] // 5) ** 2
    box = torch.zeros(size, dtype=torch.bool)
    box[(slice(1, 4),) * len(size)] = True
    cond = torch.stack([~(disc | box), disc & ~box, box]).float()
    return cond.expand(n, *cond.shape).clone()


@pytest.mark.parametrize(("spatial_dims", "size", "channels"), CASES)
def test_shapes_and_tanh_range(spatial_dims: int, size: tuple, channels: int) -> None:
    model = build(spatial_dims, size, channels)
    assert isinstance(model, TranslatorModel) and model.kind == "translator"
    assert model.latent_dim == 0 and model.condition_channels == 3
    cond = disc_condition(size)
    out = model.generator(cond * 50)  # large inputs push towards saturation
    assert out.shape == (2, channels, *size)
    assert out.min() >= -1 and out.max() <= 1
    logits = model.critic(cond, out)
    assert isinstance(logits, list) and len(logits) == 1
    assert logits[0].shape[:2] == (2, 1) and logits[0].dim() == 2 + spatial_dims


@pytest.mark.parametrize(
    ("size", "depth"), [((256, 256), 8), ((32, 32), 5), ((96, 96), 5), ((16,) * 3, 4)]
)
def test_unet_depth_reaches_a_small_bottleneck(size: tuple, depth: int) -> None:
    assert unet_depth(size) == depth


def test_unet_depth_rejects_odd_sizes() -> None:
    with pytest.raises(ValueError, match="U-Net levels"):
        unet_depth((30, 30))


def test_eval_is_deterministic_and_dropout_is_the_noise() -> None:
    model = build()
    cond = disc_condition((32, 32))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.generator(cond), model.generator(cond))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model.generator(cond), model.generator(cond))
    assert any(isinstance(m, torch.nn.Dropout) for m in model.generator.modules())


def test_output_follows_the_label_map() -> None:
    model = build().eval()
    with torch.no_grad():
        a = model.generator(disc_condition((32, 32)))
        b = model.generator(disc_condition((32, 32), shift=5))
    assert not torch.allclose(a, b)


def test_batch_norm_option_builds_and_runs() -> None:
    model = build(norm="batch")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(isinstance(m, torch.nn.InstanceNorm2d) for m in model.modules())
    out = model.generator(disc_condition((32, 32)))
    assert out.shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="norm"):
        build(norm="group")


def test_patchgan_receptive_field_is_70() -> None:
    torch.manual_seed(0)
    critic = MultiScalePatchCritic(2, (96, 96), base_channels=2, n_layers=3, norm="batch").eval()
    x = torch.randn(1, 1, 96, 96, requires_grad=True)
    logit = critic(x[:, :1], x)[0]  # BatchNorm in eval is local, unlike InstanceNorm
    logit[0, 0, logit.shape[2] // 2, logit.shape[3] // 2].backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero()
    assert int(rows.max() - rows.min() + 1) == 70


def test_critic_trims_layers_for_small_inputs() -> None:
    assert MultiScalePatchCritic(4, (16, 16), base_channels=2).layers_per_scale == [2]
    with pytest.raises(ValueError, match="too small"):
        MultiScalePatchCritic(4, (4, 4), base_channels=2)


def test_generator_ignores_z_and_checks_size() -> None:
    gen = Pix2PixGenerator(3, 1, (32, 32), base_channels=4).eval()
    cond = disc_condition((32, 32))
    assert torch.equal(gen(cond), gen(cond, torch.randn(2, 8)))
    with pytest.raises(ValueError, match="entries"):
        Pix2PixGenerator(3, 1, (32, 32, 32), spatial_dims=2)
