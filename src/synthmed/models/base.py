"""The contract every registered generative model fulfils.

The trainer and the sampler only talk to this interface: a ``generator`` and a ``critic``
(discriminator) module plus metadata. ``kind`` says how the generator is driven:

* ``pair``: ``generator(z) -> (N, C_img + C_lbl, *S)`` image+label pairs in [-1, 1]
  (Kossen 2021; DCGAN, WGAN-GP, WGAN-GP-SN).
* ``class_pair``: ``generator(z, classes) -> (N, C_img + C_lbl, *S)``; ``classes`` (N,) long
  (AC-GAN, Frid-Adar 2018). ``C_lbl`` may be 0 for image-only data.
* ``translator``: ``generator(condition, z=None) -> (N, C_img, *S)`` in [-1, 1]; ``condition``
  is a one-hot label map (N, K, *S) in {0, 1} with background as channel 0 (pix2pix, SPADE).
* ``mask``: ``generator(z) -> (N, C_lbl, *S)`` label channels in [-1, 1] (mask GAN; Guibas
  2017 stage I, Platscher 2021 lesion GAN).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

MODEL_KINDS = ("pair", "class_pair", "translator", "mask")


class GenerativeModel(nn.Module):
    """A generator/critic pair plus what the trainer and sampler need to drive them.

    Attributes:
        kind: one of ``MODEL_KINDS`` (class attribute).
        latent_dim: length of z (0 when the generator takes no noise vector).
        image_channels / label_channels: channel split of the data (see module docstring).
        num_classes: image-level classes for class-conditional models, else 0.
        spatial_size / spatial_dims: output size and 2 or 3.
    """

    kind: ClassVar[str] = "pair"

    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module,
        *,
        latent_dim: int,
        image_channels: int,
        label_channels: int,
        spatial_size: tuple[int, ...],
        spatial_dims: int,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.critic = critic
        self.latent_dim = latent_dim
        self.image_channels = image_channels
        self.label_channels = label_channels
        self.spatial_size = tuple(spatial_size)
        self.spatial_dims = spatial_dims
        self.num_classes = num_classes

    def sample_latent(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draw ``(n, latent_dim)`` standard-normal latents.

        The draw happens on the torch.Generator's device (CPU by default) and is then moved to
        ``device`` (default: the model's device), so a seed gives the same z on CPU and GPU.
        """
        draw_device = generator.device if generator is not None else torch.device("cpu")
        z = torch.randn(n, self.latent_dim, generator=generator, device=draw_device)
        target = device if device is not None else next(self.generator.parameters()).device
        return z.to(target)

    def split(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split pairs into ``(image, label)`` along the channel axis."""
        return pairs[:, : self.image_channels], pairs[:, self.image_channels :]
