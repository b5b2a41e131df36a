"""DCGAN that generates image+label pairs (or images alone) in one tensor.

Radford et al. 2016, "Unsupervised Representation Learning with Deep Convolutional GANs":
the generator is the DCGAN-shaped :class:`~synthmed.models.wgan.PairGenerator`; the
discriminator is strided convs with BatchNorm (not on the first layer) and LeakyReLU(0.2),
then one logit. Kossen et al. 2021 trained it on TOF-MRA image+label patch pairs with two
options from Salimans et al. 2016, "Improved Techniques for Training GANs": minibatch
discrimination (this module) and feature matching (the ``dcgan`` training method, which reads
the features ``forward(x, return_features=True)`` exposes). Frid-Adar et al. 2018 trained one
such DCGAN per lesion class on image-only ROIs (``label_channels=0``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from synthmed.models.blocks import (
    batch_norm_layer,
    conv_layer,
    init_dcgan_weights,
    num_resamplings,
)
from synthmed.models.registry import MODELS
from synthmed.models.wgan import GANModel, PairGenerator, _check_size, _width

# Salimans et al.'s reference code draws the minibatch-discrimination tensor from N(0, 0.05).
_MBD_INIT_STD = 0.05


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination layer (Salimans et al. 2016, Sec. 3.2).

    Each sample's features ``f (A,)`` are projected by a tensor ``T (A, B, C)`` to ``B`` rows
    ``M_b (C,)``; for every kernel ``b`` the layer sums ``exp(-||M_i,b - M_j,b||_1)`` over the
    other samples ``j != i`` of the batch (self-similarity excluded, as in the reference code
    and in Kossen's). The ``B`` sums are appended to the features, so the discriminator can see
    when a batch lacks diversity (mode collapse).

    Args:
        in_features: A, the flattened feature width.
        num_kernels: B, number of similarity kernels (outputs appended).
        kernel_dim: C, dimension of each kernel's projection.

    Shapes:
        forward: ``(N, A)`` -> ``(N, A + B)``.
    """

    def __init__(self, in_features: int, num_kernels: int = 32, kernel_dim: int = 8) -> None:
        super().__init__()
        if num_kernels < 1 or kernel_dim < 1:
            raise ValueError(f"mbd_kernels and mbd_dim must be >= 1, got {num_kernels, kernel_dim}")
        self.num_kernels, self.kernel_dim = num_kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, num_kernels, kernel_dim) * _MBD_INIT_STD)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        m = torch.einsum("na,abc->nbc", features, self.T)  # (N, B, C)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=3)  # (N, N, B)
        # exp(-0) = 1 on the diagonal: subtract it to sum over the other samples only.
        similarity = torch.exp(-l1).sum(dim=1) - 1.0  # (N, B)
        return torch.cat([features, similarity], dim=1)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: stride-2 convs + BatchNorm (not first) + LeakyReLU(0.2) -> logit.

    Mirrors :class:`~synthmed.models.wgan.PairCritic` (widths double from ``base_channels``,
    capped at 8 x base, down to a ~4-voxel grid) but with BatchNorm, as in Radford et al.
    2016; the non-saturating GAN loss, unlike WGAN-GP, does not forbid batch coupling.

    Args:
        in_channels: image channels + label channels.
        spatial_size: input size, ``spatial_dims`` entries.
        spatial_dims: 2 or 3.
        base_channels: width of the first conv.
        kernel_size: conv kernel size.
        minibatch_discrimination: add a :class:`MinibatchDiscrimination` layer before the
            final linear (Salimans et al. 2016; Kossen et al. 2021).
        mbd_kernels / mbd_dim: B and C of that layer.

    Shapes:
        forward: x ``(N, in_channels, *spatial_size)`` -> logits ``(N,)``; with
        ``return_features=True`` also the flattened last conv features ``(N, feature_dim)``
        (taken before minibatch discrimination; used for feature matching).
    """

    def __init__(
        self,
        in_channels: int,
        spatial_size: tuple[int, ...],
        spatial_dims: int = 2,
        base_channels: int = 64,
        kernel_size: int = 5,
        minibatch_discrimination: bool = False,
        mbd_kernels: int = 32,
        mbd_dim: int = 8,
    ) -> None:
        super().__init__()
        self.spatial_size = _check_size(spatial_size, spatial_dims)
        self.n_down = num_resamplings(self.spatial_size)
        end_size = tuple(s // 2**self.n_down for s in self.spatial_size)
        layers: list[nn.Module] = []
        width_in = in_channels
        for i in range(self.n_down):
            width_out = _width(base_channels, i)
            # Radford et al.: no BatchNorm on the discriminator's input layer.
            layers.append(conv_layer(spatial_dims, width_in, width_out, kernel_size, 2, i == 0))
            if i > 0:
                layers.append(batch_norm_layer(spatial_dims, width_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width_in = width_out
        self.features = nn.Sequential(*layers)
        self.feature_dim = width_in * math.prod(end_size)
        self.mbd = (
            MinibatchDiscrimination(self.feature_dim, mbd_kernels, mbd_dim)
            if minibatch_discrimination
            else None
        )
        extra = mbd_kernels if minibatch_discrimination else 0
        self.logit = nn.Linear(self.feature_dim + extra, 1)
        self.apply(init_dcgan_weights)

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x).flatten(1)
        hidden = self.mbd(feats) if self.mbd is not None else feats
        logits = self.logit(hidden).squeeze(1)
        return (logits, feats) if return_features else logits


@MODELS.register("dcgan")
def build_dcgan(
    *,
    image_channels: int,
    label_channels: int,
    spatial_size: tuple[int, ...],
    spatial_dims: int = 2,
    latent_dim: int = 100,
    base_channels: int = 64,
    kernel_size: int = 5,
    minibatch_discrimination: bool = False,
    mbd_kernels: int = 32,
    mbd_dim: int = 8,
) -> GANModel:
    """DCGAN pair generator + discriminator (Radford 2016; Kossen 2021; Frid-Adar 2018).

    Output channels are ``image_channels + label_channels``; ``label_channels`` may be 0 for
    image-only data (Frid-Adar's lesion ROIs, one model per class). Kossen's setting:
    ``latent_dim=100``, ``kernel_size=5``, ``minibatch_discrimination=True``. Train with the
    ``dcgan`` method.
    """
    if image_channels < 1 or label_channels < 0:
        raise ValueError(
            f"need image_channels >= 1 and label_channels >= 0, got {image_channels}, "
            f"{label_channels}"
        )
    channels, size = image_channels + label_channels, tuple(spatial_size)
    generator = PairGenerator(latent_dim, channels, size, spatial_dims, base_channels, kernel_size)
    discriminator = DCGANDiscriminator(
        channels,
        size,
        spatial_dims,
        base_channels,
        kernel_size,
        minibatch_discrimination,
        mbd_kernels,
        mbd_dim,
    )
    return GANModel(
        generator,
        discriminator,
        latent_dim=latent_dim,
        image_channels=image_channels,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=spatial_dims,
    )
