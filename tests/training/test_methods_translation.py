"""pix2pix and SPADE training steps: one step moves G and D, losses finite, seeds reproduce."""

from __future__ import annotations

import contextlib

import pytest
import torch

from synthmed.config.schema import TrainConfig
from synthmed.models import pix2pix, spade  # noqa: F401  (register the models)
from synthmed.models.registry import MODELS
from synthmed.training import methods_translation  # noqa: F401  (registers the methods)
from synthmed.training.methods import METHODS, StepContext

PIX2PIX_KEYS = {"loss_d", "loss_g_adv", "loss_l1", "loss_g"}
SPADE_KEYS = {"loss_d", "loss_d_real", "loss_d_fake", "loss_g_adv", "loss_fm", "loss_l1", "loss_g"}


def tiny_pairs(seed: int = 0) -> torch.Tensor:
    """(4, 1 + 2, 32, 32): an image in [-1, 1] and two label channels at -1/+1."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(4, 1, 32, 32, generator=gen) * 2 - 1
    classes = torch.randint(0, 3, (4, 32, 32), generator=gen)
    labels = torch.stack([(classes == k).float() * 2 - 1 for k in (1, 2)], dim=1)
    return torch.cat([image, labels], dim=1)


def make_context(model_name: str, method: str, model_options=None, options=None) -> StepContext:
    """Build the context as ``training/loop.py`` does, on CPU, fp32."""
    torch.manual_seed(0)
    model = MODELS.build(
        model_name,
        image_channels=1,
        label_channels=2,
        spatial_size=(32, 32),
        spatial_dims=2,
        base_channels=4,
        **(model_options or {}),
    )
    cfg = TrainConfig(method=method, batch_size=2, lr_g=2e-4, lr_d=2e-4, options=options or {})
    opt_g = torch.optim.Adam(model.generator.parameters(), cfg.lr_g, cfg.betas)
    opt_d = torch.optim.Adam(model.critic.parameters(), cfg.lr_d, cfg.betas)
    rng = torch.Generator().manual_seed(cfg.seed)
    device = torch.device("cpu")
    return StepContext(
        model,
        opt_g,
        opt_d,
        tiny_pairs(),
        rng,
        cfg,
        device,
        contextlib.nullcontext,
        image_channels=1,
    )


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if v.is_floating_point()}


def changed(before: dict[str, torch.Tensor], net: torch.nn.Module) -> bool:
    after = net.state_dict()
    return any(not torch.equal(v, after[k]) for k, v in before.items())


def test_registry_names() -> None:
    assert "pix2pix" in METHODS and "spade" in METHODS
    assert "pix2pix" in MODELS and "spade" in MODELS


@pytest.mark.parametrize(
    ("model_name", "method", "model_options", "options", "keys"),
    [
        ("pix2pix", "pix2pix", {}, {}, PIX2PIX_KEYS),
        ("pix2pix", "pix2pix", {"norm": "batch"}, {"gan_mode": "lsgan"}, PIX2PIX_KEYS),
        ("spade", "spade", {}, {}, SPADE_KEYS),
        ("spade", "spade", {"latent_dim": 8}, {"l1_weight": 10.0}, SPADE_KEYS),
    ],
)
def test_one_step_changes_weights_and_losses_are_finite(
    model_name: str, method: str, model_options: dict, options: dict, keys: set
) -> None:
    ctx = make_context(model_name, method, model_options, options)
    g0, d0 = snapshot(ctx.model.generator), snapshot(ctx.model.critic)
    losses = METHODS.get(method)(ctx)
    assert set(losses) == keys
    assert all(v.dim() == 0 and torch.isfinite(v) and not v.requires_grad for v in losses.values())
    assert changed(g0, ctx.model.generator) and changed(d0, ctx.model.critic)
    assert all(p.requires_grad for p in ctx.model.critic.parameters())  # D unfrozen again


def test_pix2pix_l1_weight_scales_the_generator_loss() -> None:
    losses = METHODS.get("pix2pix")(make_context("pix2pix", "pix2pix", options={"l1_weight": 3}))
    expected = losses["loss_g_adv"] + 3 * losses["loss_l1"]
    assert torch.allclose(losses["loss_g"], expected)


@pytest.mark.parametrize("name", ["pix2pix", "spade"])
def test_steps_are_reproducible_from_the_seeds(name: str) -> None:
    first = METHODS.get(name)(make_context(name, name))
    second = METHODS.get(name)(make_context(name, name))
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_unknown_gan_mode_is_rejected() -> None:
    ctx = make_context("pix2pix", "pix2pix", options={"gan_mode": "wasserstein"})
    with pytest.raises(ValueError, match="gan_mode"):
        METHODS.get("pix2pix")(ctx)


def test_critic_inputs_move_condition_and_image_together():
    """DiffAugment on a translator's critic input: one draw for condition and image (and for
    real and fake together), colour on the image only."""
    from synthmed.training.diffaugment import CriticAugment
    from synthmed.training.methods import StepContext
    from synthmed.training.methods_translation import critic_inputs

    g = torch.Generator().manual_seed(0)
    cond = (torch.rand(6, 2, 16, 16, generator=g) > 0.5).float()
    image = cond[:, 1:] * 2 - 1  # image equals the condition's foreground channel
    aug = CriticAugment(["translation", "cutout", "color"], torch.Generator().manual_seed(1))
    ctx = StepContext(*[None] * 4, rng=aug.rng, cfg=None, device=None, autocast=None)
    ctx.augment = aug
    (c1, i1), (c2, i2) = critic_inputs(ctx, cond, image, image.clone())
    assert torch.equal(c1, c2) and torch.equal(i1, i2)
    assert set(c1.unique().tolist()) <= {0.0, 1.0}  # condition stays one-hot valued
    fg = (c1[:, 1:] > 0).float()
    assert not torch.equal(c1, cond)  # something moved
    # colour is a positive affine map per sample, so wherever condition and image still line
    # up, the image's foreground stays brighter than its background (cut-out pixels are 0 in
    # every condition channel and left out)
    for n in range(6):
        inside, outside = i1[n][fg[n] > 0], i1[n][(fg[n] == 0) & (c1[n].sum(0, keepdim=True) > 0)]
        if len(inside) and len(outside):
            assert inside.min() > outside.max()
