"""A sample grid for a dataset's page: the first images with their labels overlaid.

Made once at publish time from the checked files, so browsing never decodes medical images.
Formats whose samples are not one file per image (npz) get no grid.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from synthmed.errors import InputError
from synthmed.serve.bundle import CONTENT

log = logging.getLogger(__name__)
MAX_TILES = 16


def _unit(image: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] per image: exports store 8/16-bit or float intensities."""
    lo, hi = float(image.min()), float(image.max())
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


def sample_grid(files: dict[str, Path], rows: list[dict[str, str]], out: Path) -> Path | None:
    """PNG of up to 16 samples (image | label overlay pairs); None when they cannot be read."""
    from synthmed.data.readers import read_image, read_label
    from synthmed.report.figures import pair_grid, save_png

    images, labels = [], []
    for row in rows[:MAX_TILES]:
        image = (row.get("export_image") or "").split(";")[0]
        label = row.get("export_label") or ""
        if f"{CONTENT}/{image}" not in files or f"{CONTENT}/{label}" not in files:
            return None
        try:
            images.append(_unit(read_image(files[f"{CONTENT}/{image}"]).array))
            labels.append(read_label(files[f"{CONTENT}/{label}"]).array)
        except InputError as exc:
            log.warning("no sample grid: %s", exc)
            return None
    if not images or len({im.shape for im in images}) != 1:
        return None
    try:
        rgb = pair_grid(np.stack(images), np.stack(labels), ncol=8)
    except ValueError as exc:  # label and image shapes disagree
        log.warning("no sample grid: %s", exc)
        return None
    return save_png(out, rgb, min_size=512)
