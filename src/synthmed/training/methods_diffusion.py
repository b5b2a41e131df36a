"""The denoising-diffusion training method: one optimiser, no critic.

One step draws a real batch, noise and timesteps from the run's generator (so resume is
exact), and minimises the model's denoising loss (:meth:`synthmed.models.diffusion.
DiffusionModel.loss`: velocity for rectified flow, noise for DDPM). Class-conditional models
see the "no class" label with probability ``train.options.class_dropout`` (default 0.1), which
trains the unconditional branch classifier-free guidance needs (Ho & Salimans 2022).
"""

from __future__ import annotations

import torch

from synthmed.training.methods import (
    Optimizers,
    StepContext,
    adam,
    method,
    model_rows,
    real_batch_indices,
    this_rank,
)


def diffusion_optimizers(model, cfg, device: torch.device) -> Optimizers:
    """``g``: the denoiser's Adam at ``lr_g`` (a critic, if any, is not trained)."""
    return {"g": adam(model.generator.parameters(), cfg.lr_g, cfg, device)}


def dropped_classes(ctx: StepContext, idx: torch.Tensor) -> torch.Tensor | None:
    """The batch's classes, each replaced by the null class with ``class_dropout``."""
    if not ctx.model.needs_classes:
        return None
    if ctx.classes is None:
        raise ValueError("a class-conditional diffusion model needs image-level classes")
    p = float(ctx.cfg.options.get("class_dropout", 0.1))
    if not 0.0 <= p < 1.0:
        raise ValueError(f"train.options.class_dropout must be in [0, 1), got {p}")
    drop = this_rank(ctx, torch.rand(len(idx) * ctx.world_size, generator=ctx.rng) < p)
    drop = drop.to(ctx.device)
    classes = ctx.classes[idx]
    return torch.where(drop, torch.full_like(classes, ctx.model.num_classes), classes)


@method("diffusion", optimizers=diffusion_optimizers, lr_of={"g": "lr_g"})
def diffusion_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """One denoising step on a random real batch (returns the detached ``loss``)."""
    idx = real_batch_indices(ctx)
    rows = model_rows(ctx, ctx.data[idx])
    classes = dropped_classes(ctx, idx)
    with ctx.autocast():
        loss = ctx.model.loss(rows, ctx.rng, classes, shard=(ctx.rank, ctx.world_size))
    opt = ctx.optimizers["g"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.detach()}
