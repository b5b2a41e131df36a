"""Real training data as one in-memory tensor of image+label pairs.

Keeping the whole (patch) set as one tensor avoids per-step file I/O (PERFORMANCE.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from synthmed.config.schema import DataConfig
from synthmed.data.pairs import encode_pairs, label_channels_for
from synthmed.data.patches import extract_patches
from synthmed.data.pipeline import load_splits
from synthmed.data.types import Item
from synthmed.errors import InputError


@dataclass
class GanData:
    """Pairs for GAN training plus what sampling needs to decode them."""

    pairs: torch.Tensor  # (N, C_img + C_lbl, *spatial) in [-1, 1]
    image_channels: int
    num_classes: int  # label-map values incl. background
    splits: dict[str, list[Item]]
    classes: torch.Tensor | None = None  # (N,) image-level class of each row, when known
    num_image_classes: int = 0

    @property
    def label_channels(self) -> int:
        return self.pairs.shape[1] - self.image_channels

    @property
    def spatial_size(self) -> tuple[int, ...]:
        return tuple(self.pairs.shape[2:])


def count_classes(items: list[Item], label_mode: str, anatomy_classes: int = 0) -> int:
    """Number of label values incl. background (binary mode: always 2; 0 without labels).

    With ``anatomy_classes`` (derived tissue classes, ``data.preprocess.anatomy``) the count
    is fixed at background + tissue classes + lesion, whatever the items happen to contain.
    """
    if all(it.label is None for it in items):
        return 0
    if anatomy_classes:
        return anatomy_classes + 2
    if label_mode in ("binary", "lesion"):
        return 2
    top = max((int(it.label.max()) for it in items if it.label is not None), default=1)
    return max(2, top + 1)


def training_arrays(
    items: list[Item], cfg: DataConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patches (or whole images), their label maps, and the item each row came from.

    Image-only data (every item without a label map, e.g. classification ROIs) gives
    ``labels = None``; a mix of labelled and unlabelled items is an error.
    """
    unlabelled = [it.source for it in items if it.label is None]
    if unlabelled and len(unlabelled) == len(items):
        return _image_only_arrays(items, cfg)
    if unlabelled:
        raise InputError(
            "some training images have a label map and this one has none", unlabelled[0]
        )
    check_same_channels(items)
    if cfg.patches is not None:
        check_patch_fits(items, cfg.patches.size)
        patch_set = extract_patches(items, cfg.patches, spatial_dims=items[0].spatial_dims)
        return patch_set.images, patch_set.labels, np.asarray(patch_set.item_index)
    check_same_shape(items, "set data.preprocess.resize or data.patches")
    images = np.stack([it.image for it in items])
    return images, np.stack([it.label for it in items]), np.arange(len(items))


def check_same_shape(items: list[Item], advice: str) -> None:
    """Whole images are stacked into one tensor, so they must share one shape.

    Raises:
        InputError: naming the first image whose shape differs from the first image's.
    """
    first = items[0].image.shape
    odd = next((it for it in items if it.image.shape != first), None)
    if odd is not None:
        raise InputError(
            f"image shape {tuple(odd.image.shape)} differs from {tuple(first)} "
            f"({items[0].source}): {advice}",
            odd.source or None,
        )


def check_same_channels(items: list[Item]) -> None:
    """Patches of every image are stacked too: one channel count for all (grey vs colour)."""
    first = items[0].image.shape[0]
    odd = next((it for it in items if it.image.shape[0] != first), None)
    if odd is not None:
        raise InputError(
            f"image has {odd.image.shape[0]} channels but {items[0].source} has {first}: "
            "set data.preprocess.channels (e.g. grey), or convert the files",
            odd.source or None,
        )


def check_patch_fits(items: list[Item], size: int) -> None:
    """A training patch must fit inside every (preprocessed) image: a larger one would be
    mostly padding, and the GAN would learn the padding.

    Raises:
        InputError: naming the first image smaller than ``data.patches.size``.
    """
    for item in items:
        if min(item.spatial_shape) < size:
            shape = "x".join(str(s) for s in item.spatial_shape)
            raise InputError(
                f"data.patches.size {size} is larger than this image ({shape} after "
                f"preprocessing): set data.patches.size <= {min(item.spatial_shape)}, "
                "data.preprocess.resize, or data.patches: null",
                item.source or None,
            )


def _image_only_arrays(items: list[Item], cfg: DataConfig):
    if cfg.patches is not None:
        raise InputError("image-only data (no label maps) needs data.patches: null")
    check_same_shape(items, "set data.preprocess.resize")
    return np.stack([it.image for it in items]), None, np.arange(len(items))


def row_classes(items: list[Item], item_index: np.ndarray) -> tuple[torch.Tensor | None, int]:
    """Image-level class per training row when every item has one, and the class count."""
    if not items or any(it.class_id is None for it in items):
        return None, 0
    per_item = np.array([int(it.class_id) for it in items])
    return torch.as_tensor(per_item[item_index], dtype=torch.long), int(per_item.max()) + 1


def prepare_gan_data(cfg: DataConfig, base_dir: Path | None = None) -> GanData:
    splits = load_splits(cfg, base_dir)
    train_items = splits["train"]
    images, labels, item_index = training_arrays(train_items, cfg)
    anatomy = cfg.preprocess.anatomy
    num_classes = count_classes(
        train_items, cfg.preprocess.label_mode, anatomy.classes if anatomy else 0
    )
    pairs = encode_pairs(images, labels, num_classes)
    assert pairs.shape[1] == images.shape[1] + label_channels_for(num_classes)
    classes, num_image_classes = row_classes(train_items, item_index)
    return GanData(pairs, int(images.shape[1]), num_classes, splits, classes, num_image_classes)


def with_foreground_only(data: GanData) -> GanData:
    """The rows whose label map has any foreground (a lesion-mask GAN's training set).

    Raises:
        InputError: no row has foreground.
    """
    labels = data.pairs[:, data.image_channels :]
    keep = (labels > 0).flatten(1).any(dim=1)
    if not bool(keep.any()):
        raise InputError("mask_stage.foreground_only: no training label map has foreground")
    classes = data.classes[keep] if data.classes is not None else None
    return replace(data, pairs=data.pairs[keep], classes=classes)


def resized_pairs(data: GanData, size: list[int]) -> GanData:
    """The pairs scaled to ``size`` by area averaging (a mask GAN trained smaller than the data).

    Averaging the -1/+1 label channels gives soft outlines rather than the jagged ones of
    nearest-neighbour resampling; a mask GAN's tanh output can match those.

    Raises:
        InputError: ``size`` has the wrong number of axes or is larger than the data.
    """
    import torch.nn.functional as F

    current = tuple(data.spatial_size)
    size = tuple(int(s) for s in size)
    if len(size) != len(current):
        raise InputError(f"mask_stage.size {list(size)} needs {len(current)} axes (data {current})")
    if any(s > c for s, c in zip(size, current, strict=True)):
        raise InputError(f"mask_stage.size {list(size)} is larger than the data's size {current}")
    if size == current:
        return data
    return replace(data, pairs=F.interpolate(data.pairs, size=size, mode="area"))
