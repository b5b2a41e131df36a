"""Denoising diffusion generators on MONAI's generative stack, for the four synthesis tasks.

One denoiser (``monai.networks.nets.DiffusionModelUNet``) and one noise schedule (MONAI's
``RFlowScheduler``: rectified flow, velocity prediction, few-step Euler sampling; or
``DDPMScheduler`` training with ``DDIMScheduler`` sampling) serve four families, one class each
so that each declares what synthesis needs (see :mod:`synthmed.models.base`):

* ``diffusion_pairs`` (Kossen's task): image and label channels diffused together; the label
  channels are decoded by the same threshold rule as the GAN pairs.
* ``diffusion_translator`` (Shin / Platscher / Guibas stage II): the one-hot label map is
  concatenated to the noisy image as input channels; the map is the sample's label.
* ``diffusion_class`` (Frid-Adar): a class embedding (MONAI ``num_class_embeds``) with one
  extra "no class" entry, dropped at random in training, for classifier-free guidance
  (Ho & Salimans 2022) at sampling.
* ``diffusion_mask`` (Guibas stage I, Platscher lesion masks): label channels only.

The starting noise of sample ``i`` is its latent ``z`` (``latent_dim`` = channels x voxels),
drawn from the sample's own seed, and every sampler step is deterministic (rectified-flow
Euler, DDIM with eta 0), so the same seed gives the same sample whatever the batch.

``latent`` (option): diffuse in the latent space of an autoencoder trained first in the same
run (:mod:`synthmed.models.latent`, latent diffusion) instead of on the data's own grid: for
images from 128^2 and for volumes. The codec lives in the generator module, so the EMA copy,
checkpoints and packages carry it.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler, RFlowScheduler
from torch import nn

from synthmed.data.pairs import onehot_condition
from synthmed.models.base import GenerativeModel
from synthmed.models.blocks import check_spatial_dims, resize_channels
from synthmed.models.latent import LatentCodec
from synthmed.models.registry import MODELS

SCHEDULES = ("rflow", "ddpm")


class Denoiser(nn.Module):
    """The MONAI diffusion U-Net behind one module (the EMA and checkpoints see only this).

    Shapes:
        forward: x ``(N, C_in, *S)`` (noisy sample, then condition channels if any), t ``(N,)``,
        optional classes ``(N,)`` long -> ``(N, C_out, *S)`` (velocity or noise prediction).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: tuple[int, ...],
        attention_levels: tuple[bool, ...],
        num_res_blocks: int,
        norm_num_groups: int,
        num_class_embeds: int | None = None,
        codec: LatentCodec | None = None,
    ) -> None:
        super().__init__()
        self.codec = codec  # latent diffusion: the data <-> latent autoencoder, else None
        self.unet = DiffusionModelUNet(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            channels=tuple(channels),
            attention_levels=tuple(attention_levels),
            num_res_blocks=num_res_blocks,
            norm_num_groups=norm_num_groups,
            # heads of up to 32 channels (one head on narrow levels)
            num_head_channels=[math.gcd(c, 32) for c in channels],
            num_class_embeds=num_class_embeds,
        )

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.unet(x, t, class_labels=classes)


