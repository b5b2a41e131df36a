"""AC-GAN: a class-conditional DCGAN whose discriminator also classifies (kind ``class_pair``).

Odena et al. 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs": the generator
takes ``(z, class)``; the discriminator outputs a real/fake logit and class logits, and both
networks are trained to make the class of real and generated samples recognisable (the
``acgan`` training method). Frid-Adar et al. 2018 compared it with one DCGAN per lesion class
on liver-lesion ROIs (image-only data: ``label_channels=0``). The networks reuse the DCGAN
generator and discriminator of :mod:`synthmed.models.wgan` and :mod:`synthmed.models.dcgan`.
"""

from __future__ import annotations

import torch
from torch import nn

from synthmed.models.base import GenerativeModel
from synthmed.models.blocks import init_dcgan_weights
from synthmed.models.dcgan import DCGANDiscriminator
from synthmed.models.registry import MODELS
from synthmed.models.wgan import PairGenerator


class ACGANGenerator(nn.Module):
    """Class embedding multiplied into z, then the DCGAN generator.

    The multiplicative embedding (as in common AC-GAN ports) keeps ``latent_dim`` unchanged, so
    the same :class:`~synthmed.models.wgan.PairGenerator` serves.

    Args:
        latent_dim: length of z (and of each class embedding).
        out_channels: image channels + label channels.
        num_classes: number of image-level classes.
        spatial_size / spatial_dims / base_channels / kernel_size: as for ``PairGenerator``.

    Shapes:
        forward: z ``(N, latent_dim)``, classes ``(N,)`` long in ``[0, num_classes)`` ->
        ``(N, out_channels, *spatial_size)`` in [-1, 1].
    """

    def __init__(
        self,
        latent_dim: int,
        out_channels: int,
        num_classes: int,
        spatial_size: tuple[int, ...],
        spatial_dims: int = 2,
        base_channels: int = 64,
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.net = PairGenerator(
            latent_dim, out_channels, spatial_size, spatial_dims, base_channels, kernel_size
        )

    def forward(self, z: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return self.net(z * self.embed(classes))


class ACGANDiscriminator(nn.Module):
    """DCGAN discriminator with an auxiliary classifier head on its last conv features.

    Args:
        in_channels: image channels + label channels.
        num_classes: number of image-level classes.
        spatial_size / spatial_dims / base_channels / kernel_size: as for
            :class:`~synthmed.models.dcgan.DCGANDiscriminator`.

    Shapes:
        forward: x ``(N, in_channels, *spatial_size)`` -> (adversarial logits ``(N,)``,
        class logits ``(N, num_classes)``).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        spatial_size: tuple[int, ...],
        spatial_dims: int = 2,
        base_channels: int = 64,
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        self.body = DCGANDiscriminator(
            in_channels, spatial_size, spatial_dims, base_channels, kernel_size
        )
        self.classify = nn.Linear(self.body.feature_dim, num_classes)
        init_dcgan_weights(self.classify)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, feats = self.body(x, return_features=True)
        return logits, self.classify(feats)


class ACGANModel(GenerativeModel):
    """A class-conditional generator/discriminator pair (kind ``class_pair``).

    Shapes:
        generate: z ``(N, latent_dim)``, classes ``(N,)`` long ->
        ``(N, image_channels + label_channels, *spatial_size)`` in [-1, 1].
    """

    kind = "class_pair"
    needs_classes = True

    def generate(self, z: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Map latents and classes to (image+label) samples (see class docstring)."""
        return self.generator(z, classes)

    def synthesize(self, z=None, classes=None, condition=None) -> torch.Tensor:
        return self.generator(z, classes)

    forward = generate


@MODELS.register("acgan")
def build_acgan(
    *,
    image_channels: int,
    label_channels: int,
    spatial_size: tuple[int, ...],
    spatial_dims: int = 2,
    latent_dim: int = 100,
    base_channels: int = 64,
    kernel_size: int = 5,
    num_classes: int | None = None,
) -> ACGANModel:
    """AC-GAN on image(+label) data with ``num_classes`` image-level classes (Odena 2017).

    ``num_classes`` is required; the trainer passes the data's image-level class count.
    ``label_channels`` may be 0 (image-only ROIs, Frid-Adar 2018). Train with ``acgan``.

    Raises:
        ValueError: if ``num_classes`` is missing or < 1, or the channel counts are invalid.
    """
    if num_classes is None or num_classes < 1:
        raise ValueError(
            f"acgan needs num_classes >= 1 (image-level classes of the data, e.g. a 'class' "
            f"column in the CSV manifest), got {num_classes!r}"
        )
    if image_channels < 1 or label_channels < 0:
        raise ValueError(
            f"need image_channels >= 1 and label_channels >= 0, got {image_channels}, "
            f"{label_channels}"
        )
    channels, size = image_channels + label_channels, tuple(spatial_size)
    generator = ACGANGenerator(
        latent_dim, channels, num_classes, size, spatial_dims, base_channels, kernel_size
    )
    discriminator = ACGANDiscriminator(
        channels, num_classes, size, spatial_dims, base_channels, kernel_size
    )
    return ACGANModel(
        generator,
        discriminator,
        latent_dim=latent_dim,
        image_channels=image_channels,
        label_channels=label_channels,
        spatial_size=size,
        spatial_dims=spatial_dims,
        num_classes=num_classes,
    )
