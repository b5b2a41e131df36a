"""One-step and toy-learning tests for the ``dcgan``/``acgan`` methods and the mask GAN."""

from __future__ import annotations

import contextlib

import pytest
import torch

import synthmed.models.acgan  # noqa: F401  (registers "acgan")
import synthmed.models.dcgan  # noqa: F401  (registers "dcgan")
import synthmed.models.mask_gan  # noqa: F401  (registers "mask_gan")
import synthmed.training.methods_gan  # noqa: F401  (registers the methods)
from synthmed.config.schema import TrainConfig
from synthmed.models.registry import MODELS
from synthmed.training.methods import METHODS, StepContext


def _pairs(n: int = 8, image_channels: int = 1, label_channels: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(n, image_channels, 16, 16, generator=gen) * 2 - 1
    label = torch.where(torch.rand(n, label_channels, 16, 16, generator=gen) > 0.7, 1.0, -1.0)
    return torch.cat([image, label], dim=1)


def _ctx(
    model, data: torch.Tensor, classes=None, lr: float = 1e-3, batch: int = 4, **options
) -> StepContext:
    cfg = TrainConfig(batch_size=batch, n_critic=1, device="cpu", options=options)
    return StepContext(
        model,
        torch.optim.Adam(model.generator.parameters(), lr, (0.5, 0.999)),
        torch.optim.Adam(model.critic.parameters(), lr, (0.5, 0.999)),
        data,
        torch.Generator().manual_seed(1),
        cfg,
        torch.device("cpu"),
        contextlib.nullcontext,
        classes=classes,
        image_channels=1,
    )


def _model(name: str, label_channels: int = 1, **options):
    torch.manual_seed(0)
    return MODELS.build(
        name,
        image_channels=1,
        label_channels=label_channels,
        spatial_size=(16, 16),
        latent_dim=8,
        base_channels=4,
        **options,
    )


def _snapshot(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def _step_changes_both(ctx: StepContext) -> dict[str, torch.Tensor]:
    g0, d0 = _snapshot(ctx.model.generator), _snapshot(ctx.model.critic)
    out = METHODS.get(ctx.cfg.method)(ctx)
    assert all(torch.isfinite(v) and not v.requires_grad for v in out.values())
    for before, net in ((g0, ctx.model.generator), (d0, ctx.model.critic)):
        assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True))
    assert all(p.requires_grad for p in ctx.model.critic.parameters())
    return out


@pytest.mark.parametrize(
    ("model_opts", "method_opts", "label_channels"),
    [
        ({}, {}, 1),
        ({"minibatch_discrimination": True}, {"feature_matching": True}, 1),
        ({}, {"label_smoothing": 0.1}, 0),
    ],
)
def test_dcgan_step(model_opts: dict, method_opts: dict, label_channels: int) -> None:
    ctx = _ctx(_model("dcgan", label_channels, **model_opts), _pairs(8, 1, label_channels))
    ctx.cfg = ctx.cfg.model_copy(update={"method": "dcgan", "options": method_opts})
    out = _step_changes_both(ctx)
    assert list(out) == ["loss_d", "loss_g", "d_real", "d_fake"]


def test_acgan_step_and_missing_classes() -> None:
    ctx = _ctx(_model("acgan", num_classes=3), _pairs(), classes=torch.arange(8) % 3)
    ctx.cfg = ctx.cfg.model_copy(update={"method": "acgan"})
    out = _step_changes_both(ctx)
    assert {"loss_d", "loss_g", "aux_acc_real"} <= set(out)
    assert 0.0 <= float(out["aux_acc_real"]) <= 1.0
    ctx.classes = None
    with pytest.raises(ValueError, match="classes"):
        METHODS.get("acgan")(ctx)


def test_mask_gan_trains_with_wgan_gp_on_label_channels() -> None:
    ctx = _ctx(_model("mask_gan", label_channels=2), _pairs(8, 1, 2))
    out = _step_changes_both(ctx)  # TrainConfig's default method is wgan_gp
    assert {"loss_d", "loss_g", "gp"} <= set(out)


def test_bad_label_smoothing_and_registry() -> None:
    ctx = _ctx(_model("dcgan"), _pairs(), label_smoothing=1.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        METHODS.get("dcgan")(ctx)
    assert {"dcgan", "acgan", "wgan_gp"} <= set(METHODS.names())
    assert {"dcgan", "acgan", "mask_gan"} <= set(MODELS.names())


def _dark_bright(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    classes = torch.randint(2, (n,), generator=gen)
    level = torch.where(classes == 1, 0.6, -0.6).view(n, 1, 1, 1)
    return level + 0.3 * torch.randn(n, 1, 16, 16, generator=gen), classes


def test_acgan_auxiliary_classifier_learns_dark_vs_bright() -> None:
    data, classes = _dark_bright(64, seed=0)
    torch.manual_seed(0)
    model = MODELS.build(
        "acgan",
        image_channels=1,
        label_channels=0,
        spatial_size=(16, 16),
        latent_dim=8,
        base_channels=4,
        num_classes=2,
    )
    fresh, fresh_classes = _dark_bright(64, seed=1)

    def accuracy() -> float:
        with torch.no_grad():
            _, aux = model.eval().critic(fresh)
        model.train()
        return (aux.argmax(dim=1) == fresh_classes).float().mean().item()

    assert accuracy() < 0.8  # untrained: no better than chance here
    ctx = _ctx(model, data, classes=classes, lr=2e-3, batch=16)
    ctx.cfg = ctx.cfg.model_copy(update={"method": "acgan"})
    for _ in range(30):
        METHODS.get("acgan")(ctx)
    assert accuracy() > 0.8


def test_trainer_passes_num_classes_only_to_acgan() -> None:
    from synthmed.errors import InputError
    from synthmed.models.build import build_model

    kwargs = {"image_channels": 1, "label_channels": 1, "spatial_size": [16, 16]}
    kwargs |= {"spatial_dims": 2, "latent_dim": 8, "base_channels": 4, "kernel_size": 5}
    assert build_model("acgan", {**kwargs, "num_classes": 2}).num_classes == 2
    assert build_model("dcgan", {**kwargs, "num_classes": 2}).kind == "pair"
    assert build_model("mask_gan", {**kwargs, "num_classes": 2}).kind == "mask"
    with pytest.raises(InputError, match="num_classes"):
        build_model("acgan", kwargs)
