"""Read a synthetic dataset folder (``images/``, ``labels/``, ``manifest.csv``) back to arrays.

Goes through the same readers as real data, so evaluation sees exactly what a user who
downloads the exported files would see (8-bit PNG quantisation included).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from synthmed.data.readers import read_image, read_label
from synthmed.errors import InputError


def read_manifest(folder: str | Path) -> list[dict[str, str]]:
    path = Path(folder) / "manifest.csv"
    if not path.is_file():
        raise InputError("no manifest.csv: not a synthetic dataset (run `synthmed sample`)", folder)
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def read_synthetic_arrays(
    folder: str | Path, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (N, C, *spatial) in [0, 1] and labels (N, *spatial) listed in the manifest.

    PNG images were written as 8-bit (0..255); NIfTI images hold floats in [0, 1]. Labels are
    None for image-only datasets (no label files in the manifest).
    """
    folder = Path(folder)
    rows = read_manifest(folder)[:limit]
    if not rows:
        raise InputError("manifest.csv lists no samples", folder / "manifest.csv")
    images, labels = [], []
    for row in rows:
        if row.get("image_png"):
            images.append(read_image(folder / row["image_png"]).array / 255.0)
            if row.get("label_png"):
                labels.append(read_label(folder / row["label_png"]).array)
        else:  # a 2D image is stored as a single-slice volume: drop that axis again
            image = read_image(folder / row["image_nifti"]).array
            images.append(image[:, 0] if image.ndim == 4 and image.shape[1] == 1 else image)
            if row.get("label_nifti"):
                label = read_label(folder / row["label_nifti"]).array
                labels.append(label[0] if label.ndim == 3 and label.shape[0] == 1 else label)
    if labels and len(labels) != len(images):
        raise InputError("manifest.csv lists label files for some samples only", folder)
    stacked = np.stack(labels).astype(np.int64) if labels else None
    return np.stack(images).astype(np.float32), stacked


def read_synthetic_classes(folder: str | Path, limit: int | None = None) -> np.ndarray | None:
    """Image-level class per sample (manifest column ``class``), or None when absent."""
    rows = read_manifest(folder)[:limit]
    values = [row.get("class", "") for row in rows]
    if not values or any(v == "" for v in values):
        return None
    return np.asarray([int(v) for v in values], dtype=np.int64)
