"""Training steps for label-map -> image translators (model kind ``translator``).

Each step draws a real batch of (image, label map) pairs, turns the label channels into a
one-hot condition (background first), generates the fake image once, updates the critic on
the detached fake and then the generator through the critic (frozen; PERFORMANCE.md).
Index draws and z come from ``ctx.rng``; generator dropout uses the global torch RNG, which the
loop seeds and checkpoints, so resume stays exact.

Options (``train.options``):
    pix2pix: ``l1_weight`` (100, Isola 2017), ``gan_mode`` (``vanilla`` BCE | ``lsgan``).
    spade: ``fm_weight`` (10, Park 2019), ``l1_weight`` (0; Platscher 2021 used 10).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synthmed.data.pairs import onehot_condition, split_pairs
from synthmed.training.methods import (
    StepContext,
    latent,
    method,
    observe_real,
    real_batch_indices,
)

GAN_MODES = ("vanilla", "lsgan")


def translation_batch(ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
    """A random real batch as ``(image (B, C, *S) in [-1, 1], condition (B, K, *S) in {0, 1})``."""
    rows = ctx.data[real_batch_indices(ctx)]
    image, label = split_pairs(rows, ctx.image_channels)
    return image, onehot_condition(label)


def critic_inputs(
    ctx: StepContext, cond: torch.Tensor, *images: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(condition, image)`` as the critic sees them: with DiffAugment on, one geometric draw
    moves condition and image together (colour on the image only), and that same draw is
    applied to every image given (real and fake for feature matching)."""
    aug = ctx.augment
    if aug is None or not aug.enabled:
        return [(cond, image) for image in images]
    c = images[0].shape[1]
    stacked = aug.same([torch.cat([image, cond.to(image.dtype)], dim=1) for image in images], c)
    return [(x[:, c:], x[:, :c]) for x in stacked]


def gan_loss(logits: list[torch.Tensor], real: bool, mode: str = "vanilla") -> torch.Tensor:
    """Mean over scales of BCE-with-logits (``vanilla``, Goodfellow 2014) or least squares
    (``lsgan``, Mao 2017) of every patch logit against 1 (``real``) or 0."""
    if mode not in GAN_MODES:
        raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {mode!r}")
    losses = []
    for logit in logits:
        logit = logit.float()
        target = torch.full_like(logit, 1.0 if real else 0.0)
        if mode == "vanilla":
            losses.append(F.binary_cross_entropy_with_logits(logit, target))
        else:
            losses.append(F.mse_loss(logit, target))
    return torch.stack(losses).mean()


