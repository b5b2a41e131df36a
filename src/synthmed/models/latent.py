"""A learned latent space for diffusion on large images and volumes (latent diffusion,
Rombach et al. 2022), on MONAI's ``AutoencoderKL``.

A diffusion U-Net at 128^2 or on 3D volumes is slow on a CPU (LGG slices at 128^2: ~1.2 s per
step at batch 8 on 2 cores, 4x a 64^2 step). Diffusing in a latent space ``f`` times smaller
per axis costs ``f^d`` times less per U-Net pass. The autoencoder is trained first, in the same
run (``steps`` optimiser steps of the ``diffusion`` method, with the run's data and seed), then
frozen; the diffusion U-Net then learns the distribution of its (scaled) latent means.

Simplifications against the paper, for CPU-sized runs, stated here: the autoencoder's loss is
L1 reconstruction + a small KL term only (no perceptual or adversarial term, which the paper
adds to sharpen textures), and the diffusion model sees the deterministic latent mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.nets import AutoencoderKL
from torch import nn


class LatentCodec(nn.Module):
    """Encoder/decoder between data channels and a latent space ``factor`` x smaller per axis.

    Buffers (saved with the generator, copied by its EMA): ``scale`` (1 / std of the training
    latents, fitted when the autoencoder's training ends, so the diffused latents have unit
    variance as the noise schedule assumes) and ``steps_done`` (autoencoder steps so far: the
    training method's phase, exact under resume).
    """

    def __init__(
        self,
        spatial_dims: int,
        data_channels: int,
        latent_channels: int = 4,
        widths: tuple[int, ...] = (32, 64, 64),
        num_res_blocks: int = 1,
        norm_groups: int = 16,
        steps: int = 500,
        kl_weight: float = 1e-6,
    ) -> None:
        super().__init__()
        if int(steps) < 1:
            raise ValueError(f"latent.steps (autoencoder training steps) must be >= 1, got {steps}")
        if latent_channels < 1 or len(widths) < 2:
            raise ValueError(
                "latent needs channels >= 1 and at least two widths (one downsampling)"
            )
        if kl_weight < 0:
            raise ValueError(f"latent.kl_weight must be >= 0, got {kl_weight}")
        self.autoencoder = AutoencoderKL(
            spatial_dims=spatial_dims,
            in_channels=data_channels,
            out_channels=data_channels,
            channels=tuple(widths),
            latent_channels=latent_channels,
            num_res_blocks=num_res_blocks,
            attention_levels=(False,) * len(widths),
            norm_num_groups=norm_groups,
            with_encoder_nonlocal_attn=False,
            with_decoder_nonlocal_attn=False,
        )
        self.latent_channels = int(latent_channels)
        self.factor = 2 ** (len(widths) - 1)
        self.train_steps = int(steps)
        self.kl_weight = float(kl_weight)
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("steps_done", torch.tensor(0, dtype=torch.long))

    @property
    def trained(self) -> bool:
        return int(self.steps_done) >= self.train_steps

    def latent_size(self, size: tuple[int, ...]) -> tuple[int, ...]:
        if any(s % self.factor for s in size):
            raise ValueError(
                f"spatial_size {tuple(size)} must be divisible by the latent factor {self.factor}"
            )
        return tuple(s // self.factor for s in size)

    def loss(
        self, x: torch.Tensor, rng: torch.Generator, shard: tuple[int, int] = (0, 1)
    ) -> torch.Tensor:
        """L1 reconstruction of ``x`` through a reparameterised latent draw (noise from ``rng``,
        not the global RNG, so resume is exact) + ``kl_weight`` x KL to N(0, I).

        ``shard = (rank, world_size)``: ``x`` is one rank's slice of a global batch; the noise
        is drawn for the global batch and the rank keeps its slice (as the diffusion loss)."""
        mu, sigma = self.autoencoder.encode(x)
        rank, world = shard
        n = mu.shape[0]
        eps = torch.randn((n * world, *mu.shape[1:]), generator=rng)[rank * n : (rank + 1) * n]
        eps = eps.to(mu.device, mu.dtype)
        recon = self.autoencoder.decode(mu + sigma * eps)
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2) + 1e-12) - 1)
        kl = kl.flatten(1).sum(1).mean()
        return F.l1_loss(recon.float(), x.float()) + self.kl_weight * kl

    @torch.no_grad()
    def fit_scale(self, x: torch.Tensor) -> None:
        """Set ``scale`` = 1 / std of the latent means of ``x`` (Rombach et al.'s scale factor)."""
        std = float(self.autoencoder.encode(x)[0].float().std())
        self.scale.fill_(1.0 / max(std, 1e-6))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Data ``(N, C, *S)`` -> scaled latent means ``(N, latent_channels, *S / factor)``."""
        return self.autoencoder.encode(x)[0] * self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> data channels (unclamped)."""
        return self.autoencoder.decode(z / self.scale)

    def condition_at_latent_size(self, condition: torch.Tensor) -> torch.Tensor:
        """A full-size condition (one-hot map in [-1, 1]) averaged over each latent cell (area
        averaging: a bilinear resize would sample every factor-th pixel and miss thin parts)."""
        pool = F.avg_pool2d if condition.dim() == 4 else F.avg_pool3d
        return pool(condition, self.factor)
