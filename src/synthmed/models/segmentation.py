"""Segmentation U-Net used to measure the utility of synthetic data.

A thin factory over MONAI's residual U-Net (Kerfoot et al. 2018, after Ronneberger et al. 2015),
so utility evaluation trains the same, well-tested network on real and on synthetic data.
"""

from __future__ import annotations

from monai.networks.nets import UNet
from torch import nn

from synthmed.models.blocks import check_spatial_dims
from synthmed.models.registry import MODELS


@MODELS.register("unet")
def build_unet(
    spatial_dims: int = 2,
    in_channels: int = 1,
    out_channels: int = 2,
    channels: tuple[int, ...] = (16, 32, 64, 128),
    strides: tuple[int, ...] | None = None,
    num_res_units: int = 1,
    dropout: float = 0.0,
) -> nn.Module:
    """Build a MONAI U-Net that outputs per-class logits.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input image channels.
        out_channels: number of classes (background included).
        channels: feature widths per level, coarsest last.
        strides: downsampling per level transition; default 2 everywhere
            (``len(channels) - 1`` entries). Each spatial size must be divisible by their product.
        num_res_units: residual units per block (0 gives plain conv blocks).
        dropout: dropout probability inside the blocks.

    Returns:
        Module mapping ``(N, in_channels, *spatial)`` to logits ``(N, out_channels, *spatial)``.
    """
    check_spatial_dims(spatial_dims)
    channels = tuple(channels)
    if len(channels) < 2:
        raise ValueError(f"channels needs at least 2 levels, got {channels}")
    strides = (2,) * (len(channels) - 1) if strides is None else tuple(strides)
    if len(strides) != len(channels) - 1:
        raise ValueError(
            f"strides {strides} must have len(channels) - 1 = {len(channels) - 1} entries"
        )
    return UNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=channels,
        strides=strides,
        num_res_units=num_res_units,
        dropout=dropout,
    )
