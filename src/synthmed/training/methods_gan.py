"""Non-saturating GAN methods: ``dcgan`` (Radford 2016) and ``acgan`` (Odena 2017).

Both use binary cross-entropy on logits (Goodfellow et al. 2014, non-saturating generator
loss). Settings come from ``train.options``:

* ``label_smoothing`` (float, default 0): one-sided label smoothing, real targets
  ``1 - label_smoothing`` in the discriminator loss (Salimans et al. 2016, Sec. 3.4).
* ``feature_matching`` (bool, default False; ``dcgan`` only): the generator matches the mean
  of the discriminator's last conv features on real data instead of fooling its logit
  (Salimans et al. 2016, Sec. 3.1; used by Kossen et al. 2021).
* ``aux_weight`` (float, default 1; ``acgan`` only): weight of the auxiliary class loss.

Each step runs ``train.n_critic`` discriminator steps, then one generator step, and returns
detached tensors (no host syncs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synthmed.training.methods import (
    StepContext,
    critic_view,
    latent,
    method,
    model_rows,
    observe_real,
    private_real_rows,
    real_batch_indices,
    split_mean,
    sum_rows,
    this_rank,
    to_device,
)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean BCE-with-logits against a constant target (1 = real, 0 = fake)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _real_target(ctx: StepContext) -> float:
    smoothing = float(ctx.cfg.options.get("label_smoothing", 0.0))
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"train.options.label_smoothing must be in [0, 1), got {smoothing}")
    return 1.0 - smoothing


def feature_matching_loss(real_feats: torch.Tensor, fake_feats: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of batch-mean features (Salimans et al. 2016, Sec. 3.1).

    ``||E f(x) - E f(G(z))||_2^2`` divided by the feature width (as in the paper's reference
    code), so its scale does not grow with the network.

    Args:
        real_feats: ``(N, F)`` discriminator features of real samples (treated as constants).
        fake_feats: ``(M, F)`` features of generated samples.
    """
    return (real_feats.detach().mean(dim=0) - fake_feats.mean(dim=0)).pow(2).mean()


