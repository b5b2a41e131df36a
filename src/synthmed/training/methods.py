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

import torch

from synthmed.config.schema import TrainConfig
from synthmed.losses.adversarial import (
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from synthmed.registry import Registry
from synthmed.training.diffaugment import CriticAugment

METHODS = Registry("training method")

Optimizers = dict[str, torch.optim.Optimizer]


def adam(params, lr: float, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam with fused kernels (+7-10% on CPU, more on GPU; PERFORMANCE.md)."""
    return torch.optim.Adam(params, lr, cfg.betas, fused=device.type in ("cpu", "cuda"))


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
    (the loop's lr schedule scales those).
    """

    name: str
    step: Callable[[StepContext], dict[str, torch.Tensor]]
    optimizers: Callable[..., Optimizers] = adversarial_optimizers
    lr_of: dict[str, str] = field(default_factory=lambda: {"g": "lr_g", "d": "lr_d"})

    def __call__(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        return self.step(ctx)


def method(name: str, optimizers: Callable[..., Optimizers] = adversarial_optimizers, lr_of=None):
    """Register a step function as method ``name`` (decorator; returns the function)."""

    def decorator(step):
        kwargs = {} if lr_of is None else {"lr_of": dict(lr_of)}
        METHODS.register(name)(Method(name, step, optimizers, **kwargs))
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
    return idx.to(ctx.data.device)


def model_rows(ctx: StepContext, rows: torch.Tensor) -> torch.Tensor:
    """The part of the data a model generates (a mask GAN sees only the label channels)."""
    return ctx.model.training_rows(rows)


def _real_batch(ctx: StepContext) -> torch.Tensor:
    return model_rows(ctx, ctx.data[real_batch_indices(ctx)])


def latent(ctx: StepContext, n: int) -> torch.Tensor:
    """Standard-normal latents drawn from the run's generator, moved to the device."""
    z = torch.randn(n * ctx.world_size, ctx.model.latent_dim, generator=ctx.rng)
    return this_rank(ctx, z).to(ctx.device)


@method("wgan_gp")
def wgan_gp_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """One WGAN-GP generator step after ``n_critic`` critic steps (Gulrajani et al. 2017).

    Spectral normalisation (Kossen's WGAN-GP-SN) lives in the critic, so the same step serves;
    so does a mask GAN (kind ``mask``), which sees only the label channels.
    """
    gen, critic, cfg = ctx.model.generator, ctx.model.critic, ctx.cfg
    critic.requires_grad_(True)
    for _ in range(cfg.n_critic):
        real = _real_batch(ctx)
        z = latent(ctx, real.shape[0])
        alpha = torch.rand(real.shape[0] * ctx.world_size, generator=ctx.rng)
        alpha = this_rank(ctx, alpha).to(ctx.device)
        with torch.no_grad(), ctx.autocast():
            fake = gen(z).float()
        real, fake = critic_view(ctx, real), critic_view(ctx, fake)
        with ctx.autocast():
            real_scores, fake_scores = critic(real).float(), critic(fake).float()
        observe_real(ctx, real_scores)
        loss_w = wasserstein_critic_loss(real_scores, fake_scores)
        # fp32: the penalty is sensitive. Under DDP ``critic`` is the DDP critic: the penalty's
        # autograd.grad is w.r.t. the inputs only, and its parameter gradients reach DDP's
        # all-reduce in the single backward below (training/ddp.py, DDPSwap)
        gp = gradient_penalty(critic, real, fake, alpha=alpha)
        ctx.opt_d.zero_grad(set_to_none=True)
        (loss_w + cfg.gp_lambda * gp).backward()
        ctx.opt_d.step()
    critic.requires_grad_(False)  # no critic grads during the generator step (PERFORMANCE.md)
    z = latent(ctx, cfg.batch_size)
    with ctx.autocast():
        loss_g = wasserstein_generator_loss(critic(critic_view(ctx, gen(z))).float())
    ctx.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    ctx.opt_g.step()
    critic.requires_grad_(True)
    return {
        "loss_d": loss_w.detach(),
        "gp": gp.detach(),
        "wasserstein": (real_scores.mean() - fake_scores.mean()).detach(),
        "loss_g": loss_g.detach(),
    }
