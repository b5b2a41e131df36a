"""Training methods: what one optimisation step does, and which optimisers it needs.

A method is a registered :class:`Method`: a step function (takes the :class:`StepContext`
with the model, its optimisers, the real data tensor and a seeded ``torch.Generator``;
returns detached loss tensors) and a function that builds its optimisers by name. The loop
owns devices, logging, EMA, checkpoints and resume, and assumes nothing else: adversarial
methods declare a generator and a critic optimiser (``g``, ``d``), a family trained without a
critic (diffusion) declares one. A new family is one model file, one method, one preset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from synthmed.config.schema import TrainConfig
from synthmed.losses.adversarial import (
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from synthmed.registry import Registry
from synthmed.training.diffaugment import CriticAugment
from synthmed.training.fast_path import resolve_fast_path

if TYPE_CHECKING:
    from synthmed.training.privacy import PrivateCritic

METHODS = Registry("training method")

Optimizers = dict[str, torch.optim.Optimizer]


def adam(params, lr: float, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam, with fused kernels when ``train.fast_path.fused_adam`` resolves on (``auto``: on
    CPU and CUDA; +7-10% on CPU, more on GPU; PERFORMANCE.md)."""
    fused = resolve_fast_path(device, cfg.fast_path).fused_adam
    return torch.optim.Adam(params, lr, cfg.betas, fused=True if fused else None)


def adversarial_optimizers(model, cfg: TrainConfig, device: torch.device) -> Optimizers:
    """``g``: the generator's Adam at ``lr_g``; ``d``: the critic's at ``lr_d``."""
    if model.critic is None:
        raise ValueError("an adversarial method needs a model with a critic")
    return {
        "g": adam(model.generator.parameters(), cfg.lr_g, cfg, device),
        "d": adam(model.critic.parameters(), cfg.lr_d, cfg, device),
    }