def _row_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row BCE-with-logits (a private step's rows keep their own losses)."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def _targets(n_real: int, n_fake: int, real_target: float, device) -> torch.Tensor:
    return torch.cat([torch.full((n_real,), real_target), torch.zeros(n_fake)]).to(device)


def _dcgan_private_d_steps(ctx: StepContext) -> dict[str, torch.Tensor]:
    """``n_critic`` DP-SGD discriminator updates on ``[Poisson real; fake]`` in one pass."""
    gen, disc = ctx.model.generator, ctx.model.critic
    target, batch = _real_target(ctx), ctx.cfg.batch_size
    for _ in range(ctx.cfg.n_critic):
        real = model_rows(ctx, ctx.data[private_real_rows(ctx)])
        z = latent(ctx, batch)
        with torch.no_grad(), ctx.autocast():
            fake = gen(z).float()
        x = torch.cat([critic_view(ctx, real), critic_view(ctx, fake)])
        y = _targets(real.shape[0], batch, target, x.device)

        def loss(x=x, y=y):
            with ctx.autocast():
                logits = disc(x).float()
            rows = _row_bce(logits, y)
            return sum_rows(rows), (logits.detach(), rows.detach())

        logits, rows = ctx.private.step(loss)
    d_real, d_fake = split_mean(torch.sigmoid(logits), real.shape[0])
    return {"loss_d": sum(split_mean(rows, real.shape[0])), "d_real": d_real, "d_fake": d_fake}


def _dcgan_d_steps(ctx: StepContext) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``n_critic`` discriminator updates; returns detached stats and the last real batch."""
    gen, disc = ctx.model.generator, ctx.model.critic
    target = _real_target(ctx)
    disc.requires_grad_(True)
    if ctx.private is not None:
        return _dcgan_private_d_steps(ctx), None
    for _ in range(ctx.cfg.n_critic):
        real = model_rows(ctx, ctx.data[real_batch_indices(ctx)])
        z = latent(ctx, real.shape[0])
        with torch.no_grad(), ctx.autocast():
            fake = gen(z).float()  # generated once and detached (PERFORMANCE.md)
        real, fake = critic_view(ctx, real), critic_view(ctx, fake)
        with ctx.autocast():
            real_logits, fake_logits = disc(real).float(), disc(fake).float()
        observe_real(ctx, real_logits)
        loss_d = _bce(real_logits, target) + _bce(fake_logits, 0.0)
        ctx.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        ctx.opt_d.step()
    stats = {
        "d_real": torch.sigmoid(real_logits).mean().detach(),
        "d_fake": torch.sigmoid(fake_logits).mean().detach(),
    }
    return {"loss_d": loss_d.detach(), **stats}, real


@method("dcgan")
def dcgan_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """``n_critic`` discriminator steps, then one generator step (Radford et al. 2016).

    The generator loss is the non-saturating ``BCE(D(G(z)), 1)``, or with
    ``train.options.feature_matching`` the feature-matching loss against the last real batch
    (the discriminator must accept ``return_features=True``, as ``DCGANDiscriminator`` does).

    Returns:
        Detached scalars ``loss_d``, ``loss_g``, ``d_real``, ``d_fake`` (mean probabilities).
    """
    out, real = _dcgan_d_steps(ctx)
    gen, disc = ctx.model.generator, ctx.model.critic
    disc.requires_grad_(False)  # no discriminator grads in the generator step (PERFORMANCE.md)
    z = latent(ctx, ctx.cfg.batch_size)
    with ctx.autocast():
        if ctx.cfg.options.get("feature_matching", False):
            with torch.no_grad():
                _, real_feats = disc(real, return_features=True)
            _, fake_feats = disc(critic_view(ctx, gen(z)), return_features=True)
            loss_g = feature_matching_loss(real_feats.float(), fake_feats.float())
        else:
            loss_g = _bce(disc(critic_view(ctx, gen(z))).float(), 1.0)
    ctx.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    ctx.opt_g.step()
    disc.requires_grad_(True)
    return {
        "loss_d": out["loss_d"],
        "loss_g": loss_g.detach(),
        "d_real": out["d_real"],
        "d_fake": out["d_fake"],
    }


def _sample_classes(ctx: StepContext, n: int) -> torch.Tensor:
    """Uniform fake classes drawn on CPU from the run's generator (exact resume)."""
    drawn = torch.randint(ctx.model.num_classes, (n * ctx.world_size,), generator=ctx.rng)
    return to_device(ctx, this_rank(ctx, drawn))


def _acgan_private_d_steps(ctx: StepContext, aux_weight: float) -> dict[str, torch.Tensor]:
    """``n_critic`` DP-SGD updates: per-row adversarial BCE + ``aux_weight`` x class CE on
    ``[Poisson real (their classes); fake (uniform classes)]`` in one pass."""
    gen, disc = ctx.model.generator, ctx.model.critic
    target, batch = _real_target(ctx), ctx.cfg.batch_size
    for _ in range(ctx.cfg.n_critic):
        idx = private_real_rows(ctx)
        real, real_cls = ctx.data[idx], ctx.classes[idx]
        z, fake_cls = latent(ctx, batch), _sample_classes(ctx, batch)
        with torch.no_grad(), ctx.autocast():
            fake = gen(z, fake_cls).float()
        x = torch.cat([critic_view(ctx, real), critic_view(ctx, fake)])
        y, cls = _targets(real.shape[0], batch, target, x.device), torch.cat([real_cls, fake_cls])

        def loss(x=x, y=y, cls=cls):
            with ctx.autocast():
                adv, aux = disc(x)
            aux_rows = F.cross_entropy(aux.float(), cls, reduction="none")
            rows = _row_bce(adv.float(), y) + aux_weight * aux_rows
            return sum_rows(rows), (rows.detach(), aux_rows.detach(), aux.detach())

        rows, aux_rows, aux = ctx.private.step(loss)
    n = real.shape[0]
    correct = (aux.argmax(dim=1) == cls).float()
    return {
        "loss_d": sum(split_mean(rows, n)),
        "loss_aux_d": sum(split_mean(aux_rows, n)),
        "aux_acc_real": split_mean(correct, n)[0],
    }


def _acgan_d_steps(ctx: StepContext, aux_weight: float) -> dict[str, torch.Tensor]:
    """``n_critic`` discriminator updates with the auxiliary loss; returns detached stats."""
    gen, disc = ctx.model.generator, ctx.model.critic
    target = _real_target(ctx)
    disc.requires_grad_(True)
    if ctx.private is not None:
        return _acgan_private_d_steps(ctx, aux_weight)
    for _ in range(ctx.cfg.n_critic):
        idx = real_batch_indices(ctx)
        real, real_cls = ctx.data[idx], ctx.classes[idx]
        z, fake_cls = latent(ctx, real.shape[0]), _sample_classes(ctx, real.shape[0])
        with torch.no_grad(), ctx.autocast():
            fake = gen(z, fake_cls).float()
        real, fake = critic_view(ctx, real), critic_view(ctx, fake)
        with ctx.autocast():
            (real_adv, real_aux), (fake_adv, fake_aux) = disc(real), disc(fake)
        observe_real(ctx, real_adv)
        adv = _bce(real_adv.float(), target) + _bce(fake_adv.float(), 0.0)
        aux = F.cross_entropy(real_aux.float(), real_cls) + F.cross_entropy(
            fake_aux.float(), fake_cls
        )
        loss_d = adv + aux_weight * aux
        ctx.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        ctx.opt_d.step()
    return {
        "loss_d": loss_d.detach(),
        "loss_aux_d": aux.detach(),
        "aux_acc_real": (real_aux.argmax(dim=1) == real_cls).float().mean().detach(),
    }


@method("acgan")
def acgan_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """AC-GAN step (Odena et al. 2017): adversarial BCE plus auxiliary class cross-entropy.

    Discriminator: ``BCE(real) + BCE(fake) + aux_weight * (CE(aux(real), y) + CE(aux(fake),
    c))`` with ``y`` the real rows' classes (``ctx.classes``, same indices as the batch) and
    ``c`` uniform fake classes. Generator: ``BCE(D(G(z, c)), 1) + aux_weight * CE(aux, c)``.

    Returns:
        Detached ``loss_d``, ``loss_g``, ``loss_aux_d``, ``loss_aux_g`` and ``aux_acc_real``
        (auxiliary-classifier accuracy on the last real batch).

    Raises:
        ValueError: if the data carry no image-level classes (``ctx.classes`` is None).
    """
    if ctx.classes is None:
        raise ValueError(
            "method 'acgan' needs image-level classes for the training rows (ctx.classes); "
            "give the data a class per image, or use method 'dcgan'"
        )
    aux_weight = float(ctx.cfg.options.get("aux_weight", 1.0))
    out = _acgan_d_steps(ctx, aux_weight)
    gen, disc = ctx.model.generator, ctx.model.critic
    disc.requires_grad_(False)
    z, fake_cls = latent(ctx, ctx.cfg.batch_size), _sample_classes(ctx, ctx.cfg.batch_size)
    with ctx.autocast():
        adv_logits, aux_logits = disc(critic_view(ctx, gen(z, fake_cls)))
    aux_g = F.cross_entropy(aux_logits.float(), fake_cls)
    loss_g = _bce(adv_logits.float(), 1.0) + aux_weight * aux_g
    ctx.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    ctx.opt_g.step()
    disc.requires_grad_(True)
    return {
        "loss_d": out["loss_d"],
        "loss_g": loss_g.detach(),
        "loss_aux_d": out["loss_aux_d"],
        "loss_aux_g": aux_g.detach(),
        "aux_acc_real": out["aux_acc_real"],
    }