class DiffusionModel(GenerativeModel):
    """Shared noise schedule, training loss and sampler of the diffusion families.

    Subclasses say which channels are diffused (:meth:`diffused`), what conditions the
    denoiser (:meth:`condition_input`) and how a finished sample becomes the pair layout
    (:meth:`to_pairs`).
    """

    kind: ClassVar[str] = "diffusion_pairs"

    def __init__(
        self,
        generator: Denoiser,
        *,
        schedule: str = "rflow",
        num_train_timesteps: int = 1000,
        sample_steps: int = 20,
        guidance_scale: float = 1.0,
        timestep_sampling: str = "logit-normal",
        output_size: tuple[int, ...] | None = None,
        noise_shape: tuple[int, ...] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(generator, None, **kwargs)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got '{schedule}'")
        if timestep_sampling not in ("uniform", "logit-normal"):
            raise ValueError(
                f"timestep_sampling must be 'uniform' or 'logit-normal', got '{timestep_sampling}'"
            )
        self.schedule = schedule
        self.num_train_timesteps = int(num_train_timesteps)
        self.timestep_sampling = timestep_sampling
        self.output_size = tuple(output_size) if output_size else tuple(self.spatial_size)
        # what the U-Net denoises: (channels, *grid); the data's grid, or the latent grid
        self.noise_shape = tuple(noise_shape or (self.diffused_channels, *self.spatial_size))
        self.sample_steps = 20
        self.guidance_scale = 1.0
        self.configure_sampling(steps=sample_steps, guidance_scale=guidance_scale)
        if schedule == "ddpm":
            self._ddpm = DDPMScheduler(self.num_train_timesteps, schedule="scaled_linear_beta")

    # -- what subclasses decide ---------------------------------------------------------
    @classmethod
    def generated_channels(cls, image_channels: int, label_channels: int) -> int:
        """Channels the denoiser predicts (image + label for pairs)."""
        return image_channels + label_channels

    @property
    def diffused_channels(self) -> int:
        return self.generated_channels(self.image_channels, self.label_channels)

    def diffused(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stored training rows -> (what is diffused, condition channels or None), on the
        data's grid (latent models encode them: :meth:`to_latent`)."""
        return rows, None

    # -- latent diffusion -----------------------------------------------------------------
    @property
    def codec(self) -> LatentCodec | None:
        """The latent autoencoder of the generator in use (the EMA copy when sampling)."""
        return getattr(self.generator, "codec", None)

    @property
    def ema_start(self) -> int:
        codec = self.codec
        return 0 if codec is None else codec.train_steps

    def to_latent(
        self, x: torch.Tensor, condition: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the U-Net sees: ``x`` encoded and the condition averaged to the latent grid
        (identity without a codec)."""
        codec = self.codec
        if codec is None:
            return x, condition
        cond = None if condition is None else codec.condition_at_latent_size(condition)
        return codec.encode(x), cond

    def from_latent(self, x: torch.Tensor) -> torch.Tensor:
        """A finished sample back on the data's grid, clamped to [-1, 1]."""
        codec = self.codec
        return (x if codec is None else codec.decode(x)).clamp(-1, 1)

    def to_pairs(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """A finished sample (+ its condition) in the pair layout."""
        return x

    # -- sampling settings ----------------------------------------------------------------
    def configure_sampling(
        self, steps: int | None = None, guidance_scale: float | None = None
    ) -> None:
        """Set the sampler's step count and (class models) the guidance scale."""
        if steps is not None:
            if not 1 <= int(steps) <= self.num_train_timesteps:
                raise ValueError(f"sample steps must be 1..{self.num_train_timesteps}, got {steps}")
            self.sample_steps = int(steps)
        if guidance_scale is not None:
            if not self.needs_classes and float(guidance_scale) != 1.0:
                raise ValueError("guidance_scale applies to class-conditional models only")
            self.guidance_scale = float(guidance_scale)

    def sampler_description(self) -> str:
        """How samples are drawn, for the manifest (e.g. ``rflow euler 20 steps``)."""
        sampler = "rflow euler" if self.schedule == "rflow" else "ddim eta=0"
        text = f"{sampler} {self.sample_steps} steps"
        if self.needs_classes:
            text += f" guidance {self.guidance_scale:g}"
        return text

    # -- training ---------------------------------------------------------------------
    def sample_timesteps(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """Training timesteps in ``[0, T)`` drawn from ``rng`` (MONAI's own sampler uses the
        global RNG, which would break exact resume)."""
        if self.timestep_sampling == "logit-normal":  # Esser et al. 2024 (SD3): mid-t weighted
            u = torch.sigmoid(torch.randn(n, generator=rng))
        else:
            u = torch.rand(n, generator=rng)
        return (u * self.num_train_timesteps).long().clamp_(0, self.num_train_timesteps - 1)

    def noisy(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t`` for clean ``x0`` at timesteps ``t`` (the schedule's forward process)."""
        if self.schedule == "rflow":
            s = (t.float() / self.num_train_timesteps).view(-1, *[1] * (x0.dim() - 1))
            return (1 - s) * x0 + s * noise  # MONAI RFlowScheduler.add_noise, same convention
        return self._ddpm.add_noise(x0, noise, t)

    def target(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the denoiser learns to predict: velocity ``x0 - noise`` (rflow) or noise."""
        return x0 - noise if self.schedule == "rflow" else noise

    def denoise(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        classes: torch.Tensor | None,
        condition: torch.Tensor | None,
    ) -> torch.Tensor:
        """The denoiser's prediction for ``x`` at ``t`` (condition channels concatenated)."""
        inp = x if condition is None else torch.cat([x, condition.to(x.dtype)], dim=1)
        return self.generator(inp, t, classes)

    def loss(
        self,
        rows: torch.Tensor,
        noise_rng: torch.Generator,
        classes: torch.Tensor | None = None,
        shard: tuple[int, int] = (0, 1),
        encoded: tuple[torch.Tensor, torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """Mean-squared denoising loss on a batch of stored training rows.

        ``shard = (rank, world_size)``: ``rows`` are one rank's slice of a global batch of
        ``world_size`` x ``len(rows)``; noise and timesteps are drawn for the global batch and
        the rank keeps its slice (so N ranks draw what one process with the whole batch does).
        ``encoded``: ``to_latent(*diffused(rows))`` computed beforehand (latent models cache
        the training set's latents once the autoencoder is frozen), else computed here.
        """
        x0, condition = encoded or self.to_latent(*self.diffused(rows))
        rank, world = shard
        n = x0.shape[0]
        keep = slice(rank * n, (rank + 1) * n)
        noise = torch.randn((n * world, *x0.shape[1:]), generator=noise_rng)[keep].to(x0.device)
        t = self.sample_timesteps(n * world, noise_rng)[keep].to(x0.device)
        pred = self.denoise(self.noisy(x0, noise, t), t, classes, condition)
        return F.mse_loss(pred.float(), self.target(x0, noise).float())

    # -- sampling ---------------------------------------------------------------------
    def initial_noise(self, z: torch.Tensor) -> torch.Tensor:
        """Per-sample latents ``(N, latent_dim)`` -> starting noise ``(N, C, *S)``."""
        return z.view(z.shape[0], *self.noise_shape)

    def _prediction(self, x, t, classes, condition) -> torch.Tensor:
        tt = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
        if not self.needs_classes or self.guidance_scale == 1.0:
            return self.denoise(x, tt, classes, condition)
        null = torch.full_like(classes, self.num_classes)  # the "no class" embedding
        both = self.denoise(
            torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([classes, null]), condition
        )
        cond, uncond = both.chunk(2)
        return uncond + self.guidance_scale * (cond - uncond)

    def run_sampler(
        self,
        x: torch.Tensor,
        classes: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Integrate from noise ``x`` to a clean sample with the configured few-step sampler."""
        if self.schedule == "rflow":
            sched = RFlowScheduler(self.num_train_timesteps, use_discrete_timesteps=False)
            sched.set_timesteps(self.sample_steps, device=x.device)
            times = sched.timesteps.tolist()
            for t, t_next in zip(times, times[1:] + [0.0], strict=True):
                v = self._prediction(x, t, classes, condition)
                x, _ = sched.step(v, t, x, t_next)
        else:
            sched = DDIMScheduler(  # x0 in [-1, 1] on the data grid; latents are unbounded
                self.num_train_timesteps,
                schedule="scaled_linear_beta",
                clip_sample=self.codec is None,
            )
            sched.set_timesteps(self.sample_steps, device=x.device)
            for t in sched.timesteps.tolist():
                eps = self._prediction(x, t, classes, condition)
                x, _ = sched.step(eps, t, x, eta=0.0)
        return x

    def synthesize(self, z=None, classes=None, condition=None) -> torch.Tensor:
        """Samples in the pair layout (see :mod:`synthmed.models.base`) from latents ``z``."""
        if z is None:
            raise ValueError("a diffusion model needs latents z (the starting noise)")
        cond_in = None if condition is None else self.condition_input(condition)
        if cond_in is not None and self.codec is not None:
            cond_in = self.codec.condition_at_latent_size(cond_in)
        x = self.run_sampler(self.initial_noise(z), classes, cond_in)
        return self.to_pairs(self.from_latent(x), condition)

    def condition_input(self, condition: torch.Tensor) -> torch.Tensor:
        """Condition channels fed to the denoiser (translators: the one-hot map in [-1, 1])."""
        return condition * 2 - 1

    def to_output_size(self, channels: torch.Tensor) -> torch.Tensor:
        """Channels at the training size -> ``output_size`` (a cascade's stage-I masks)."""
        return resize_channels(channels, self.output_size)


class DiffusionPairs(DiffusionModel):
    """Image and label channels diffused together (kind ``diffusion_pairs``)."""

    kind = "diffusion_pairs"


class DiffusionClassPairs(DiffusionModel):
    """Class-conditional pairs with classifier-free guidance (kind ``diffusion_class``)."""

    kind = "diffusion_class"
    needs_classes = True

    def synthesize(self, z=None, classes=None, condition=None) -> torch.Tensor:
        if classes is None:
            raise ValueError("a class-conditional model needs classes")
        return super().synthesize(z, classes.long(), None)


class DiffusionTranslator(DiffusionModel):
    """Label map -> image (kind ``diffusion_translator``): the one-hot map (K channels,
    background first) is concatenated to the noisy image; the map is the label."""

    kind = "diffusion_translator"
    needs_condition = True

    @classmethod
    def generated_channels(cls, image_channels: int, label_channels: int) -> int:
        return image_channels

    def diffused(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        image, label_part = self.split(rows)
        return image, self.condition_input(onehot_condition(label_part))

    def to_pairs(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        label_part = condition[:, 1:] * 2 - 1
        return torch.cat([x, label_part.to(x.dtype)], dim=1)


class DiffusionMask(DiffusionModel):
    """Label maps only (kind ``diffusion_mask``), next to a black (-1) image in the pair
    layout, scaled to ``output_size`` (the translator stage's size in a cascade)."""

    kind = "diffusion_mask"
    label_only = True

    @classmethod
    def generated_channels(cls, image_channels: int, label_channels: int) -> int:
        return label_channels

    def to_pairs(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        labels = self.to_output_size(x)
        shape = (labels.shape[0], self.image_channels, *labels.shape[2:])
        return torch.cat([labels.new_full(shape, -1.0), labels], dim=1)


LATENT_KEYS = ("channels", "widths", "num_res_blocks", "norm_groups", "steps", "kl_weight")


def _codec(latent: dict | None, spatial_dims: int, data_channels: int) -> LatentCodec | None:
    """The latent autoencoder asked for by the ``latent`` option (None: diffuse the data)."""
    if not latent:
        return None
    if not isinstance(latent, dict):
        raise ValueError(f"model.options.latent must be a mapping ({', '.join(LATENT_KEYS)})")
    unknown = sorted(set(latent) - set(LATENT_KEYS))
    if unknown:
        raise ValueError(f"unknown model.options.latent key(s) {unknown}; known: {LATENT_KEYS}")
    widths = tuple(int(w) for w in latent.get("widths", (32, 64, 64)))
    return LatentCodec(
        spatial_dims,
        data_channels,
        latent_channels=int(latent.get("channels", 4)),
        widths=widths,
        num_res_blocks=int(latent.get("num_res_blocks", 1)),
        norm_groups=int(latent.get("norm_groups", math.gcd(*widths, 16))),
        steps=int(latent.get("steps", 500)),
        kl_weight=float(latent.get("kl_weight", 1e-6)),
    )


def _default_channels(base_channels: int, spatial_size: tuple[int, ...]) -> tuple[int, ...]:
    """Widths per level: base, 2x base, 2x base (three levels, two downsamplings) for small
    inputs, one level more from 128 voxels a side."""
    levels = 4 if min(spatial_size) >= 128 else 3
    return tuple(base_channels * min(2**i, 2) for i in range(levels))


def _build(
    cls: type[DiffusionModel],
    *,
    image_channels: int,
    label_channels: int,
    spatial_size: tuple[int, ...],
    spatial_dims: int = 2,
    base_channels: int = 32,
    num_classes: int = 0,
    channels: list[int] | None = None,
    attention: list[bool] | None = None,
    num_res_blocks: int = 1,
    norm_groups: int | None = None,
    schedule: str = "rflow",
    num_train_timesteps: int = 1000,
    sample_steps: int = 20,
    guidance_scale: float = 1.0,
    timestep_sampling: str = "logit-normal",
    output_size: tuple[int, ...] | None = None,
    latent: dict | None = None,
    **_ignored,  # latent_dim / kernel_size of the shared model config: set by the family here
) -> DiffusionModel:
    check_spatial_dims(spatial_dims)
    size = tuple(int(s) for s in spatial_size)
    if len(size) != spatial_dims:
        raise ValueError(f"spatial_size {size} must have {spatial_dims} entries (spatial_dims)")
    out_channels = cls.generated_channels(image_channels, label_channels)
    if out_channels < 1:
        raise ValueError(f"{cls.kind} has no channels to generate for these data")
    codec = _codec(latent, spatial_dims, out_channels)
    grid = size if codec is None else codec.latent_size(size)
    widths = tuple(channels) if channels else _default_channels(base_channels, grid)
    if any(s % 2 ** (len(widths) - 1) for s in grid):
        where = "spatial_size" if codec is None else f"latent grid (spatial_size / {codec.factor})"
        raise ValueError(
            f"{where} {grid} must be divisible by {2 ** (len(widths) - 1)} "
            f"({len(widths)} U-Net levels)"
        )
    groups = norm_groups or math.gcd(*widths, 16)
    attn = tuple(attention) if attention else (False,) * (len(widths) - 1) + (True,)
    if len(attn) != len(widths):
        raise ValueError(f"attention needs one entry per level ({len(widths)}), got {attn}")
    noised = out_channels if codec is None else codec.latent_channels
    in_channels = noised + (label_channels + 1 if cls.needs_condition else 0)
    if cls.needs_classes and num_classes < 2:
        raise ValueError(f"{cls.kind} needs image-level classes (>= 2), got {num_classes}")
    generator = Denoiser(
        spatial_dims,
        in_channels,
        noised,
        widths,
        attn,
        int(num_res_blocks),
        int(groups),
        num_class_embeds=num_classes + 1 if cls.needs_classes else None,
        codec=codec,
    )
    return cls(
        generator,
        schedule=schedule,
        num_train_timesteps=num_train_timesteps,
        sample_steps=sample_steps,
        guidance_scale=guidance_scale,
        timestep_sampling=timestep_sampling,
        output_size=None if output_size is None else tuple(int(s) for s in output_size),
        noise_shape=(noised, *grid),
        latent_dim=noised * math.prod(grid),
        image_channels=image_channels,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=spatial_dims,
        num_classes=num_classes if cls.needs_classes else 0,
    )


@MODELS.register("diffusion_pairs")
def build_diffusion_pairs(**kwargs) -> DiffusionModel:
    """Image+label pair diffusion (train with the ``diffusion`` method).

    Options (``model.options``): ``channels`` (U-Net widths per level; default from
    ``base_channels``), ``attention`` (per level; default: the deepest only),
    ``num_res_blocks`` (1), ``schedule`` (``rflow`` | ``ddpm``), ``num_train_timesteps``
    (1000), ``sample_steps`` (20), ``timestep_sampling`` (``logit-normal`` | ``uniform``),
    ``latent`` (latent diffusion: ``{channels: 4, widths: [32, 64, 64], steps: 500,
    kl_weight: 1e-6, num_res_blocks: 1}``; the autoencoder downsamples by 2^(len(widths)-1)
    per axis and trains for ``steps`` steps before the diffusion U-Net starts).
    """
    return _build(DiffusionPairs, **kwargs)


@MODELS.register("diffusion_class")
def build_diffusion_class(*, num_classes: int = 0, **kwargs) -> DiffusionModel:
    """Class-conditional diffusion with classifier-free guidance (``guidance_scale``
    option, 1 = conditional only); the ``diffusion`` method drops the class with
    ``train.options.class_dropout`` (0.1)."""
    return _build(DiffusionClassPairs, num_classes=num_classes, **kwargs)


@MODELS.register("diffusion_translator")
def build_diffusion_translator(**kwargs) -> DiffusionModel:
    """Label-map -> image diffusion (the one-hot map as extra input channels)."""
    return _build(DiffusionTranslator, **kwargs)


@MODELS.register("diffusion_mask")
def build_diffusion_mask(**kwargs) -> DiffusionModel:
    """Label-map diffusion (a cascade's stage I); ``output_size`` as for ``mask_gan``."""
    return _build(DiffusionMask, **kwargs)
