"""``nifti``: one ``.nii.gz`` image and label per sample, with a real-data voxel spacing.

Synthetic patches have no scanner geometry. So that tools that work in millimetres (resampling,
HD95 in mm, nnU-Net planning) behave sensibly, the spacing is the median spacing of the run's
real training images (after preprocessing); data without spacing (PNG, phantoms) get 1.0 mm per
axis. ``export.json`` records which one was used. The affine is ``diag(dx, dy, dz, 1)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthmed.data.writers import write_nifti
from synthmed.export.core import EXPORTERS, Exporter, ExportJob


def label_volume(label: np.ndarray) -> np.ndarray:
    """(1, *spatial) integer label map in the smallest dtype nnU-Net/MONAI read as a label."""
    dtype = np.uint8 if label.size == 0 or label.max() < 256 else np.int16
    return label[None].astype(dtype)


def write_nifti_case(
    folder: Path, rel_image: str, rel_label: str, image: np.ndarray, label: np.ndarray, job
) -> dict[str, str]:
    """Image (float32 in [0, 1]) and label with the same spacing and affine."""
    write_nifti(folder / rel_image, image.astype(np.float32), spacing=job.info.spacing)
    write_nifti(folder / rel_label, label_volume(label), spacing=job.info.spacing)
    return {"image": rel_image, "label": rel_label}


def write_nifti_dataset(job: ExportJob, folder: Path) -> list[dict[str, str]]:
    return [
        write_nifti_case(folder, f"images/{stem}.nii.gz", f"labels/{stem}.nii.gz", img, lab, job)
        for _, stem, img, lab in job.samples()
    ]


EXPORTERS.register("nifti")(Exporter(write_nifti_dataset))
