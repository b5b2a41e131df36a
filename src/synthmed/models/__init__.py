"""synthmed.models: generators, critics and segmentation networks, chosen by name.

Example:
    >>> from synthmed.models import MODELS
    >>> gan = MODELS.build("wgan_gp_sn", image_channels=1, label_channels=1, spatial_size=(32, 32))
"""

from __future__ import annotations

# Imported explicitly (not discovered) so that every registration runs on package import.
from synthmed.models import (
    acgan,
    dcgan,
    diffusion,
    mask_gan,
    pix2pix,
    segmentation,
    spade,
    translator,
    wgan,
)
from synthmed.models.acgan import ACGANModel, build_acgan
from synthmed.models.base import MODEL_KINDS, GenerativeModel
from synthmed.models.dcgan import DCGANDiscriminator, MinibatchDiscrimination, build_dcgan
from synthmed.models.mask_gan import MaskGANModel, build_mask_gan, decode_mask
from synthmed.models.pix2pix import Pix2PixGenerator, build_pix2pix
from synthmed.models.registry import MODELS
from synthmed.models.segmentation import build_unet
from synthmed.models.spade import SpadeGenerator, build_spade
from synthmed.models.translator import MultiScalePatchCritic, TranslatorModel
from synthmed.models.wgan import GANModel, PairCritic, PairGenerator

__all__ = [
    "MODELS",
    "MODEL_KINDS",
    "ACGANModel",
    "DCGANDiscriminator",
    "GANModel",
    "GenerativeModel",
    "MaskGANModel",
    "MinibatchDiscrimination",
    "MultiScalePatchCritic",
    "PairCritic",
    "PairGenerator",
    "Pix2PixGenerator",
    "SpadeGenerator",
    "TranslatorModel",
    "acgan",
    "build_acgan",
    "build_dcgan",
    "build_mask_gan",
    "build_pix2pix",
    "build_spade",
    "build_unet",
    "dcgan",
    "diffusion",
    "decode_mask",
    "mask_gan",
    "pix2pix",
    "segmentation",
    "spade",
    "translator",
    "wgan",
]
