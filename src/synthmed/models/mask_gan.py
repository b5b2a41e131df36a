"""Mask GAN: generates label maps alone (kind ``mask``), trained with WGAN-GP.

Stage I of a two-stage pipeline: new geometry first, then a label-map -> image translator.
Guibas et al. 2017 generate retinal vessel trees; Platscher et al. 2021 a Wasserstein GAN for
stroke-lesion masks (z = 128); multi-class anatomy+lesion maps work the same way. The label map
is encoded as in :mod:`synthmed.data.pairs` (K-1 foreground channels at -1/+1), so the
generator is the DCGAN-shaped :class:`~synthmed.models.wgan.PairGenerator` with
``out_channels = label_channels`` and the critic is :class:`~synthmed.models.wgan.PairCritic`
(optionally spectrally normalised). The ``wgan_gp`` method feeds it only the label channels.

Decoding (:func:`decode_mask`) is the rule of :func:`synthmed.data.pairs.decode_pairs`: a voxel
is foreground when its strongest channel exceeds ``threshold``, and then takes class
``argmax + 1``; otherwise it is background 0. Every output is therefore a valid label map with
values in ``{0, ..., label_channels}``.

A mask GAN may be trained smaller than the data (``output_size`` larger than
``spatial_size``, set by ``mask_stage.size``): :meth:`MaskGANModel.to_output_size` then scales
its soft channels up (bilinear / trilinear) before decoding, so outlines stay smooth.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from synthmed.data.pairs import decode_pairs
from synthmed.models.base import GenerativeModel
from synthmed.models.blocks import resize_channels
from synthmed.models.registry import MODELS
from synthmed.models.wgan import PairCritic, PairGenerator


def _remove_small_components(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set connected components (per class, full connectivity) smaller than ``min_size`` to 0.

    Full (26-/8-) connectivity keeps thin diagonal vessels in one piece.
    """
    out = labels.copy()
    structure = ndimage.generate_binary_structure(labels.ndim, labels.ndim)
    for k in np.unique(labels[labels > 0]):
        components, _ = ndimage.label(labels == k, structure=structure)
        sizes = np.bincount(components.ravel())
        small = sizes < min_size
        small[0] = False  # component 0 is everything outside class k
        out[small[components]] = 0
    return out


def decode_mask(
    channels: torch.Tensor, threshold: float = 0.0, min_component_size: int = 0
) -> torch.Tensor:
    """Turn generated label channels into integer label maps.

    Args:
        channels: ``(N, C_lbl, *S)`` label channels in [-1, 1] (mask GAN output).
        threshold: tanh-range value the strongest channel must exceed to mark foreground
            (Kossen 2021 used 0.8; 0 is the sign of the channel).
        min_component_size: off (0) by default. When > 0, connected components of each class
            with fewer voxels are set to background (scipy.ndimage, full connectivity), e.g. to
            drop speckles from a binary lesion or vessel mask.

    Returns:
        ``(N, *S)`` int64 with values in ``{0, ..., C_lbl}`` (0 = background, k = channel k-1).
    """
    _, labels = decode_pairs(channels, image_channels=0, threshold=threshold)
    if min_component_size <= 0:
        return labels
    cleaned = [_remove_small_components(m, min_component_size) for m in labels.cpu().numpy()]
    return torch.as_tensor(np.stack(cleaned), device=labels.device)


class MaskGANModel(GenerativeModel):
    """A label-map generator/critic pair (kind ``mask``).

    Shapes:
        generate: z ``(N, latent_dim)`` -> ``(N, label_channels, *spatial_size)`` in [-1, 1].
        decode: that -> ``(N, *spatial_size)`` int64 label maps (see :func:`decode_mask`).
    """

    kind = "mask"
    label_only = True

    def __init__(self, *args, output_size: tuple[int, ...] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.output_size = tuple(output_size) if output_size else tuple(self.spatial_size)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Map latents to label channels at the training size (see class docstring)."""
        return self.generator(z)

    def to_output_size(self, channels: torch.Tensor) -> torch.Tensor:
        """Channels at the training size -> at ``output_size`` (identity when they match)."""
        return resize_channels(channels, self.output_size)

    forward = generate

    def synthesize(self, z=None, classes=None, condition=None) -> torch.Tensor:
        """Label channels at ``output_size`` next to a black (-1) image."""
        labels = self.to_output_size(self.generator(z))
        shape = (labels.shape[0], self.image_channels, *labels.shape[2:])
        return torch.cat([labels.new_full(shape, -1.0), labels], dim=1)

    def decode(
        self, channels: torch.Tensor, threshold: float = 0.0, min_component_size: int = 0
    ) -> torch.Tensor:
        """Label maps from generated channels; see :func:`decode_mask`."""
        return decode_mask(channels, threshold, min_component_size)


@MODELS.register("mask_gan")
def build_mask_gan(
    *,
    image_channels: int,
    label_channels: int,
    spatial_size: tuple[int, ...],
    spatial_dims: int = 2,
    latent_dim: int = 128,
    base_channels: int = 64,
    kernel_size: int = 5,
    spectral_norm: bool = False,
    output_size: tuple[int, ...] | None = None,
) -> MaskGANModel:
    """WGAN-GP mask GAN (Guibas 2017 stage I; Platscher 2021 lesion GAN). Train with ``wgan_gp``.

    ``image_channels`` is recorded (the translator of stage II generates the image), not
    generated. ``spectral_norm`` wraps the critic's layers (Miyato 2018). ``output_size``: the
    size sampled maps are scaled to (default ``spatial_size``, the training size).
    """
    if label_channels < 1:
        raise ValueError(f"mask_gan needs label_channels >= 1, got {label_channels}")
    size = tuple(spatial_size)
    generator = PairGenerator(
        latent_dim, label_channels, size, spatial_dims, base_channels, kernel_size
    )
    critic = PairCritic(
        label_channels, size, spatial_dims, base_channels, kernel_size, spectral_norm
    )
    return MaskGANModel(
        generator,
        critic,
        latent_dim=latent_dim,
        image_channels=image_channels,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=spatial_dims,
        output_size=None if output_size is None else tuple(int(s) for s in output_size),
    )
