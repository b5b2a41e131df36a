"""Seeded affine warps of the label maps that drive a translator at sampling time.

A translator conditioned on a training slice's own anatomy map (``label_source: train``)
draws an image laid out like that slice, so its samples sit near their source images in the
encoder and the export gate counts them as near-copies (the LGG quality benchmark: 5-7x the
held-out rate). Moving the anatomy (rotation, isotropic scale, shift) before the translator
sees it gives each sample a layout no training slice has, while the lesion stays where the
map puts it: the exported label is the warped map, so image and label still agree.

MONAI's :class:`~monai.transforms.Affine` does the resampling (nearest neighbour, zero =
background padding, so label values stay exact). The parameters are drawn here from the
sample's own seed, not by MONAI's ``RandAffine``, so each can be written to the manifest and
the same seed gives the same warp whatever the batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.transforms import Affine

# salt for the warp's generator: the lesion edit draws from default_rng(seed) itself, and the
# two must not share a stream
WARP_SALT = 0x5EED_3A9


def draw_warp(seed: int, rotate: float, scale: float, translate: float, shape) -> dict:
    """One sample's warp: rotation angles (degrees, one in 2D, three in 3D) in
    ``[-rotate, rotate]``, an isotropic scale in ``[1 - scale, 1 + scale]``, and a shift in
    pixels of up to ``translate`` x the size along each axis."""
    rng = np.random.default_rng([WARP_SALT, seed])
    n_angles = 1 if len(shape) == 2 else 3
    return {
        "rotate_deg": [round(float(a), 4) for a in rng.uniform(-rotate, rotate, n_angles)],
        "scale": round(float(rng.uniform(1 - scale, 1 + scale)), 4),
        "translate_px": [
            round(float(rng.uniform(-translate, translate) * size), 3) for size in shape
        ],
    }


def apply_warp(label: np.ndarray, warp: dict) -> np.ndarray:
    """``label`` (``*S`` integer map) resampled by ``warp`` (from :func:`draw_warp`), nearest
    neighbour, zeros (background) outside the field of view."""
    affine = Affine(
        rotate_params=[math.radians(a) for a in warp["rotate_deg"]],
        scale_params=[warp["scale"]] * label.ndim,
        translate_params=warp["translate_px"],
        mode="nearest",
        padding_mode="zeros",
        image_only=True,
    )
    moved = affine(torch.as_tensor(label[None], dtype=torch.float32))
    return np.asarray(moved)[0].round().astype(label.dtype)


def warp_label_maps(
    labels: np.ndarray, seeds: list[int], rotate: float, scale: float, translate: float
) -> tuple[np.ndarray, list[dict]]:
    """Each map ``labels[i]`` warped with sample ``seeds[i]``'s draw; returns the maps and
    each warp (the manifest's ``label_warp`` column)."""
    out, records = [], []
    for label, seed in zip(labels, seeds, strict=True):
        warp = draw_warp(seed, rotate, scale, translate, label.shape)
        out.append(apply_warp(label, warp))
        records.append(warp)
    return np.stack(out), records
