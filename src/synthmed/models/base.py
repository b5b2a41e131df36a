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


def synthesize_pairs(
    model: GenerativeModel,
    z: torch.Tensor | None = None,
    classes: torch.Tensor | None = None,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """Drive any model kind and return samples in the common pair layout.

    Output: ``(N, image_channels + label_channels, *S)`` in [-1, 1], so one decoder
    (``synthmed.data.pairs.decode_pairs``) serves every kind:

    * ``pair``: ``generator(z)``.
    * ``class_pair``: ``generator(z, classes)``.
    * ``translator``: the generated image next to the label channels of ``condition``
      (one-hot, background first): the label map that made the image is its label.
    * ``mask``: the generated label channels (scaled to the model's ``output_size``) next to a
      black (-1) image.

    Args:
        z: (N, latent_dim) latents (not needed by translators without noise input).
        classes: (N,) long, for ``class_pair``.
        condition: (N, K, *S) one-hot label maps in {0, 1}, for ``translator``.
    """
    gen = model.generator
    if model.kind == "pair":
        return gen(z)
    if model.kind == "class_pair":
        if classes is None:
            raise ValueError("a class-conditional model needs classes")
        return gen(z, classes)
    if model.kind == "translator":
        if condition is None:
            raise ValueError("a translator needs a label-map condition")
        image = gen(condition, z) if model.latent_dim else gen(condition)
        label_part = condition[:, 1:] * 2 - 1
        return torch.cat([image, label_part.to(image.dtype)], dim=1)
    if model.kind == "mask":
        labels = model.to_output_size(gen(z))
        shape = (labels.shape[0], model.image_channels, *labels.shape[2:])
        return torch.cat([labels.new_full(shape, -1.0), labels], dim=1)
    raise ValueError(f"unknown model kind '{model.kind}'")
