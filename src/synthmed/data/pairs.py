"""Image+label pairs as one tensor (Kossen et al. 2021).

A pair GAN generates ``C_img + C_lbl`` channels in tanh range: image intensities in [0, 1]
map to [-1, 1]; a label map with K classes becomes K-1 foreground channels at -1/+1
(binary: one channel). Decoding thresholds the label channels: a pixel is foreground when its
strongest label channel exceeds ``threshold`` (Kossen: 0.8 on the tanh range), and then takes
that channel's class.
"""

from __future__ import annotations

import numpy as np
import torch


def label_channels_for(num_classes: int) -> int:
    """Foreground channels needed for a label map with ``num_classes`` values (incl. 0);
    0 for image-only data (``num_classes`` 0)."""
    return 0 if num_classes == 0 else max(1, num_classes - 1)


def encode_pairs(images: np.ndarray, labels: np.ndarray | None, num_classes: int) -> torch.Tensor:
    """Stack images and one-hot foreground label channels into one tanh-range tensor.

    Args:
        images: (N, C, *spatial) float in [0, 1].
        labels: (N, *spatial) integer class map, values 0..num_classes-1, or None.
        num_classes: number of label values including background (0: image-only).

    Returns:
        (N, C + max(1, num_classes - 1), *spatial) float32 in [-1, 1].
    """
    img = torch.as_tensor(images, dtype=torch.float32).clamp(0, 1) * 2 - 1
    if labels is None or num_classes == 0:  # image-only data: no label channels
        return img
    lbl = torch.as_tensor(labels, dtype=torch.long)
    chans = [(lbl == k).float() * 2 - 1 for k in range(1, max(2, num_classes))]
    return torch.cat([img, torch.stack(chans, dim=1)], dim=1)


def decode_pairs(
    pairs: torch.Tensor, image_channels: int, threshold: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split generated pairs into images in [0, 1] and integer label maps.

    Args:
        pairs: (N, C_img + C_lbl, *spatial) in [-1, 1].
        image_channels: C_img.
        threshold: tanh-range value a label channel must exceed to mark foreground.

    Returns:
        images (N, C_img, *spatial) float in [0, 1]; labels (N, *spatial) int64.
    """
    images = ((pairs[:, :image_channels] + 1) / 2).clamp(0, 1)
    label_part = pairs[:, image_channels:]
    if label_part.shape[1] == 0:  # image-only data (e.g. classification ROIs): all background
        return images, torch.zeros(
            (pairs.shape[0], *pairs.shape[2:]), dtype=torch.long, device=pairs.device
        )
    best, index = label_part.max(dim=1)
    labels = torch.where(best > threshold, index + 1, torch.zeros_like(index))
    return images, labels.long()


def split_pairs(pairs: torch.Tensor, image_channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(image part, label part) of a pair tensor, both still in [-1, 1]."""
    return pairs[:, :image_channels], pairs[:, image_channels:]


def onehot_condition(label_part: torch.Tensor) -> torch.Tensor:
    """Label channels in [-1, 1] -> one-hot map (N, K, *S) in {0, 1}, background first.

    This is the input of label-map -> image translators (pix2pix, SPADE). Foreground channels
    are taken at > 0; background is where no foreground channel is set.
    """
    fg = (label_part > 0).float()
    background = (fg.sum(dim=1, keepdim=True) == 0).float()
    return torch.cat([background, fg], dim=1)


def labels_to_onehot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer label maps (N, *S) -> one-hot (N, num_classes, *S) float in {0, 1}."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).movedim(-1, 1).float()
