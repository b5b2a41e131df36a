"""The contract every registered generative model fulfils.

The trainer and the sampler talk only to this interface, never to a model's family name: a
``generator`` module, an optional ``critic`` (None for families that train without one, e.g.
diffusion), metadata, flags that say what synthesis needs, and :meth:`synthesize`, which
returns samples in the common pair layout ``(N, C_img + C_lbl, *S)`` in [-1, 1] so one decoder
(``synthmed.data.pairs.decode_pairs``) serves every family:

* pair models (Kossen 2021; DCGAN, WGAN-GP, WGAN-GP-SN): ``synthesize(z)``.
* class-conditional models (AC-GAN, Frid-Adar 2018; ``needs_classes``):
  ``synthesize(z, classes)``; ``C_lbl`` may be 0 for image-only data.
* translators (pix2pix, SPADE; ``needs_condition``): ``synthesize(z, condition=c)`` with ``c``
  a one-hot label map (N, K, *S) in {0, 1}, background first; the label part of the output
  is that map.
* label-map models (mask GAN; Guibas 2017 stage I, Platscher 2021; ``label_only``): the
  generated label channels next to a black (-1) image.

``kind`` names the family for people and checkpoints; no code outside ``synthmed.models``
branches on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

MODEL_KINDS = ("pair", "class_pair", "translator", "mask")


class GenerativeModel(nn.Module, ABC):
    """A generator (plus an optional critic) and what the trainer and sampler need to drive it.

    Attributes:
        kind: family name, one of ``MODEL_KINDS`` or a new family's (class attribute).
        needs_classes / needs_condition: :meth:`synthesize` needs ``classes`` / ``condition``.
        label_only: the model generates label maps only (no image to judge or augment).
        critic_scores_pairs: the critic scores training rows as they are stored (image+label
            pairs), so the privacy audit can run a LOGAN attack on it.
        latent_dim: length of z (0 when the generator takes no noise vector).
        image_channels / label_channels: channel split of the data (see module docstring).
        num_classes: image-level classes for class-conditional models, else 0.
        spatial_size / spatial_dims: output size and 2 or 3.
    """

    kind: ClassVar[str] = "pair"
    needs_classes: ClassVar[bool] = False
    needs_condition: ClassVar[bool] = False
    label_only: ClassVar[bool] = False
    critic_scores_pairs: ClassVar[bool] = False

    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module | None,
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

    @property
    def ema_start(self) -> int:
        """Training steps before the generator's averaged weights start to train (the EMA's
        ramp-up counts from here); 0 except for models trained in phases (latent diffusion:
        the autoencoder's steps)."""
        return 0

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

    @abstractmethod
    def synthesize(
        self,
        z: torch.Tensor | None = None,
        classes: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Samples in the pair layout ``(N, image_channels + label_channels, *S)`` in [-1, 1].

        Args:
            z: (N, latent_dim) latents (families without a noise input ignore it).
            classes: (N,) long, when ``needs_classes``.
            condition: (N, K, *S) one-hot label maps in {0, 1}, when ``needs_condition``.
        """
        # abstract: every family says how it synthesises (a family without it cannot be built)

    def configure_sampling(
        self, steps: int | None = None, guidance_scale: float | None = None
    ) -> None:
        """Sampler settings of iterative families (diffusion: step count, guidance scale); a
        one-pass generator has none, so asking for them is an error, not a silent no-op."""
        if steps is not None or guidance_scale is not None:
            raise ValueError(
                f"sampling steps / guidance scale apply to diffusion models, not '{self.kind}'"
            )

    def sampler_description(self) -> str:
        """How a sample is drawn, for the manifest (one generator pass for GANs)."""
        return "one generator pass"

    def training_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The part of stored training rows (image+label pairs) that the model learns to
        generate: all of it, except for label-only models."""
        return rows[:, self.image_channels :] if self.label_only else rows


@torch.no_grad()
def synthesize_with(
    model: GenerativeModel, generator: nn.Module | None, *inputs: torch.Tensor | None
) -> torch.Tensor:
    """Pairs on CPU from fixed inputs ``(z, classes, condition)``, driven by ``generator``
    (e.g. the EMA copy; None = the model's own) in eval mode; the model is left as it was."""
    trained = model.generator
    gen = trained if generator is None else generator
    was_training = gen.training
    model.generator = gen
    gen.eval()
    try:
        device = next(gen.parameters()).device
        moved = [None if t is None else t.to(device) for t in inputs]
        return synthesize_pairs(model, *moved).float().cpu()
    finally:
        gen.train(was_training)
        model.generator = trained


def synthesize_pairs(
    model: GenerativeModel,
    z: torch.Tensor | None = None,
    classes: torch.Tensor | None = None,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """``model.synthesize`` with a clear error when an input the model needs is missing."""
    if model.needs_classes and classes is None:
        raise ValueError("a class-conditional model needs classes")
    if model.needs_condition and condition is None:
        raise ValueError("a translator needs a label-map condition")
    return model.synthesize(z, classes, condition)
