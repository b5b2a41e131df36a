"""Training steps for label-map -> image translators (model kind ``translator``).

Each step draws a real batch of (image, label map) pairs, turns the label channels into a
one-hot condition (background first), generates the fake image once, updates the critic on
the detached fake and then the generator through the critic (frozen; PERFORMANCE.md).
Index draws and z come from ``ctx.rng``; generator dropout uses the global torch RNG, which the
loop seeds and checkpoints, so resume stays exact. Under torchrun the loop seeds it before each
step from (run seed, rank, step) (``training/ddp.py``, ``seed_global_rng``): each rank drops
its own units, reproducibly and exactly under resume.

Options (``train.options``):
    pix2pix: ``l1_weight`` (100, Isola 2017), ``gan_mode`` (``vanilla`` BCE | ``lsgan``).
    spade: ``fm_weight`` (10, Park 2019), ``l1_weight`` (0; Platscher 2021 used 10).

Under ``train.privacy`` the critic update is a DP-SGD step on ``[Poisson-sampled real pairs;
fakes]`` and the generator never reads a real image: its conditions are label maps of rows
drawn apart from the critic's batch (treated as public), and the L1 / feature-matching terms,
which compare with real images, default to 0 (``training/privacy.py``).
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
    private_real_rows,
    real_batch_indices,
    split_mean,
    sum_rows,
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


def row_critic_loss(logits: list[torch.Tensor], real: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-row critic loss ``(N,)`` of a private step, averaged over patches and scales:
    ``mode`` ``vanilla`` / ``lsgan`` against 1 for ``real`` rows and 0 otherwise, or ``hinge``
    (``relu(1 - D)`` for real rows, ``relu(1 + D)`` for fake)."""
    per_scale = []
    for logit in logits:
        logit = logit.float().flatten(1)
        target = real.to(logit.dtype)[:, None].expand_as(logit)
        if mode == "vanilla":
            loss = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
        elif mode == "lsgan":
            loss = (logit - target).pow(2)
        else:
            loss = torch.where(target > 0, F.relu(1 - logit), F.relu(1 + logit))
        per_scale.append(loss.mean(dim=1))
    return torch.stack(per_scale).mean(dim=0)


def private_critic_step(
    ctx: StepContext, fake_cond: torch.Tensor, fake: torch.Tensor, mode: str
) -> dict[str, torch.Tensor]:
    """One DP-SGD critic update on ``[Poisson real (c, x); (c_fake, G(c_fake))]`` in one pass.

    Returns detached means of the per-row loss on the real and on the fake rows.
    """
    image, cond = split_pairs(ctx.data[private_real_rows(ctx)], ctx.image_channels)
    cond = onehot_condition(cond)
    (real_in,) = critic_inputs(ctx, cond, image)
    (fake_in,) = critic_inputs(ctx, fake_cond, fake.detach())
    n = image.shape[0]
    c_in, x_in = (torch.cat([r, f.to(r.dtype)]) for r, f in zip(real_in, fake_in, strict=True))
    is_real = torch.arange(c_in.shape[0], device=c_in.device) < n
    critic = ctx.model.critic

    def loss():
        with ctx.autocast():
            rows = row_critic_loss(critic(c_in, x_in), is_real, mode)
        return sum_rows(rows), rows.detach()

    rows = ctx.private.step(loss)
    real_mean, fake_mean = split_mean(rows, n)
    return {"real": real_mean, "fake": fake_mean}


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


