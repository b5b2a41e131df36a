"""Anatomy classes derived from an image, for label maps that hold only a lesion.

Shin et al. 2018 (arXiv 1807.10225) translate brain label maps with anatomy (tissue classes
plus tumour) to MRI; a translator conditioned on a tumour mask alone (LGG FLAIR: the masks
hold only the FLAIR abnormality) has nothing but the tumour to vary and draws one mean head
around it. This module gives such data an anatomy condition made from each image itself:

1. foreground (head / body) mask: the smoothed intensity above ``mask_threshold`` x its Otsu
   threshold, the largest connected component, holes filled;
2. ``classes`` tissue classes from the intensities inside that mask, lesion excluded
   (multi-Otsu or equal quantiles, per image), numbered 1..classes from dark to bright;
3. the real lesion written on top as value ``classes + 1``.

The lesion keeps the highest label value, which is what sampling's lesion edits and the
evaluation's tumour target take as the lesion (see ``PreprocessConfig.anatomy``).

Because the map is computed from the patient's own image, it carries that patient's anatomy:
see the README's privacy note on anatomy conditions.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import filters, measure

from synthmed.config.schema import AnatomyConfig
from synthmed.errors import InputError

MIN_FOREGROUND = 16
"""Fewer foreground pixels than this: the image is treated as empty (all background)."""


def anatomy_intensity(image: np.ndarray, cfg: AnatomyConfig) -> np.ndarray:
    """The smoothed single-channel intensity the classes are computed from.

    Args:
        image: (C, *spatial) float image (normalised, e.g. [0, 1]).
        cfg: ``channel`` (None: mean over channels) and ``smooth`` (Gaussian sigma, pixels).

    Returns:
        float64 array with the image's spatial shape.
    """
    channels = image.shape[0]
    if cfg.channel is not None and not -channels <= cfg.channel < channels:
        raise InputError(
            f"data.preprocess.anatomy.channel {cfg.channel} does not exist in an image with "
            f"{channels} channels"
        )
    values = image.mean(axis=0) if cfg.channel is None else image[cfg.channel]
    values = np.asarray(values, dtype=np.float64)
    if cfg.smooth > 0:  # speckle would otherwise become single-pixel classes
        values = filters.gaussian(values, sigma=cfg.smooth, preserve_range=True)
    return values


def foreground_mask(values: np.ndarray, threshold_scale: float = 0.5) -> np.ndarray:
    """Bool mask of the imaged body part: above ``threshold_scale`` x the Otsu threshold,
    largest connected component, holes filled.

    Half the Otsu threshold (the default) keeps dark tissue at the edge (CSF, skull marrow on
    MRI) that Otsu itself assigns to the background.

    Args:
        values: (H, W) or (D, H, W) intensities.

    Returns:
        bool array of the same shape; all False for a constant or near-empty image.
    """
    if float(values.max()) <= float(values.min()):
        return np.zeros(values.shape, dtype=bool)
    bright = values > threshold_scale * filters.threshold_otsu(values)
    parts = measure.label(bright, connectivity=1)
    if parts.max() == 0:
        return np.zeros(values.shape, dtype=bool)
    largest = 1 + int(np.argmax(np.bincount(parts.ravel())[1:]))
    # scipy fills holes in 2D and 3D alike; skimage's remove_small_holes needs a size
    return ndimage.binary_fill_holes(parts == largest)


def tissue_classes(values: np.ndarray, classes: int, method: str) -> np.ndarray:
    """Class 0..classes-1 of each value, dark to bright.

    ``multiotsu``: skimage's multi-Otsu thresholds (Liao et al. 2001); ``quantile``: equal
    shares of the values per class. Too few distinct values for multi-Otsu (a tiny or flat
    foreground) fall back to quantiles, so every image gets a map.
    """
    if classes == 1:
        return np.zeros(values.shape, dtype=np.int64)
    thresholds = None
    if method == "multiotsu":
        try:
            thresholds = filters.threshold_multiotsu(values, classes=classes)
        except ValueError:  # fewer distinct values than classes
            thresholds = None
    if thresholds is None:
        thresholds = np.quantile(values, np.arange(1, classes) / classes)
    return np.digitize(values, thresholds)


def derive_anatomy(image: np.ndarray, lesion: np.ndarray, cfg: AnatomyConfig) -> np.ndarray:
    """Label map background (0) / tissue classes (1..classes) / lesion (classes + 1).

    Args:
        image: (C, *spatial) float image.
        lesion: bool or 0/1 array with the image's spatial shape (the real lesion label).
        cfg: the ``data.preprocess.anatomy`` settings.

    Returns:
        uint8 label map with the image's spatial shape. Deterministic (no random draws).
    """
    lesion = np.asarray(lesion) > 0
    if lesion.shape != image.shape[1:]:
        raise InputError(f"lesion shape {lesion.shape} != image shape {image.shape[1:]}")
    values = anatomy_intensity(image, cfg)
    # thresholds from tissue only: a bright tumour would otherwise claim a class of its own
    tissue = foreground_mask(values, cfg.mask_threshold) & ~lesion
    out = np.zeros(values.shape, dtype=np.uint8)
    if tissue.sum() >= MIN_FOREGROUND:
        out[tissue] = 1 + tissue_classes(values[tissue], cfg.classes, cfg.method)
    out[lesion] = cfg.classes + 1
    return out
