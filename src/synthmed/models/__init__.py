"""synthmed.models: generators, critics and segmentation networks, chosen by name.

Example:
    >>> from synthmed.models import MODELS
    >>> gan = MODELS.build("wgan_gp_sn", image_channels=1, label_channels=1, spatial_size=(32, 32))
"""

from __future__ import annotations

# Imported explicitly (not discovered) so that every registration runs on package import.
from synthmed.models import segmentation, wgan
from synthmed.models.registry import MODELS
from synthmed.models.segmentation import build_unet
from synthmed.models.wgan import GANModel, PairCritic, PairGenerator

__all__ = [
    "MODELS",
    "GANModel",
    "PairCritic",
    "PairGenerator",
    "build_unet",
    "segmentation",
    "wgan",
]
