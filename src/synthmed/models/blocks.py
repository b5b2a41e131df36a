"""Dimension-generic layer factories shared by the networks.

Following MONAI, one network class serves 2D and 3D by picking ``torch.nn`` layers from
``spatial_dims`` instead of keeping copy-pasted 2D/3D files.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BATCH_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def check_spatial_dims(spatial_dims: int) -> None:
    """Raise ValueError unless ``spatial_dims`` is 2 or 3 (the only layouts we ship)."""
    if spatial_dims not in _CONV:
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")


def conv_layer(
    spatial_dims: int, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, bias: bool = True
) -> nn.Module:
    """Conv with padding ``(k - 1) // 2``, so stride 2 halves an even size exactly (any k)."""
    check_spatial_dims(spatial_dims)
    padding = (kernel_size - 1) // 2
    return _CONV[spatial_dims](
        in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=bias
    )


def up_conv_layer(
    spatial_dims: int, in_ch: int, out_ch: int, kernel_size: int, bias: bool = True
) -> nn.Module:
    """Transposed conv with stride 2 that exactly doubles each spatial size (any k >= 2).

    Output size is ``2 * (n - 1) - 2 * p + k + op``; choosing ``op = 2 + 2p - k`` gives ``2n``.
    """
    check_spatial_dims(spatial_dims)
    if kernel_size < 2:
        raise ValueError(f"kernel_size must be >= 2 for a stride-2 up-conv, got {kernel_size}")
    padding = (kernel_size - 1) // 2
    output_padding = 2 + 2 * padding - kernel_size
    return _CONV_T[spatial_dims](
        in_ch,
        out_ch,
        kernel_size,
        stride=2,
        padding=padding,
        output_padding=output_padding,
        bias=bias,
    )


def batch_norm_layer(spatial_dims: int, channels: int) -> nn.Module:
    """BatchNorm for ``spatial_dims`` (generator only: WGAN-GP critics must not batch-normalise)."""
    check_spatial_dims(spatial_dims)
    return _BATCH_NORM[spatial_dims](channels)


def group_norm_like(batch_norm: nn.modules.batchnorm._BatchNorm, max_groups: int = 32) -> nn.Module:
    """GroupNorm over the same channels (Wu & He 2018): ``gcd(C, max_groups)`` groups, the
    BatchNorm's affine weights copied. Per-sample statistics, so a per-sample gradient exists
    (what DP-SGD clips); batch statistics would mix the records of a batch."""
    channels = batch_norm.num_features
    norm = nn.GroupNorm(math.gcd(channels, max_groups), channels, batch_norm.eps, batch_norm.affine)
    if batch_norm.affine:
        with torch.no_grad():
            norm.weight.copy_(batch_norm.weight)
            norm.bias.copy_(batch_norm.bias)
        norm.to(batch_norm.weight.device)
    return norm


def batch_norm_to_group_norm(net: nn.Module) -> int:
    """Replace every BatchNorm in ``net`` by :func:`group_norm_like`, in place; returns how many."""
    count = 0
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, group_norm_like(child))
            count += 1
        else:
            count += batch_norm_to_group_norm(child)
    return count


def num_resamplings(spatial_size: tuple[int, ...], min_start: int = 4, max_steps: int = 6) -> int:
    """Number of factor-2 resampling steps so the coarsest grid is small but >= ``min_start``.

    Examples: 64 -> 4 (4x4 start), 96 -> 4 (6x6), 32 -> 3 (4x4), 16 -> 2 (4x4).

    Raises:
        ValueError: if the size is too small for one step or not divisible by ``2**steps``.
    """
    smallest = min(spatial_size)
    if smallest < 2 * min_start:
        raise ValueError(
            f"spatial_size {tuple(spatial_size)} is too small: each size must be >= {2 * min_start}"
        )
    steps = min(int(math.log2(smallest / min_start)), max_steps)
    factor = 2**steps
    if any(s % factor for s in spatial_size):
        nearest = tuple(max(factor, round(s / factor) * factor) for s in spatial_size)
        raise ValueError(
            f"spatial_size {tuple(spatial_size)} must be divisible by 2**{steps}={factor} "
            f"({steps} resampling steps down to a start grid >= {min_start}); try {nearest}"
        )
    return steps


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN init (Radford et al. 2016): conv/linear ~ N(0, 0.02), BatchNorm gamma ~ N(1, 0.02).

    Use with ``net.apply(init_dcgan_weights)``.
    """
    if isinstance(
        module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
    ):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def resize_channels(channels: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(N, C, *S) -> (N, C, *size) by (tri)linear interpolation; identity when S == size
    (a cascade's stage-I label channels, trained smaller than the translator's images)."""
    if tuple(channels.shape[2:]) == tuple(size):
        return channels
    mode = "bilinear" if channels.dim() == 4 else "trilinear"
    return F.interpolate(channels, size=tuple(size), mode=mode, align_corners=False)
