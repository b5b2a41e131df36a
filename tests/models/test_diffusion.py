"""Diffusion families on MONAI: shapes for each task in 2D and 3D, the loss falls, seeded
sampling is batch-independent, the mask conditions the image, guidance at scale 0 is the
unconditional path."""

from __future__ import annotations

import pytest
import torch

from synthmed.models.base import synthesize_pairs
from synthmed.models.registry import MODELS

TINY = {"channels": [4, 8], "attention": [False, False], "sample_steps": 3}


def build(name: str, size=(8, 8), label_channels: int = 1, **options):
    torch.manual_seed(0)
    return MODELS.build(
        name,
        image_channels=1,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=len(size),
        num_classes=options.pop("num_classes", 0),
        **{**TINY, **options},
    )


def onehot(n: int, size, k: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(k, (n, *size), generator=g)
    return torch.nn.functional.one_hot(labels, k).movedim(-1, 1).float()


def z_for(model, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("size", [(8, 8), (8, 8, 8)])
@pytest.mark.parametrize(
    "name,label_channels",
    [
        ("diffusion_pairs", 1),
        ("diffusion_class", 0),
        ("diffusion_translator", 2),
        ("diffusion_mask", 1),
    ],
)
def test_each_task_synthesizes_the_pair_layout(name, label_channels, size) -> None:
    model = build(name, size, label_channels, num_classes=3 if name == "diffusion_class" else 0)
    assert model.critic is None
    n = 2
    classes = torch.tensor([0, 2]) if model.needs_classes else None
    cond = onehot(n, size, label_channels + 1) if model.needs_condition else None
    with torch.no_grad():
        out = synthesize_pairs(model, z_for(model, n), classes, cond)
    assert out.shape == (n, 1 + label_channels, *size)
    assert out.min() >= -1 and out.max() <= 1
    if model.needs_condition:  # the map that made the image is its label
        assert torch.equal(out[:, 1:], cond[:, 1:] * 2 - 1)
    if model.label_only:
        assert torch.all(out[:, :1] == -1)


@pytest.mark.parametrize("schedule", ["rflow", "ddpm"])
def test_training_steps_lower_the_loss_on_a_fixed_batch(schedule) -> None:
    model = build("diffusion_pairs", schedule=schedule)
    rows = torch.rand(8, 2, 8, 8) * 2 - 1

    before, after = loss_before_and_after(
        lambda: model.loss(rows, torch.Generator().manual_seed(1)), model.generator, steps=5
    )
    assert after < before


def loss_before_and_after(loss, net: torch.nn.Module, steps: int) -> tuple[float, float]:
    """``loss()`` before and after ``steps`` Adam steps (lr 1e-2) on ``net``'s parameters."""
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    before = loss().item()
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()
    return before, loss().item()


@pytest.mark.parametrize("name", ["diffusion_pairs", "diffusion_class"])
def test_same_seed_same_sample_whatever_the_batch(name) -> None:
    from synthmed.sampling.export import latents_for_seeds

    model = randomized(
        build(name, label_channels=1, num_classes=2 if name == "diffusion_class" else 0)
    )
    if model.needs_classes:
        model.configure_sampling(guidance_scale=2.0)
    seeds = [3, 4, 5, 6]
    classes = torch.tensor([1, 0, 1, 0]) if model.needs_classes else None
    with torch.no_grad():
        together = model.synthesize(latents_for_seeds(seeds, model.latent_dim), classes)
        alone = model.synthesize(
            latents_for_seeds(seeds[2:3], model.latent_dim),
            None if classes is None else classes[2:3],
        )
    torch.testing.assert_close(together[2:3], alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(together[0], together[1])


def randomized(model):
    """MONAI zero-initialises the U-Net's output convs (the prediction starts at 0 whatever
    the input); give those random weights so an untrained model depends on its inputs."""
    with torch.no_grad():
        for p in model.generator.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0, 0.1)
    return model


def test_the_mask_conditions_the_image() -> None:
    model = randomized(build("diffusion_translator", size=(16, 16), channels=[8, 8]))
    z = z_for(model, 1)
    cond = torch.zeros(1, 2, 16, 16)
    cond[:, 0] = 1
    moved = cond.clone()
    cond[:, 1, 2:6, 2:6], cond[:, 0, 2:6, 2:6] = 1, 0
    moved[:, 1, 10:14, 10:14], moved[:, 0, 10:14, 10:14] = 1, 0
    with torch.no_grad():
        a, b = model.synthesize(z, condition=cond), model.synthesize(z, condition=moved)
    diff = (a[:, 0] - b[:, 0]).abs()
    assert diff.max() > 1e-3, "moving the lesion must change the image"


def test_guidance_scale_zero_is_the_unconditional_path() -> None:
    model = randomized(build("diffusion_class", num_classes=3))
    z, classes = z_for(model, 2), torch.tensor([0, 1])
    model.configure_sampling(guidance_scale=0.0)
    with torch.no_grad():
        guided = model.synthesize(z, classes)
        model.configure_sampling(guidance_scale=1.0)
        unconditional = model.synthesize(z, torch.full((2,), model.num_classes))
        conditional = model.synthesize(z, classes)
    torch.testing.assert_close(guided, unconditional, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(guided, conditional)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="schedule"):
        build("diffusion_pairs", schedule="cosine")
    with pytest.raises(ValueError, match="divisible"):
        build("diffusion_pairs", size=(9, 9))
    with pytest.raises(ValueError, match="classes"):
        build("diffusion_class", num_classes=0)
    model = build("diffusion_pairs")
    with pytest.raises(ValueError, match="class-conditional"):
        model.configure_sampling(guidance_scale=2.0)
    with pytest.raises(ValueError, match="steps"):
        model.configure_sampling(steps=0)
    gan = MODELS.build(
        "wgan_gp", image_channels=1, label_channels=1, spatial_size=(16, 16), base_channels=4
    )
    with pytest.raises(ValueError, match="diffusion"):
        gan.configure_sampling(steps=10)


def test_a_memorizing_diffusion_model_is_flagged_by_the_audit() -> None:
    """Diffusion on a handful of images copies them (Carlini 2023; Dar 2024): 120 full-batch
    steps on 8 images make most samples near-copies, and GAN-Leaks separates members."""
    import numpy as np

    from synthmed.evaluation.privacy.audit import privacy_audit

    g = torch.Generator().manual_seed(0)

    def smooth(n: int) -> torch.Tensor:
        coarse = torch.randn(n, 1, 4, 4, generator=g)
        return torch.nn.functional.interpolate(coarse, size=(16, 16), mode="bilinear").tanh()

    train, holdout = smooth(8), smooth(8)
    model = build(
        "diffusion_pairs", (16, 16), 0, channels=[16, 32], attention=[False, False], sample_steps=10
    )
    opt = torch.optim.Adam(model.generator.parameters(), 3e-3)
    rng = torch.Generator().manual_seed(1)
    for _ in range(120):
        opt.zero_grad()
        model.loss(train.repeat(4, 1, 1, 1), rng).backward()
        opt.step()
    with torch.no_grad():
        samples = model.synthesize(z_for(model, 32, seed=5))

    def to01(x: torch.Tensor) -> np.ndarray:
        return ((x + 1) / 2).clamp(0, 1).numpy()

    audit = privacy_audit(to01(samples), to01(train), np.arange(8), to01(holdout))
    assert audit["pixel"]["fraction_flagged"] >= 0.5
    assert audit["pixel"]["membership"]["gan_leaks"]["auc"] >= 0.9
