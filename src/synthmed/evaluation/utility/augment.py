"""Classic, label-aware augmentation for the ``real+classic-aug`` baseline.

The baseline a synthetic-data arm must beat is real data with the usual augmentation
(Frid-Adar et al. 2018 applied classic augmentation first): random flips, 90-degree
rotations, a small rotation plus an elastic deformation (a smooth random displacement field
from a coarse grid of control points, as TorchIO's RandomElasticDeformation and MONAI's
Rand2DElastic do), and intensity scale / shift / gamma. As in TorchIO, spatial transforms move
the image and its label map together (labels resampled with nearest neighbour, so no new label
values appear) and intensity transforms skip labels.

Unlike the MONAI/TorchIO transforms, which draw from their own state one sample at a time,
these work on a whole batch with torch ops and draw every parameter from the one generator
the training loop passes in: on-the-fly augmentation costs a few batched ops per step and is
reproducible from the loop's seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def as_generator(rng: torch.Generator | np.random.Generator | int) -> torch.Generator:
    """A CPU torch generator; numpy generators / ints seed a new one (deterministically)."""
    if isinstance(rng, torch.Generator):
        return rng
    if isinstance(rng, np.random.Generator):
        return torch.Generator().manual_seed(int(rng.integers(2**62)))
    return torch.Generator().manual_seed(int(rng))


def _uniform(shape: tuple[int, ...], low: float, high: float, gen: torch.Generator):
    return torch.rand(shape, generator=gen) * (high - low) + low


def _per_sample(mask: torch.Tensor, ndim: int) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) with ``ndim`` dims, for broadcasting over a batch."""
    return mask.view(-1, *([1] * (ndim - 1)))