@dataclass(frozen=True)
class Method:
    """A registered training method: ``step(ctx) -> losses`` and its optimisers.

    ``lr_of`` maps each optimiser name to the config field holding its base learning rate
    (the loop's lr schedule scales those). ``critic_steps``: critic updates per generator
    step (what the privacy accountant counts); None for a method without a critic.
    """

    name: str
    step: Callable[[StepContext], dict[str, torch.Tensor]]
    optimizers: Callable[..., Optimizers] = adversarial_optimizers
    lr_of: dict[str, str] = field(default_factory=lambda: {"g": "lr_g", "d": "lr_d"})
    critic_steps: Callable[[TrainConfig], int] | None = None
    # under torchrun, the modules put in DDP for a step (dotted paths into the model); None:
    # the generator, and the critic when a ``d`` optimiser trains it
    ddp_modules: Callable[[torch.nn.Module], list[str]] | None = None

    def __call__(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        return self.step(ctx)


def n_critic_steps(cfg: TrainConfig) -> int:
    """``train.n_critic`` critic updates per generator step (WGAN-GP, DCGAN, AC-GAN)."""
    return cfg.n_critic


def method(
    name: str,
    optimizers: Callable[..., Optimizers] = adversarial_optimizers,
    lr_of=None,
    critic_steps: Callable[[TrainConfig], int] | None = n_critic_steps,
    ddp_modules: Callable[[torch.nn.Module], list[str]] | None = None,
):
    """Register a step function as method ``name`` (decorator; returns the function).

    ``critic_steps`` applies to adversarial methods only (ignored without a critic optimiser).
    """

    def decorator(step):
        kwargs = {} if lr_of is None else {"lr_of": dict(lr_of)}
        steps = critic_steps if optimizers is adversarial_optimizers else None
        METHODS.register(name)(
            Method(name, step, optimizers, critic_steps=steps, ddp_modules=ddp_modules, **kwargs)
        )
        return step

    return decorator


@dataclass
class StepContext:
    """What a method step needs; the data tensor already lives on ``device``.

    ``opt_g`` / ``opt_d`` are the adversarial methods' ``optimizers["g"]`` / ``["d"]``.
    """

    model: torch.nn.Module
    opt_g: torch.optim.Optimizer | None
    opt_d: torch.optim.Optimizer | None
    data: torch.Tensor
    rng: torch.Generator
    cfg: TrainConfig
    device: torch.device
    autocast: Callable[[], object]
    classes: torch.Tensor | None = None  # (N,) image-level class per row of data, if any
    image_channels: int = 1  # data[:, :image_channels] is the image, the rest label channels
    augment: CriticAugment | None = None  # DiffAugment on every critic input (train.diffaugment)
    optimizers: Optimizers = field(default_factory=dict)
    rank: int = 0  # under torchrun: this process's rank and the number of ranks
    world_size: int = 1
    # what a method computes once per process and reuses (latent diffusion: the training
    # set's latents under the frozen autoencoder); never checkpointed, so rebuilt on resume
    cache: dict = field(default_factory=dict)
    # train.privacy: DP-SGD for the critic (synthmed.training.privacy); None: ordinary steps
    private: PrivateCritic | None = None

    def __post_init__(self) -> None:
        if not self.optimizers:
            named = {"g": self.opt_g, "d": self.opt_d}
            self.optimizers = {k: v for k, v in named.items() if v is not None}


def critic_view(ctx: StepContext, x: torch.Tensor) -> torch.Tensor:
    """A generated-or-real batch as the critic sees it: augmented when DiffAugment is on.

    Pairs keep image and label channels aligned and get colour ops on the image channels
    only; a mask GAN's batch is label channels only, so no colour op touches it.
    """
    if ctx.augment is None or not ctx.augment.enabled:
        return x
    color = 0 if ctx.model.label_only else ctx.image_channels
    return ctx.augment(x, color)


def observe_real(ctx: StepContext, real_scores: torch.Tensor) -> None:
    """The critic's scores on a real batch, for the adaptive augmentation probability."""
    if ctx.augment is not None:
        ctx.augment.observe(real_scores)


def to_device(ctx: StepContext, drawn: torch.Tensor) -> torch.Tensor:
    """A CPU draw on the run's device. On CUDA through pinned memory without blocking: a copy
    from pageable memory waits for the GPU's queued work, a host sync on every step."""
    if ctx.device.type == "cuda":
        return drawn.pin_memory().to(ctx.device, non_blocking=True)
    return drawn.to(ctx.device)


def eager(net):
    """``net`` without ``torch.compile`` (same parameters): compiled graphs do not support the
    double backward of the gradient penalty. Under DDP (training/ddp.py) the uncompiled DDP
    wrapper, so the penalty's gradients still reach the all-reduce."""
    uncompiled = getattr(net, "uncompiled", None)
    if callable(uncompiled):
        return uncompiled()
    return getattr(net, "_orig_mod", net)


def this_rank(ctx: StepContext, drawn: torch.Tensor) -> torch.Tensor:
    """This rank's rows of a draw made for the global batch (``world_size`` x the per-rank
    rows, from the generator every rank holds in the same state).

    Every random draw of a step is made for the global batch and sliced, so the ranks see
    disjoint slices of one draw, their generators stay in step, and N ranks x batch B draw
    exactly what one process with batch N x B draws.
    """
    n = drawn.shape[0] // ctx.world_size
    return drawn[ctx.rank * n : (ctx.rank + 1) * n]


def real_batch_indices(ctx: StepContext) -> torch.Tensor:
    """Random row indices (drawn on CPU from the run's generator, so resume is exact)."""
    size = (ctx.cfg.batch_size * ctx.world_size,)
    idx = this_rank(ctx, torch.randint(ctx.data.shape[0], size, generator=ctx.rng))
    return to_device(ctx, idx)


def model_rows(ctx: StepContext, rows: torch.Tensor) -> torch.Tensor:
    """The part of the data a model generates (a mask GAN sees only the label channels)."""
    return ctx.model.training_rows(rows)


def _real_batch(ctx: StepContext) -> torch.Tensor:
    return model_rows(ctx, ctx.data[real_batch_indices(ctx)])


def latent(ctx: StepContext, n: int) -> torch.Tensor:
    """Standard-normal latents drawn from the run's generator, moved to the device."""
    z = torch.randn(n * ctx.world_size, ctx.model.latent_dim, generator=ctx.rng)
    return to_device(ctx, this_rank(ctx, z))


def sum_rows(per_row: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of a per-row loss ``(N, ...)``, each row's other axes averaged.

    A private critic step sums (Opacus' ``loss_reduction="sum"``), so each row's clipped
    gradient is the gradient of that row's own loss.
    """
    return per_row.flatten(1).mean(dim=1).sum() if per_row.dim() > 1 else per_row.sum()


def split_mean(values: torch.Tensor, n_real: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Means of the real rows ``[:n_real]`` and the fake rows of a private step's output
    (the real mean is NaN, logged as such, for an empty Poisson-sampled real batch: rare,
    ``(1 - q)^n``, but possible)."""
    return values[:n_real].mean().detach(), values[n_real:].mean().detach()


def private_real_rows(ctx: StepContext) -> torch.Tensor:
    """A Poisson-sampled real batch (the sampling the privacy accountant assumes)."""
    return ctx.private.poisson_indices(ctx.data.shape[0], ctx.rng, ctx.data.device)


def _wgan_private_critic(ctx: StepContext) -> dict[str, torch.Tensor]:
    """``n_critic`` DP-SGD critic updates: per-row ``-D(real)`` and ``+D(fake)`` in one pass.

    No gradient penalty (it needs a double backward through Opacus' per-sample hooks): the
    Lipschitz bound is the spectral-norm projection after each step (training/privacy.py).
    """
    gen, critic, cfg = ctx.model.generator, ctx.model.critic, ctx.cfg
    for _ in range(cfg.n_critic):
        real = model_rows(ctx, ctx.data[private_real_rows(ctx)])
        z = latent(ctx, cfg.batch_size)
        with torch.no_grad(), ctx.autocast():
            fake = gen(z).float()
        x = torch.cat([critic_view(ctx, real), critic_view(ctx, fake)])
        sign = torch.cat([-torch.ones(real.shape[0]), torch.ones(fake.shape[0])]).to(x.device)

        def loss(x=x, sign=sign):
            with ctx.autocast():
                scores = critic(x).float()
            return sum_rows(sign * scores), scores.detach()

        scores = ctx.private.step(loss)
    real_mean, fake_mean = split_mean(scores, real.shape[0])
    return {"loss_d": fake_mean - real_mean, "wasserstein": real_mean - fake_mean}


def _wgan_critic(ctx: StepContext) -> dict[str, torch.Tensor]:
    """``n_critic`` WGAN-GP critic updates (Gulrajani et al. 2017)."""
    gen, critic, cfg = ctx.model.generator, ctx.model.critic, ctx.cfg
    for _ in range(cfg.n_critic):
        real = _real_batch(ctx)
        z = latent(ctx, real.shape[0])
        alpha = torch.rand(real.shape[0] * ctx.world_size, generator=ctx.rng)
        alpha = to_device(ctx, this_rank(ctx, alpha))
        with torch.no_grad(), ctx.autocast():
            fake = gen(z).float()
        real, fake = critic_view(ctx, real), critic_view(ctx, fake)
        with ctx.autocast():
            real_scores, fake_scores = critic(real).float(), critic(fake).float()
        observe_real(ctx, real_scores)
        loss_w = wasserstein_critic_loss(real_scores, fake_scores)
        # fp32, outside autocast: the penalty is sensitive; eager: compiled graphs have no
        # double backward. Under DDP ``critic`` is the DDP critic: the penalty's
        # autograd.grad is w.r.t. the inputs only, and its parameter gradients reach DDP's
        # all-reduce in the single backward below (training/ddp.py, DDPSwap)
        gp = gradient_penalty(eager(critic), real.float(), fake.float(), alpha=alpha)
        ctx.opt_d.zero_grad(set_to_none=True)
        (loss_w + cfg.gp_lambda * gp).backward()
        ctx.opt_d.step()
    return {
        "loss_d": loss_w.detach(),
        "gp": gp.detach(),
        "wasserstein": (real_scores.mean() - fake_scores.mean()).detach(),
    }


@method("wgan_gp")
def wgan_gp_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """One WGAN-GP generator step after ``n_critic`` critic steps (Gulrajani et al. 2017).

    Spectral normalisation (Kossen's WGAN-GP-SN) lives in the critic, so the same step serves;
    so does a mask GAN (kind ``mask``), which sees only the label channels. Under
    ``train.privacy`` the critic steps are DP-SGD steps with a Lipschitz projection instead
    of the penalty (:func:`_wgan_private_critic`).
    """
    gen, critic, cfg = ctx.model.generator, ctx.model.critic, ctx.cfg
    critic.requires_grad_(True)
    out = _wgan_critic(ctx) if ctx.private is None else _wgan_private_critic(ctx)
    critic.requires_grad_(False)  # no critic grads during the generator step (PERFORMANCE.md)
    z = latent(ctx, cfg.batch_size)
    with ctx.autocast():
        loss_g = wasserstein_generator_loss(critic(critic_view(ctx, gen(z))).float())
    ctx.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    ctx.opt_g.step()
    critic.requires_grad_(True)
    return {**out, "loss_g": loss_g.detach()}