def _critic_logits(
    ctx: StepContext, cond: torch.Tensor, image: torch.Tensor, fake: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The critic's logits on the real and (detached) fake pairs of a non-private step; the
    real ones feed the ADA signal."""
    (real_in,) = critic_inputs(ctx, cond, image)
    (fake_in,) = critic_inputs(ctx, cond, fake.detach())
    with ctx.autocast():
        real_logits, fake_logits = ctx.model.critic(*real_in), ctx.model.critic(*fake_in)
    observe_real(ctx, real_logits[0])
    return real_logits, fake_logits


def _update(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@method("pix2pix", critic_steps=lambda cfg: 1)
def pix2pix_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """One critic and one generator update of pix2pix (Isola et al. 2017, Eq. 4).

    D: ``0.5 * (GAN(D(c, x), 1) + GAN(D(c, G(c)), 0))`` (halved, as in the paper);
    G: ``GAN(D(c, G(c)), 1) + l1_weight * |x - G(c)|_1``.

    Returns:
        Detached ``loss_d``, ``loss_g_adv``, ``loss_l1`` (not under DP, where the generator
        never sees a real image) and ``loss_g``.
    """
    gen, critic, opts = ctx.model.generator, ctx.model.critic, ctx.cfg.options
    private = ctx.private is not None
    l1_weight = float(opts.get("l1_weight", 0.0 if private else 100.0))
    mode = str(opts.get("gan_mode", "vanilla"))
    if mode not in GAN_MODES:
        raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {mode!r}")
    image, cond = translation_batch(ctx)
    if private:
        image = None  # the generator step uses the label maps only (treated as public)
    with ctx.autocast():
        fake = gen(cond)
    critic.requires_grad_(True)
    if private:  # D: 0.5 x (real + fake), from per-row losses
        means = private_critic_step(ctx, cond, fake, mode)
        loss_d = 0.5 * (means["real"] + means["fake"])
    else:
        real_logits, fake_logits = _critic_logits(ctx, cond, image, fake)
        loss_d = 0.5 * (gan_loss(real_logits, True, mode) + gan_loss(fake_logits, False, mode))
        _update(ctx.opt_d, loss_d)
    critic.requires_grad_(False)  # no critic grads during the generator step (PERFORMANCE.md)
    (fake_in,) = critic_inputs(ctx, cond, fake)
    with ctx.autocast():
        loss_adv = gan_loss(critic(*fake_in), True, mode)
    losses = {"loss_d": loss_d, "loss_g_adv": loss_adv}
    loss_g = loss_adv
    if image is not None:
        losses["loss_l1"] = loss_l1 = F.l1_loss(fake.float(), image.float())
        loss_g = loss_adv + l1_weight * loss_l1
    _update(ctx.opt_g, loss_g)
    critic.requires_grad_(True)
    return {k: v.detach() for k, v in (losses | {"loss_g": loss_g}).items()}


def _spade_generator_loss(ctx: StepContext, cond, fake, image, fm_weight, l1_weight) -> dict:
    """SPADE's generator losses; without ``image`` (DP) the adversarial term alone."""
    critic = ctx.model.critic
    if image is None:
        (fake_in,) = critic_inputs(ctx, cond, fake)
        with ctx.autocast():
            loss_adv = hinge_generator_loss(critic(*fake_in))
        return {"loss_g_adv": loss_adv, "loss_g": loss_adv}
    fake_in, real_in = critic_inputs(ctx, cond, fake, image)  # one draw: FM compares positions
    with ctx.autocast():
        fake_logits, fake_feats = critic.forward_with_features(*fake_in)
        with torch.no_grad():
            real_feats = critic.forward_with_features(*real_in)[1]
    loss_adv = hinge_generator_loss(fake_logits)
    loss_fm = feature_matching_loss(fake_feats, real_feats)
    loss_l1 = F.l1_loss(fake.float(), image.float())
    loss_g = loss_adv + fm_weight * loss_fm + l1_weight * loss_l1
    return {"loss_g_adv": loss_adv, "loss_fm": loss_fm, "loss_l1": loss_l1, "loss_g": loss_g}


@method("spade", critic_steps=lambda cfg: 1)
def spade_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """One critic and one generator update of SPADE (Park et al. 2019, hinge + feature matching).

    D: ``E[relu(1 - D(c, x))] + E[relu(1 + D(c, G(c, z)))]``; G: ``-E[D(c, G(c, z))] +
    fm_weight * FM + l1_weight * |x - G(c, z)|_1``, with FM the L1 between the critic's hidden
    activations on fake and real (re-computed after the D update). Park's VGG perceptual loss
    is left out (it needs pretrained natural-image weights and 3-channel 2D inputs). Under DP
    the generator loss is the adversarial term alone (FM and L1 read real images).

    Returns:
        Detached ``loss_d``, ``loss_d_real``, ``loss_d_fake``, ``loss_g_adv``, ``loss_fm``,
        ``loss_l1`` (these two not under DP) and ``loss_g``.
    """
    gen, critic, opts = ctx.model.generator, ctx.model.critic, ctx.cfg.options
    private = ctx.private is not None
    fm_weight = float(opts.get("fm_weight", 0.0 if private else 10.0))
    l1_weight = float(opts.get("l1_weight", 0.0))
    image, cond = translation_batch(ctx)
    z = latent(ctx, image.shape[0]) if ctx.model.latent_dim > 0 else None
    if private:
        image = None  # the generator step uses the label maps only (treated as public)
    with ctx.autocast():
        fake = gen(cond, z)
    critic.requires_grad_(True)
    if private:
        means = private_critic_step(ctx, cond, fake, "hinge")
        loss_d_real, loss_d_fake = means["real"], means["fake"]
    else:
        real_logits, fake_logits = _critic_logits(ctx, cond, image, fake)
        loss_d_real, loss_d_fake = hinge_critic_loss(real_logits, fake_logits)
    loss_d = loss_d_real + loss_d_fake
    if not private:
        _update(ctx.opt_d, loss_d)
    critic.requires_grad_(False)
    g_losses = _spade_generator_loss(ctx, cond, fake, image, fm_weight, l1_weight)
    _update(ctx.opt_g, g_losses["loss_g"])
    critic.requires_grad_(True)
    losses = {"loss_d": loss_d, "loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake}
    return {k: v.detach() for k, v in (losses | g_losses).items()}