def random_flip(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    gen: torch.Generator,
    p: float = 0.5,
    axes: str = "all",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flip each sample along each spatial axis with probability ``p`` (image and label).

    ``axes``: ``all`` spatial axes, ``left-right`` (the last one only) or ``none``.
    """
    if axes not in ("all", "left-right", "none"):
        raise ValueError(f"unknown flip axes {axes!r}; valid: all, left-right, none")
    first = {"all": 2, "left-right": images.ndim - 1, "none": images.ndim}[axes]
    for axis in range(first, images.ndim):
        flip = (torch.rand(images.shape[0], generator=gen) < p).to(images.device)
        images = torch.where(_per_sample(flip, images.ndim), images.flip(axis), images)
        if labels is not None:
            labels = torch.where(_per_sample(flip, labels.ndim), labels.flip(axis - 1), labels)
    return images, labels


def random_rot90(
    images: torch.Tensor, labels: torch.Tensor | None, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rotate each sample by k * 90 degrees in the last two spatial axes (square planes only)."""
    turns = torch.randint(0, 4, (images.shape[0],), generator=gen).to(images.device)
    if images.shape[-1] != images.shape[-2]:
        return images, labels
    out_x = images.clone()
    out_y = None if labels is None else labels.clone()
    for k in (1, 2, 3):
        sel = turns == k
        out_x[sel] = torch.rot90(images[sel], k, dims=(-2, -1))
        if labels is not None:
            out_y[sel] = torch.rot90(labels[sel], k, dims=(-2, -1))
    return out_x, out_y


def _warp_grid(
    shape: tuple[int, ...], gen: torch.Generator, strength: float, p: float, n_ctrl: int = 4
) -> torch.Tensor:
    """Sampling grid (B, *spatial, dims): small rotation + elastic field, identity when off.

    The rotation (up to 15 degrees x strength) acts in the plane of the last two spatial axes
    and is corrected for the aspect ratio of normalised coordinates; the elastic field moves
    pixels by up to 4% of the image side x strength, smoothly interpolated from
    ``n_ctrl`` control points per axis.
    """
    batch, spatial = shape[0], shape[2:]
    dims = len(spatial)
    on = (torch.rand(batch, generator=gen) < p).float()
    angle = _uniform((batch,), -1.0, 1.0, gen) * math.radians(15.0) * strength * on
    coarse = _uniform((batch, dims, *([n_ctrl] * dims)), -1.0, 1.0, gen) * 0.08 * strength
    theta = torch.eye(dims, dims + 1).repeat(batch, 1, 1)
    width, height = spatial[-1], spatial[-2]  # grid component 0 is the last axis
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * height / width
    theta[:, 1, 0], theta[:, 1, 1] = sin * width / height, cos
    grid = F.affine_grid(theta, [batch, 1, *spatial], align_corners=False)
    mode = "bicubic" if dims == 2 else "trilinear"
    field = F.interpolate(coarse, size=spatial, mode=mode, align_corners=True)
    field = field * _per_sample(on, field.ndim)
    return grid + field.movedim(1, -1)


def random_warp(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    gen: torch.Generator,
    strength: float = 1.0,
    p: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Small rotation + elastic deformation of each sample with probability ``p``.

    Images are resampled bilinearly, labels with nearest neighbour through the same grid.
    """
    grid = _warp_grid(tuple(images.shape), gen, strength, p).to(images.device, images.dtype)
    kw = {"padding_mode": "reflection", "align_corners": False}
    out_x = F.grid_sample(images, grid, mode="bilinear", **kw)
    if labels is None:
        return out_x, None
    moved = F.grid_sample(labels[:, None].to(images.dtype), grid, mode="nearest", **kw)
    return out_x, moved[:, 0].round().to(labels.dtype)


def random_intensity(
    images: torch.Tensor, gen: torch.Generator, strength: float = 1.0, p: float = 0.5
) -> torch.Tensor:
    """Gamma (exp(+-0.3)), scale (1 +- 0.1) and shift (+-0.1), x strength, kept in [0, 1]."""
    batch, ndim = images.shape[0], images.ndim
    on = (torch.rand(batch, generator=gen) < p).float()
    gamma = torch.exp(_uniform((batch,), -0.3, 0.3, gen) * strength * on)
    scale = 1.0 + _uniform((batch,), -0.1, 0.1, gen) * strength * on
    shift = _uniform((batch,), -0.1, 0.1, gen) * strength * on
    gamma, scale, shift = (_per_sample(v, ndim).to(images) for v in (gamma, scale, shift))
    return (images.clamp(0.0, 1.0).pow(gamma) * scale + shift).clamp(0.0, 1.0)


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    rng: torch.Generator | np.random.Generator | int,
    strength: float = 1.0,
    flip: str = "all",
    rot90: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flips, 90-degree turns, rotation + elastic warp, then intensity; one batch at a time.

    Args:
        images: (B, C, *spatial) float in [0, 1].
        labels: (B, *spatial) integer label maps, or None (classification).
        rng: where every random parameter comes from; the same seed gives the same batch.
        strength: scales the continuous transforms; 0 returns the inputs unchanged.
        flip: axes to flip (``all``, ``left-right``, ``none``); ``rot90``: random quarter
            turns. ``left-right`` without turns keeps an image's up and down (ultrasound).

    Returns:
        The augmented images (in [0, 1]) and labels (values from the input's set), or None.
    """
    if strength <= 0:
        return images, labels
    gen = as_generator(rng)
    images, labels = random_flip(images, labels, gen, axes=flip)
    if rot90:
        images, labels = random_rot90(images, labels, gen)
    images, labels = random_warp(images, labels, gen, strength)
    return random_intensity(images, gen, strength), labels


def batch_augmenter(options):
    """:func:`augment_batch` with a run's classic-aug options (``strength``, ``flip``,
    ``rot90``, e.g. :class:`~synthmed.config.schema.ClassicAugConfig`), as training loops
    call it: ``(images, labels, generator) -> (images, labels)``."""
    return lambda x, y, gen: augment_batch(x, y, gen, options.strength, options.flip, options.rot90)