def hinge_critic_loss(
    real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hinge loss (Lim & Ye 2017; Park 2019): ``(E[relu(1 - D(real))], E[relu(1 + D(fake))])``,
    each averaged over scales."""
    real = torch.stack([F.relu(1 - r.float()).mean() for r in real_logits]).mean()
    fake = torch.stack([F.relu(1 + f.float()).mean() for f in fake_logits]).mean()
    return real, fake


def hinge_generator_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """``-E[D(fake)]`` averaged over scales (Park 2019)."""
    return -torch.stack([f.float().mean() for f in fake_logits]).mean()


def feature_matching_loss(
    fake_features: list[list[torch.Tensor]], real_features: list[list[torch.Tensor]]
) -> torch.Tensor:
    """L1 between critic activations on fake and (detached) real inputs: summed over layers,
    averaged over scales (pix2pixHD, Wang et al. 2018; Park 2019)."""
    per_scale = [
        torch.stack([F.l1_loss(f.float(), r.detach().float()) for f, r in zip(fs, rs, strict=True)])
        for fs, rs in zip(fake_features, real_features, strict=True)
    ]
    return torch.stack([layers.sum() for layers in per_scale]).mean()


def _update(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@method("pix2pix")
def pix2pix_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """One critic and one generator update of pix2pix (Isola et al. 2017, Eq. 4).

    D: ``0.5 * (GAN(D(c, x), 1) + GAN(D(c, G(c)), 0))`` (halved, as in the paper);
    G: ``GAN(D(c, G(c)), 1) + l1_weight * |x - G(c)|_1``.

    Returns:
        Detached ``loss_d``, ``loss_g_adv``, ``loss_l1`` and ``loss_g``.
    """
    gen, critic, opts = ctx.model.generator, ctx.model.critic, ctx.cfg.options
    l1_weight = float(opts.get("l1_weight", 100.0))
    mode = str(opts.get("gan_mode", "vanilla"))
    image, cond = translation_batch(ctx)
    with ctx.autocast():
        fake = gen(cond)
    critic.requires_grad_(True)
    (real_in,) = critic_inputs(ctx, cond, image)
    (fake_in,) = critic_inputs(ctx, cond, fake.detach())
    with ctx.autocast():
        real_logits, fake_logits = critic(*real_in), critic(*fake_in)
    observe_real(ctx, real_logits[0])
    loss_d = 0.5 * (gan_loss(real_logits, True, mode) + gan_loss(fake_logits, False, mode))
    _update(ctx.opt_d, loss_d)
    critic.requires_grad_(False)  # no critic grads during the generator step (PERFORMANCE.md)
    (fake_in,) = critic_inputs(ctx, cond, fake)
    with ctx.autocast():
        loss_adv = gan_loss(critic(*fake_in), True, mode)
    loss_l1 = F.l1_loss(fake.float(), image.float())
    loss_g = loss_adv + l1_weight * loss_l1
    _update(ctx.opt_g, loss_g)
    critic.requires_grad_(True)
    return {
        "loss_d": loss_d.detach(),
        "loss_g_adv": loss_adv.detach(),
        "loss_l1": loss_l1.detach(),
        "loss_g": loss_g.detach(),
    }


@method("spade")
def spade_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """One critic and one generator update of SPADE (Park et al. 2019, hinge + feature matching).

    D: ``E[relu(1 - D(c, x))] + E[relu(1 + D(c, G(c, z)))]``; G: ``-E[D(c, G(c, z))] +
    fm_weight * FM + l1_weight * |x - G(c, z)|_1``, with FM the L1 between the critic's hidden
    activations on fake and real (re-computed after the D update). Park's VGG perceptual loss
    is left out (it needs pretrained natural-image weights and 3-channel 2D inputs).

    Returns:
        Detached ``loss_d``, ``loss_d_real``, ``loss_d_fake``, ``loss_g_adv``, ``loss_fm``,
        ``loss_l1`` and ``loss_g``.
    """
    gen, critic, opts = ctx.model.generator, ctx.model.critic, ctx.cfg.options
    fm_weight = float(opts.get("fm_weight", 10.0))
    l1_weight = float(opts.get("l1_weight", 0.0))
    image, cond = translation_batch(ctx)
    z = latent(ctx, image.shape[0]) if ctx.model.latent_dim > 0 else None
    with ctx.autocast():
        fake = gen(cond, z)
    critic.requires_grad_(True)
    (real_in,) = critic_inputs(ctx, cond, image)
    (fake_in,) = critic_inputs(ctx, cond, fake.detach())
    with ctx.autocast():
        real_logits, fake_logits = critic(*real_in), critic(*fake_in)
    observe_real(ctx, real_logits[0])
    loss_d_real, loss_d_fake = hinge_critic_loss(real_logits, fake_logits)
    loss_d = loss_d_real + loss_d_fake
    _update(ctx.opt_d, loss_d)
    critic.requires_grad_(False)
    fake_in, real_in = critic_inputs(ctx, cond, fake, image)  # one draw: FM compares positions
    with ctx.autocast():
        fake_logits, fake_feats = critic.forward_with_features(*fake_in)
        with torch.no_grad():
            real_feats = critic.forward_with_features(*real_in)[1]
    loss_adv = hinge_generator_loss(fake_logits)
    loss_fm = feature_matching_loss(fake_feats, real_feats)
    loss_l1 = F.l1_loss(fake.float(), image.float())
    loss_g = loss_adv + fm_weight * loss_fm + l1_weight * loss_l1
    _update(ctx.opt_g, loss_g)
    critic.requires_grad_(True)
    losses = {"loss_d": loss_d, "loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake}
    losses |= {"loss_g_adv": loss_adv, "loss_fm": loss_fm, "loss_l1": loss_l1, "loss_g": loss_g}
    return {k: v.detach() for k, v in losses.items()}
