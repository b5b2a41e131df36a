"""Tests for the segmentation U-Net factory."""

from __future__ import annotations

import pytest
import torch

from synthmed.models import MODELS, build_unet


@pytest.mark.parametrize(("spatial_dims", "size"), [(2, (32, 32)), (3, (16, 16, 16))])
def test_unet_outputs_logits_per_class(spatial_dims: int, size: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = build_unet(spatial_dims=spatial_dims, in_channels=1, out_channels=3, channels=(4, 8, 16))
    assert net(torch.randn(2, 1, *size)).shape == (2, 3, *size)


def test_unet_is_registered() -> None:
    net = MODELS.build("unet", spatial_dims=2, channels=(4, 8), strides=(2,))
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 2, 16, 16)


def test_unet_rejects_mismatched_strides() -> None:
    with pytest.raises(ValueError, match="strides"):
        build_unet(channels=(4, 8, 16), strides=(2,))
