"""pix2pix: U-Net generator + PatchGAN critic translating a label map into an image.

Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks": a U-Net
with skip connections whose only noise is dropout, trained against a 70x70 PatchGAN with an
adversarial + 100 x L1 loss (method ``pix2pix`` in ``synthmed.training.methods_translation``).
Shin et al. 2018 use it in 3D to make brain MRI from (edited) tumour label maps; Platscher et
al. 2021 in 2D/3D with InstanceNorm; Guibas et al. 2017 as stage II (vessel mask -> fundus).
"""

from __future__ import annotations

import torch
from monai.networks.layers.utils import get_norm_layer
from torch import nn

from synthmed.models.blocks import conv_layer, init_dcgan_weights, up_conv_layer
from synthmed.models.registry import MODELS
from synthmed.models.translator import (
    MultiScalePatchCritic,
    TranslatorModel,
    check_size,
    monai_norm,
)

_KERNEL = 4  # 4x4 stride-2 convs throughout (Isola 2017, Sec. 6.1.1)
_MAX_WIDTH_DOUBLINGS = 3  # widths stop at 8 x base (C64-C128-C256-C512-C512-...)
_DROPOUT_BLOCKS = 3  # decoder blocks next to the innermost one get dropout ("CD512" x 3)


def unet_depth(spatial_size: tuple[int, ...], max_downs: int = 8) -> int:
    """Stride-2 levels of the U-Net: halve while every side is even, down to 1-2 px, <= 8.

    Examples: 256 -> 8 (1x1 bottleneck), 32 -> 5 (1x1), 96 -> 5 (3x3), 16^3 -> 4.

    Raises:
        ValueError: if fewer than 2 levels fit (a side is odd or below 4).
    """
    size, depth = list(spatial_size), 0
    while depth < max_downs and min(size) >= 2 and all(s % 2 == 0 for s in size):
        size, depth = [s // 2 for s in size], depth + 1
    if depth < 2:
        raise ValueError(
            f"spatial_size {tuple(spatial_size)} allows {depth} U-Net levels; "
            "pix2pix needs sides that halve at least twice (e.g. multiples of 16)"
        )
    return depth


def _down_block(
    spatial_dims: int, c_in: int, c_out: int, norm: str | None, outermost: bool, bias: bool
) -> nn.Sequential:
    """LeakyReLU(0.2) -> 4x4/2 conv -> norm; the outermost block has no activation or norm,
    the innermost (``norm=None``) no norm (its output may be 1 voxel)."""
    layers: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]  # not in place: skips
    layers.append(conv_layer(spatial_dims, c_in, c_out, _KERNEL, stride=2, bias=bias))
    if norm is not None and not outermost:
        layers.append(get_norm_layer(norm, spatial_dims=spatial_dims, channels=c_out))
    return nn.Sequential(*layers)


