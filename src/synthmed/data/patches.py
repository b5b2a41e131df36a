"""Training patches with a fixed share centred on label foreground (Kossen et al. 2021).

Thin structures such as vessels cover a few percent of an image; uniformly drawn patches would
rarely show them, so a fraction ``foreground_fraction`` of the patches is centred on a random
foreground pixel and the rest are drawn uniformly (inside the FOV mask when there is one).
All draws come from one ``numpy.random.Generator(seed)``, so a seed fixes the patch set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthmed.config.schema import PatchConfig
from synthmed.data.types import Item
from synthmed.errors import InputError


@dataclass
class PatchSet:
    """Patches cut from a list of items.

    Attributes:
        images: float32 (N, C, P, P) or (N, C, P, P, P), intensities as preprocessed.
        labels: int64 (N, P, P) or (N, P, P, P).
        patient_ids: patient of each patch (for leakage checks).
        centres: int64 (N, spatial_dims) patch centre in its source image's pixel grid.
        item_index: int64 (N,) index of the source item.
        foreground: bool (N,) True for patches centred on a foreground pixel.
    """

    images: np.ndarray
    labels: np.ndarray
    patient_ids: list[str]
    centres: np.ndarray | None = None
    item_index: np.ndarray | None = None
    foreground: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)


def _pick(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random coordinates (n, dims) of True pixels in ``mask`` (with replacement)."""
    flat = np.flatnonzero(mask)
    return np.stack(np.unravel_index(flat[rng.integers(flat.size, size=n)], mask.shape), axis=1)


def draw_centres(
    label: np.ndarray,
    fov: np.ndarray | None,
    n: int,
    n_foreground: int,
    size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Patch centres for one image: foreground-centred first, then random.

    Returns:
        centres int64 (n, dims) and a bool (n,) flag marking foreground-centred ones. Images
        without foreground get random patches only.
    """
    shape = np.array(label.shape)
    n_fg = n_foreground if (label > 0).any() else 0
    fg = _pick(label > 0, n_fg, rng) if n_fg else np.zeros((0, len(shape)), np.int64)
    n_rand = n - n_fg
    if fov is not None and fov.any():
        rand = _pick(fov, n_rand, rng)
    else:  # patch fully inside the image, or centred on it when the image is smaller
        corners = rng.integers(0, np.maximum(shape - size, 0) + 1, size=(n_rand, len(shape)))
        rand = corners - np.maximum(size - shape, 0) // 2 + size // 2
    flags = np.arange(n) < n_fg
    return np.concatenate([fg, rand]).astype(np.int64), flags


def cut_patches(
    array: np.ndarray, centres: np.ndarray, size: int, pad_mode: str = "reflect"
) -> np.ndarray:
    """Gather (N, lead..., P, ...) windows centred at ``centres`` from the trailing axes.

    The array is padded by half a patch so windows may cross the border (padding with
    ``pad_mode``; reflect falls back to constant for axes of length 1).
    """
    dims = centres.shape[1]
    lead = array.ndim - dims
    before, after = size // 2, size - size // 2
    mode = pad_mode
    if mode == "reflect" and min(array.shape[lead:]) < 2:
        mode = "constant"
    padded = np.pad(array, [(0, 0)] * lead + [(before, after)] * dims, mode=mode)
    starts = centres - size // 2 + before
    index = []
    for d in range(dims):
        shape = [len(centres)] + [1] * dims
        shape[1 + d] = size
        index.append((starts[:, d][:, None] + np.arange(size)).reshape(shape))
    gathered = padded[(Ellipsis, *index)]  # (lead..., N, P, ...)
    return np.moveaxis(gathered, lead, 0) if lead else gathered


def extract_patches(
    items: Sequence[Item], cfg: PatchConfig, spatial_dims: int = 2, pad_mode: str = "reflect"
) -> PatchSet:
    """Cut ``cfg.per_image`` patches of side ``cfg.size`` from every item.

    Args:
        items: preprocessed items with ``spatial_dims`` spatial axes.
        cfg: size, per_image, foreground_fraction, seed.
        spatial_dims: 2 for (C, H, W) items, 3 for (C, D, H, W).
        pad_mode: numpy pad mode for images smaller than, or patches crossing, the border
            (``reflect`` or ``constant``); the label is padded the same way so pairs match.

    Returns:
        A :class:`PatchSet`; identical for identical items and seed.
    """
    if not items:
        raise InputError("no items to cut patches from")
    rng = np.random.default_rng(cfg.seed)
    n_fg = int(np.floor(cfg.per_image * cfg.foreground_fraction + 0.5))
    images, labels, centres, flags, owners = [], [], [], [], []
    for k, item in enumerate(items):
        if item.spatial_dims != spatial_dims:
            raise InputError(
                f"item is {item.spatial_dims}D but patches are {spatial_dims}D "
                "(set preprocess.slice_axis to cut 2D slices from volumes)",
                item.source or None,
            )
        label = item.label if item.label is not None else np.zeros(item.spatial_shape, np.int64)
        where, fg = draw_centres(label, item.meta.get("fov"), cfg.per_image, n_fg, cfg.size, rng)
        images.append(cut_patches(item.image, where, cfg.size, pad_mode))
        labels.append(cut_patches(label, where, cfg.size, pad_mode))
        centres.append(where)
        flags.append(fg)
        owners.extend([k] * len(where))
    return PatchSet(
        images=np.concatenate(images).astype(np.float32, copy=False),
        labels=np.concatenate(labels).astype(np.int64, copy=False),
        patient_ids=[items[k].patient_id for k in owners],
        centres=np.concatenate(centres),
        item_index=np.asarray(owners, dtype=np.int64),
        foreground=np.concatenate(flags),
    )
