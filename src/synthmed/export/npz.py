"""``npz``: one MedMNIST-layout archive, so MedMNIST-style loaders read synthetic sets as is.

Keys (all plain arrays; ``np.load(path, allow_pickle=False)`` reads them):

* ``train_images``: uint8 (N, H, W) grey or (N, H, W, 3) RGB as in MedMNIST (uint16 with
  ``--bits 16``; 3D: (N, D, H, W)).
* ``train_labels``: (N, 1) image-level label as in MedMNIST: the manifest's ``class_id`` when
  the generator is class-conditional, else 1 when the label map has foreground, else 0.
* ``train_masks``: the segmentation label maps (N, *spatial), uint8 (MedMNIST has none).
* ``train_seeds``: (N,) generator seed per sample.
* ``manifest_csv`` and ``export_json``: the provenance, inside the one file that gets shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from synthmed.atomic import atomic_path
from synthmed.export.core import (
    EXPORTERS,
    Exporter,
    ExportJob,
    manifest_csv,
    manifest_rows,
    provenance,
)

ARCHIVE = "synthetic.npz"


def medmnist_images(images: np.ndarray, bits: int) -> np.ndarray:
    """(N, C, *spatial) floats in [0, 1] -> MedMNIST integers, channels last for RGB."""
    top, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    ints = np.rint(np.clip(images, 0.0, 1.0) * top).astype(dtype)
    return ints[:, 0] if ints.shape[1] == 1 else np.moveaxis(ints, 1, -1)


def image_level_labels(job: ExportJob) -> np.ndarray:
    if all(row.get("class_id", "") != "" for row in job.rows):
        return np.array([[int(row["class_id"])] for row in job.rows], dtype=np.int64)
    flat = job.labels.reshape(len(job.labels), -1)
    return (flat > 0).any(axis=1).astype(np.int64)[:, None]


def write_npz_dataset(job: ExportJob, folder: Path) -> list[dict[str, str]]:
    outputs = []
    for pos, _, _, _ in job.samples():
        outputs.append(
            {"image": f"{ARCHIVE}:train_images[{pos}]", "label": f"{ARCHIVE}:train_masks[{pos}]"}
        )
    mask_dtype = np.uint8 if job.labels.size == 0 or job.labels.max() < 256 else np.int32
    arrays = {
        "train_images": medmnist_images(job.images, job.bits),
        "train_labels": image_level_labels(job),
        "train_masks": job.labels.astype(mask_dtype),
        "train_seeds": np.array([int(r.get("seed") or 0) for r in job.rows], dtype=np.int64),
        "manifest_csv": np.array(manifest_csv(manifest_rows(job, outputs))),
        "export_json": np.array(json.dumps(provenance(job))),
    }
    with atomic_path(folder / ARCHIVE) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return outputs


EXPORTERS.register("npz")(Exporter(write_npz_dataset))