def _up_block(
    spatial_dims: int, c_in: int, c_out: int, norm: str | None, dropout: float, bias: bool
) -> nn.Sequential:
    """ReLU -> 4x4/2 up-conv -> norm [-> dropout]; ``norm=None`` marks the output block (tanh)."""
    layers: list[nn.Module] = [nn.ReLU(inplace=True)]
    if norm is None:  # outermost: always a bias, then tanh to [-1, 1]
        layers += [up_conv_layer(spatial_dims, c_in, c_out, _KERNEL), nn.Tanh()]
        return nn.Sequential(*layers)
    layers.append(up_conv_layer(spatial_dims, c_in, c_out, _KERNEL, bias=bias))
    layers.append(get_norm_layer(norm, spatial_dims=spatial_dims, channels=c_out))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Pix2PixGenerator(nn.Module):
    """U-Net generator of Isola et al. 2017 for 2D and 3D label maps.

    ``depth`` = :func:`unet_depth` stride-2 levels; level ``i`` has width
    ``base * 2**min(i, 3)``. Encoder: LeakyReLU(0.2) + conv + norm (none on the first and the
    innermost level); decoder: ReLU + up-conv + norm, with dropout in the three decoder blocks
    next to the innermost one, each fed ``concat(skip, previous)``; tanh output. Dropout is the
    only noise: in ``eval()`` the generator is deterministic (Isola kept dropout on at test
    time; call ``train()`` on the generator for that behaviour).

    Args:
        in_channels: condition channels K (one-hot, background first).
        out_channels: image channels.
        spatial_size: input/output size, ``spatial_dims`` entries.
        spatial_dims: 2 or 3.
        base_channels: width of the first level (Isola: 64).
        norm: ``instance`` (Platscher 2021) or ``batch`` (Isola 2017).
        dropout: dropout probability in the inner decoder blocks (Isola: 0.5).
        max_downs: cap on the depth (Isola's unet_256: 8).

    Shapes:
        forward: condition ``(N, K, *spatial_size)`` in {0, 1}, z ignored ->
        ``(N, out_channels, *spatial_size)`` in [-1, 1].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        spatial_size: tuple[int, ...],
        spatial_dims: int = 2,
        base_channels: int = 64,
        norm: str = "instance",
        dropout: float = 0.5,
        max_downs: int = 8,
    ) -> None:
        super().__init__()
        self.spatial_size = check_size(spatial_size, spatial_dims)
        self.depth = depth = unet_depth(self.spatial_size, max_downs)
        name, bias = monai_norm(norm), norm != "batch"  # InstanceNorm has no affine shift
        w = [base_channels * 2 ** min(i, _MAX_WIDTH_DOUBLINGS) for i in range(depth)]
        dropout_levels = range(max(1, depth - 1 - _DROPOUT_BLOCKS), depth - 1)
        self.downs = nn.ModuleList(
            _down_block(
                spatial_dims,
                in_channels if i == 0 else w[i - 1],
                w[i],
                None if i == depth - 1 else name,
                outermost=i == 0,
                bias=bias or i in (0, depth - 1),
            )
            for i in range(depth)
        )
        self.ups = nn.ModuleList(
            _up_block(
                spatial_dims,
                w[i] if i == depth - 1 else 2 * w[i],
                out_channels if i == 0 else w[i - 1],
                None if i == 0 else name,
                dropout if i in dropout_levels else 0.0,
                bias,
            )
            for i in range(depth)
        )
        self.apply(init_dcgan_weights)  # N(0, 0.02), BatchNorm gamma N(1, 0.02) as in pix2pix

    def forward(self, condition: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        skips, h = [], condition
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = self.ups[-1](skips[-1])
        for level in range(self.depth - 2, -1, -1):
            h = self.ups[level](torch.cat([skips[level], h], dim=1))
        return h


@MODELS.register("pix2pix")
def build_pix2pix(
    *,
    image_channels: int,
    label_channels: int,
    spatial_size: tuple[int, ...],
    spatial_dims: int = 2,
    latent_dim: int = 0,
    base_channels: int = 64,
    kernel_size: int = 4,
    norm: str = "instance",
    dropout: float = 0.5,
    n_layers_d: int = 3,
) -> TranslatorModel:
    """pix2pix translator (Isola 2017; Shin 2018, Platscher 2021, Guibas 2017 stage II).

    Args:
        image_channels / label_channels: data channels; the condition has
            ``label_channels + 1`` one-hot channels.
        spatial_size / spatial_dims: image size and 2 or 3.
        latent_dim: accepted and ignored (the training loop always passes it): pix2pix takes no
            z, dropout is its noise; the model reports ``latent_dim = 0``.
        base_channels: generator and critic width (Isola: 64).
        kernel_size: accepted and ignored: the architecture is defined by 4x4 convs, and the
            config default (5, for DCGAN-style models) would change the 70x70 receptive field.
        norm: ``instance`` (default, Platscher 2021) or ``batch`` (Isola 2017), G and D.
        dropout: generator dropout (0.5).
        n_layers_d: PatchGAN depth (3 -> 70x70), trimmed for small inputs.

    Returns:
        A :class:`TranslatorModel` with a :class:`Pix2PixGenerator` and a one-scale
        :class:`MultiScalePatchCritic`.
    """
    del latent_dim, kernel_size  # see Args
    size = check_size(spatial_size, spatial_dims)
    k = label_channels + 1
    generator = Pix2PixGenerator(
        k, image_channels, size, spatial_dims, base_channels, norm=norm, dropout=dropout
    )
    critic = MultiScalePatchCritic(
        k + image_channels,
        size,
        spatial_dims,
        base_channels,
        n_layers=n_layers_d,
        num_scales=1,
        norm=norm,
        bias=norm == "instance",
    )
    return TranslatorModel(
        generator,
        critic,
        latent_dim=0,
        image_channels=image_channels,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=spatial_dims,
    )
