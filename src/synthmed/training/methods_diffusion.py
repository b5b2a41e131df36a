"""The denoising-diffusion training method: one optimiser, no critic.

One step draws a real batch, noise and timesteps from the run's generator (so resume is
exact), and minimises the model's denoising loss (:meth:`synthmed.models.diffusion.
DiffusionModel.loss`: velocity for rectified flow, noise for DDPM). Class-conditional models
see the "no class" label with probability ``train.options.class_dropout`` (default 0.1), which
trains the unconditional branch classifier-free guidance needs (Ho & Salimans 2022).

Latent diffusion (``model.options.latent``) trains in two phases of the same run: the first
``latent.steps`` steps train the autoencoder (optimiser ``ae``, at ``lr_g``) on what the model
diffuses, the last of them fits the latent scale; then the autoencoder is frozen (so the EMA
copies it instead of averaging it) and the U-Net trains on its latents. The phase is the
codec's ``steps_done`` buffer, saved in every checkpoint, so resume continues either phase.

Under torchrun the U-Net runs in DDP (:func:`diffusion_ddp_modules`); the autoencoder's loss
calls its encoder and decoder rather than a ``forward``, which DDP cannot hook, so its
gradients are averaged over the ranks explicitly after each backward. Its noise is drawn for
the global batch and sliced, and the latent scale is rank 0's (every rank fits it on the same
rows with the same weights; the broadcast makes agreement certain), so N ranks x B train what
one process with N x B trains.
"""

from __future__ import annotations

import torch

from synthmed import distributed
from synthmed.training.methods import (
    Optimizers,
    StepContext,
    adam,
    method,
    model_rows,
    real_batch_indices,
    this_rank,
    to_device,
)

# rows the latent scale is fitted on (the first ones: the same on every run of the seed)
SCALE_ROWS = 256


def diffusion_optimizers(model, cfg, device: torch.device) -> Optimizers:
    """``g``: the denoiser U-Net's Adam at ``lr_g`` (a critic, if any, is not trained);
    ``ae``: the latent autoencoder's, at ``lr_g``, for latent models."""
    codec = getattr(model, "codec", None)
    if codec is None:
        return {"g": adam(model.generator.parameters(), cfg.lr_g, cfg, device)}
    return {
        "g": adam(model.generator.unet.parameters(), cfg.lr_g, cfg, device),
        "ae": adam(codec.parameters(), cfg.lr_g, cfg, device),
    }


def diffusion_ddp_modules(model) -> list[str]:
    """What DDP wraps under torchrun: the denoiser, or for a latent model its U-Net alone (the
    autoencoder trains outside DDP, and a DDP module whose parameters get no gradient in a
    step, as the frozen codec's in the U-Net phase, fails the next step)."""
    return ["generator"] if getattr(model, "codec", None) is None else ["generator.unet"]


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
    drop = to_device(ctx, drop)
    classes = ctx.classes[idx]
    return torch.where(drop, torch.full_like(classes, ctx.model.num_classes), classes)


def autoencoder_step(ctx: StepContext, codec) -> torch.Tensor:
    """One step of the latent autoencoder on a random real batch; fits the latent scale on
    the step that ends its training. Returns the detached reconstruction loss."""
    codec.requires_grad_(True)
    rows = model_rows(ctx, ctx.data[real_batch_indices(ctx)])
    x, _ = ctx.model.diffused(rows)
    loss = codec.loss(x, ctx.rng, shard=(ctx.rank, ctx.world_size))
    opt = ctx.optimizers["ae"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients(codec.parameters())  # no DDP here: see the module's doc
    opt.step()
    codec.steps_done += 1
    if codec.trained:
        codec.fit_scale(ctx.model.diffused(model_rows(ctx, ctx.data[:SCALE_ROWS]))[0])
        (scale,) = distributed.broadcast_values([float(codec.scale)], ctx.device)
        codec.scale.fill_(scale)
        codec.requires_grad_(False)
    return loss.detach()


def cached_latents(ctx: StepContext, idx: torch.Tensor):
    """(latents, latent-grid condition or None) of training rows ``idx``: the whole training
    set is encoded once under the frozen autoencoder (in chunks) and indexed after, which
    saves an encoder pass per step (about a third of a latent step at 128^2)."""
    if "latents" not in ctx.cache:  # once per process, also after a resume:
        ctx.model.codec.requires_grad_(False)  # frozen, so the EMA copies it (training/ema.py)
        parts = [
            ctx.model.to_latent(*ctx.model.diffused(model_rows(ctx, ctx.data[i : i + 64])))
            for i in range(0, ctx.data.shape[0], 64)
        ]
        x = torch.cat([p[0] for p in parts])
        cond = None if parts[0][1] is None else torch.cat([p[1] for p in parts])
        ctx.cache["latents"] = (x, cond)
    x, cond = ctx.cache["latents"]
    return x[idx], None if cond is None else cond[idx]


@method(
    "diffusion",
    optimizers=diffusion_optimizers,
    lr_of={"g": "lr_g", "ae": "lr_g"},
    ddp_modules=diffusion_ddp_modules,
)
def diffusion_step(ctx: StepContext) -> dict[str, torch.Tensor]:
    """One denoising step on a random real batch (returns the detached ``loss``; latent
    models: ``recon`` too, the autoencoder's loss in its phase, NaN after)."""
    codec = ctx.model.codec
    nan = torch.tensor(float("nan"))
    if codec is not None and not codec.trained:
        return {"loss": nan, "recon": autoencoder_step(ctx, codec)}
    idx = real_batch_indices(ctx)
    rows = model_rows(ctx, ctx.data[idx])
    classes = dropped_classes(ctx, idx)
    encoded = None if codec is None else cached_latents(ctx, idx)
    with ctx.autocast():
        loss = ctx.model.loss(
            rows, ctx.rng, classes, shard=(ctx.rank, ctx.world_size), encoded=encoded
        )
    opt = ctx.optimizers["g"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    out = {"loss": loss.detach()}
    return out if codec is None else {**out, "recon": nan}
