"""WGAN-GP networks that generate image+label pairs in one tensor.

Kossen et al. 2021, "Synthesizing anonymized and labeled TOF-MRA patches for brain vessel
segmentation using generative adversarial networks" (Comput. Biol. Med.): a DCGAN-shaped
generator outputs the image and its label map as extra channels, so one GAN yields labelled
training data; the critic scores the concatenated pair. Trained with the WGAN-GP loss
(Gulrajani et al. 2017), optionally with spectral normalisation in the critic
(Miyato et al. 2018), which is the paper's best-performing variant.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from synthmed.models.base import GenerativeModel
from synthmed.models.blocks import (
    batch_norm_layer,
    check_spatial_dims,
    conv_layer,
    init_dcgan_weights,
    num_resamplings,
    up_conv_layer,
)
from synthmed.models.registry import MODELS

# Width stops doubling after 3 steps (8 x base), as in DCGAN, so large images stay affordable.
_MAX_WIDTH_DOUBLINGS = 3


def _width(base_channels: int, doublings: int) -> int:
    return base_channels * 2 ** min(doublings, _MAX_WIDTH_DOUBLINGS)


def _check_size(spatial_size: tuple[int, ...], spatial_dims: int) -> tuple[int, ...]:
    check_spatial_dims(spatial_dims)
    size = tuple(int(s) for s in spatial_size)
    if len(size) != spatial_dims:
        raise ValueError(f"spatial_size {size} must have {spatial_dims} entries (spatial_dims)")
    return size


class PairGenerator(nn.Module):
    """DCGAN-style generator: z -> linear -> small grid -> stride-2 up-convs -> tanh.

    The number of up-convs is chosen so the start grid is ~4-7 voxels per side (64 -> 4x4 with
    4 ups, 96 -> 6x6 with 4, 32 -> 4x4 with 3). Widths halve per up-block from
    ``base_channels * 2**(n_up - 1)`` (capped at 8 x base); the last up-conv emits the output.

    Args:
        latent_dim: length of z.
        out_channels: image channels + label channels.
        spatial_size: output size, ``spatial_dims`` entries, each divisible by ``2**n_up``.
        spatial_dims: 2 or 3.
        base_channels: width of the last hidden block.
        kernel_size: up-conv kernel size.

    Shapes:
        forward: z ``(N, latent_dim)`` -> ``(N, out_channels, *spatial_size)`` in [-1, 1].
    """

    def __init__(
        self,
        latent_dim: int,
        out_channels: int,
        spatial_size: tuple[int, ...],
        spatial_dims: int = 2,
        base_channels: int = 64,
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        self.spatial_size = _check_size(spatial_size, spatial_dims)
        self.latent_dim = latent_dim
        self.n_up = num_resamplings(self.spatial_size)
        self.start_size = tuple(s // 2**self.n_up for s in self.spatial_size)
        widths = [_width(base_channels, self.n_up - 1 - i) for i in range(self.n_up)]
        self.project = nn.Linear(latent_dim, widths[0] * math.prod(self.start_size), bias=False)
        self.start_norm = nn.Sequential(batch_norm_layer(spatial_dims, widths[0]), nn.ReLU(True))
        blocks: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            blocks += [
                up_conv_layer(spatial_dims, w_in, w_out, kernel_size, bias=False),
                batch_norm_layer(spatial_dims, w_out),
                nn.ReLU(True),
            ]
        blocks += [up_conv_layer(spatial_dims, widths[-1], out_channels, kernel_size), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)
        self.apply(init_dcgan_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], -1, *self.start_size)
        return self.blocks(self.start_norm(x))


class PairCritic(nn.Module):
    """WGAN critic: stride-2 convs + LeakyReLU(0.2), no normalisation, linear -> one score.

    No BatchNorm: the gradient penalty is defined per sample, and batch statistics would couple
    samples (Gulrajani et al. 2017, Sec. 4). Mirrors :class:`PairGenerator` (widths double from
    ``base_channels``, capped at 8 x base, down to the same small grid).

    Args:
        in_channels: image channels + label channels.
        spatial_size: input size, ``spatial_dims`` entries.
        spatial_dims: 2 or 3.
        base_channels: width of the first conv.
        kernel_size: conv kernel size.
        spectral_norm: wrap every conv and linear with spectral normalisation (Miyato 2018).

    Shapes:
        forward: x ``(N, in_channels, *spatial_size)`` -> scores ``(N,)`` (unbounded).
    """

    def __init__(
        self,
        in_channels: int,
        spatial_size: tuple[int, ...],
        spatial_dims: int = 2,
        base_channels: int = 64,
        kernel_size: int = 5,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.spatial_size = _check_size(spatial_size, spatial_dims)
        self.n_down = num_resamplings(self.spatial_size)
        end_size = tuple(s // 2**self.n_down for s in self.spatial_size)
        layers: list[nn.Module] = []
        width_in = in_channels
        for i in range(self.n_down):
            width_out = _width(base_channels, i)
            layers += [
                conv_layer(spatial_dims, width_in, width_out, kernel_size, stride=2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width_in = width_out
        self.features = nn.Sequential(*layers)
        self.score = nn.Linear(width_in * math.prod(end_size), 1)
        self.apply(init_dcgan_weights)
        self.spectral_norm = spectral_norm
        if spectral_norm:
            # Wrap after init: the parametrisation keeps the initialised weight as `original`.
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                    _spectral_norm(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x).flatten(1)).squeeze(1)


class GANModel(GenerativeModel):
    """A pair generator/critic (kind ``pair``).

    Shapes:
        generate: z ``(N, latent_dim)`` -> ``(N, image_channels + label_channels, *spatial_size)``
        in [-1, 1]; channels ``[:image_channels]`` are the image, the rest the label map(s).
    """

    kind = "pair"
    critic_scores_pairs = True

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Map latents to image+label pairs (see class docstring for shapes)."""
        return self.generator(z)

    def synthesize(self, z=None, classes=None, condition=None) -> torch.Tensor:
        return self.generator(z)

    forward = generate


def _build_pair_wgan(
    spectral_norm: bool,
    *,
    image_channels: int,
    label_channels: int,
    spatial_size: tuple[int, ...],
    spatial_dims: int = 2,
    latent_dim: int = 128,
    base_channels: int = 64,
    kernel_size: int = 5,
) -> GANModel:
    channels = image_channels + label_channels
    size = tuple(spatial_size)
    generator = PairGenerator(latent_dim, channels, size, spatial_dims, base_channels, kernel_size)
    critic = PairCritic(channels, size, spatial_dims, base_channels, kernel_size, spectral_norm)
    return GANModel(
        generator,
        critic,
        latent_dim=latent_dim,
        image_channels=image_channels,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=spatial_dims,
    )


@MODELS.register("wgan_gp")
def build_wgan_gp(**kwargs) -> GANModel:
    """WGAN-GP pair GAN (Kossen et al. 2021; Gulrajani et al. 2017), plain critic.

    Keyword arguments as :func:`_build_pair_wgan` (image_channels, label_channels,
    spatial_size, spatial_dims, latent_dim, base_channels, kernel_size).
    """
    return _build_pair_wgan(False, **kwargs)


@MODELS.register("wgan_gp_sn")
def build_wgan_gp_sn(**kwargs) -> GANModel:
    """WGAN-GP pair GAN with a spectrally normalised critic (Kossen et al. 2021, best variant)."""
    return _build_pair_wgan(True, **kwargs)
