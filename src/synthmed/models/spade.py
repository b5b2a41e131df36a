"""SPADE: a generator normalised by the label map, judged by a multi-scale PatchGAN.

Park et al. 2019, "Semantic Image Synthesis with Spatially-Adaptive Normalization": residual
blocks upsample from a small grid, and every normalisation is modulated per voxel by gamma and
beta maps predicted from the (resized) label map, so the layout is not washed out by
normalisation. Trained with the hinge loss plus discriminator feature matching (method
``spade`` in ``synthmed.training.methods_translation``). Platscher et al. 2021 compare it with
pix2pix for DWI synthesis from 29-class label maps, in 2D and 3D.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.networks.blocks.spade_norm import SPADE
from monai.networks.nets.spade_network import SPADENetResBlock
from torch import nn

from synthmed.models.blocks import conv_layer, init_dcgan_weights, num_resamplings
from synthmed.models.registry import MODELS
from synthmed.models.translator import MultiScalePatchCritic, TranslatorModel, check_size

_MAX_WIDTH_DOUBLINGS = 3  # widths stop at 8 x base (Park: 16 x nf at the start grid)


def plain_modulation(spade: SPADE, spatial_dims: int) -> None:
    """Swap MONAI SPADE's gamma/beta layers for plain convs, in place.

    MONAI 1.6 builds ``mlp_gamma``/``mlp_beta`` with ``Convolution``'s default InstanceNorm, so
    the predicted modulation maps are re-normalised per sample; Park 2019 predicts them with
    plain convs (zero-mean, unit-variance gamma would also lose the modulation's strength).
    """
    gamma, beta = spade.mlp_gamma.conv, spade.mlp_beta.conv
    spade.mlp_gamma = conv_layer(
        spatial_dims, gamma.in_channels, gamma.out_channels, gamma.kernel_size[0]
    )
    spade.mlp_beta = conv_layer(
        spatial_dims, beta.in_channels, beta.out_channels, beta.kernel_size[0]
    )


class SpadeGenerator(nn.Module):
    """SPADE generator (Park et al. 2019) for 2D and 3D label maps.

    Starts from a grid of 4-7 voxels per side (:func:`~synthmed.models.blocks.num_resamplings`
    factor-2 steps below ``spatial_size``): a linear map of z when ``latent_dim > 0`` (Park's
    noise mode), else a conv of the label map resized to that grid (Park's ``--use_vae``-free
    default). Then ``n_up + 1`` MONAI ``SPADENetResBlock``s with nearest 2x upsampling between
    them, so the last block works at full resolution; widths halve from ``8 x base`` to
    ``base``. Each SPADE layer resizes the label map to its input (nearest) and uses
    InstanceNorm as the parameter-free norm (Platscher 2021). Output: LeakyReLU -> conv -> tanh.

    Args:
        label_nc: condition channels K (one-hot, background first).
        out_channels: image channels.
        spatial_size: output size, ``spatial_dims`` entries.
        spatial_dims: 2 or 3.
        latent_dim: length of z (0: no z, deterministic given the label map).
        base_channels: width of the last block; SPADE hidden width is ``2 x base`` (Park: 128).
        kernel_size: kernel of the SPADE modulation, start and output convs (Park: 3).

    Shapes:
        forward: condition ``(N, K, *spatial_size)`` in {0, 1}, z ``(N, latent_dim)`` or None
        (drawn from the global torch RNG when ``latent_dim > 0``) ->
        ``(N, out_channels, *spatial_size)`` in [-1, 1].
    """

    def __init__(
        self,
        label_nc: int,
        out_channels: int,
        spatial_size: tuple[int, ...],
        spatial_dims: int = 2,
        latent_dim: int = 0,
        base_channels: int = 64,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.spatial_size = check_size(spatial_size, spatial_dims)
        self.latent_dim = latent_dim
        self.n_up = n_up = num_resamplings(self.spatial_size)
        self.start_size = tuple(s // 2**n_up for s in self.spatial_size)
        widths = [base_channels * 2 ** min(n_up - j, _MAX_WIDTH_DOUBLINGS) for j in range(n_up + 1)]
        if latent_dim > 0:
            self.start = nn.Linear(latent_dim, widths[0] * math.prod(self.start_size))
        else:
            self.start = conv_layer(spatial_dims, label_nc, widths[0], kernel_size)
        self.blocks = nn.ModuleList(
            SPADENetResBlock(
                spatial_dims,
                w_in,
                w_out,
                label_nc,
                spade_intermediate_channels=2 * base_channels,
                norm="INSTANCE",
                kernel_size=kernel_size,
            )
            for w_in, w_out in zip(widths[:1] + widths[:-1], widths, strict=True)
        )
        for module in [m for m in self.modules() if isinstance(m, SPADE)]:
            plain_modulation(module, spatial_dims)
        self.to_image = nn.Sequential(
            nn.LeakyReLU(0.2),
            conv_layer(spatial_dims, widths[-1], out_channels, kernel_size),
            nn.Tanh(),
        )
        self.apply(init_dcgan_weights)  # small N(0, 0.02) weights: gamma starts near 0

    def forward(self, condition: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        n = condition.shape[0]
        if self.latent_dim > 0:
            if z is None:
                z = torch.randn(n, self.latent_dim, device=condition.device)
            x = self.start(z).view(n, -1, *self.start_size)
        else:
            x = self.start(F.interpolate(condition, size=self.start_size, mode="nearest"))
        x = self.blocks[0](x, condition)
        for block in self.blocks[1:]:
            x = block(F.interpolate(x, scale_factor=2.0, mode="nearest"), condition)
        return self.to_image(x)


@MODELS.register("spade")
def build_spade(
    *,
    image_channels: int,
    label_channels: int,
    spatial_size: tuple[int, ...],
    spatial_dims: int = 2,
    latent_dim: int = 0,
    base_channels: int = 64,
    kernel_size: int = 3,
    num_d_scales: int = 2,
    n_layers_d: int = 3,
) -> TranslatorModel:
    """SPADE translator (Park 2019; Platscher 2021) with a spectral-instance-norm critic.

    Args:
        image_channels / label_channels: data channels; the condition has
            ``label_channels + 1`` one-hot channels.
        spatial_size / spatial_dims: image size and 2 or 3.
        latent_dim: z length; 0 starts from the downsampled label map (no z).
        base_channels: generator and critic width (Park: 64).
        kernel_size: SPADE modulation kernel (Park: 3).
        num_d_scales: discriminators at 1, 1/2, ... input scale (Park: 2).
        n_layers_d: PatchGAN depth per scale (MONAI ``num_layers_d``; 3 = Park's
            ``n_layers_D=4``), trimmed for small inputs.

    Returns:
        A :class:`TranslatorModel` with a :class:`SpadeGenerator` and a
        :class:`MultiScalePatchCritic` (InstanceNorm, no bias, spectral norm).
    """
    size = check_size(spatial_size, spatial_dims)
    k = label_channels + 1
    generator = SpadeGenerator(
        k, image_channels, size, spatial_dims, latent_dim, base_channels, kernel_size
    )
    critic = MultiScalePatchCritic(
        k + image_channels,
        size,
        spatial_dims,
        base_channels,
        n_layers=n_layers_d,
        num_scales=num_d_scales,
        norm="instance",
        bias=False,
        spectral_norm=True,
    )
    return TranslatorModel(
        generator,
        critic,
        latent_dim=latent_dim,
        image_channels=image_channels,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=spatial_dims,
    )
