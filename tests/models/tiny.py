"""Tiny registered models for fast tests (width 4, z of 8, seeded)."""

from __future__ import annotations

import torch

from synthmed.models.registry import MODELS


def tiny_model(name: str, size=(16, 16), label_channels: int = 1, **options):
    """``MODELS.build(name, ...)`` with one image channel, latent 8, base width 4, seed 0."""
    torch.manual_seed(0)
    return MODELS.build(
        name,
        image_channels=1,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=len(size),
        latent_dim=8,
        base_channels=4,
        **options,
    )
