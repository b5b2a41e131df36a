"""``synthmed sample --exclude-near-copies``: drop synthetic samples that copy a training image.

A sample is a near-copy when its nearest real training image is closer (1 - NCC) than the
``quantile`` of held-out-to-training distances, i.e. closer than real images of other patients
ever get (:func:`synthmed.evaluation.privacy.near_copy_mask`). Flagged samples are removed from
the dataset folder, which is rewritten atomically; the manifest records the filter in a
``near_copy_filtering`` column and ``filtering.json`` lists what was dropped.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from synthmed.atomic import atomic_dir, write_json, write_text
from synthmed.config.loading import read_run_config
from synthmed.data.pipeline import load_splits
from synthmed.data.synthetic import read_manifest, read_synthetic_arrays
from synthmed.errors import InputError
from synthmed.evaluation.inputs import detect_task, real_rows
from synthmed.evaluation.privacy import near_copy_mask
from synthmed.evaluation.privacy_eval import MAX_PIXEL_SIDE

log = logging.getLogger(__name__)

FILE_COLUMNS = ("image_png", "label_png", "image_nifti", "label_nifti")
COLUMN = "near_copy_filtering"
KEPT_FILES = ("dataset.json", "gate.json")


def manifest_text(rows: list[dict[str, str]], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _rewrite(folder: Path, rows: list[dict], keep: np.ndarray, note: str, summary: dict) -> None:
    """Copy the kept samples into a fresh folder that then replaces ``folder`` in one rename."""
    fields = list(rows[0].keys())
    if COLUMN not in fields:
        fields.append(COLUMN)
    kept = []
    with atomic_dir(folder) as tmp:
        for row, ok in zip(rows, keep, strict=True):
            if not ok:
                continue
            for column in FILE_COLUMNS:
                if row.get(column):
                    (tmp / row[column]).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(folder / row[column], tmp / row[column])
            kept.append({**row, COLUMN: note})
        write_text(tmp / "manifest.csv", manifest_text(kept, fields))
        write_json(tmp / "filtering.json", summary)
        for name in KEPT_FILES:  # the folder's self-description and gate record stay
            if (folder / name).is_file():
                shutil.copy2(folder / name, tmp / name)


def reference_rows(run_dir: Path, what: str = "near-copy filtering") -> tuple[Any, Any]:
    """The run's real training rows and held-out (val + test) rows as the generator saw them
    (:func:`synthmed.evaluation.inputs.real_rows`); InputError without held-out rows."""
    config = read_run_config(run_dir)
    splits = load_splits(config.data)
    task = detect_task(splits["train"])
    real = real_rows(splits["train"], config, task)
    held = list(splits.get("val", [])) + list(splits.get("test", []))
    if not held:
        raise InputError(f"{what} needs held-out real images (val or test split)")
    return real, real_rows(held, config, task)


def ncc_pixel_size(images: np.ndarray) -> int | None:
    """The side NCC compares at: images larger than ``MAX_PIXEL_SIDE`` are downsampled."""
    return MAX_PIXEL_SIDE if max(images.shape[2:]) > MAX_PIXEL_SIDE else None


def _flag(run_dir: Path, folder: Path, quantile: float) -> tuple[np.ndarray, float, int | None]:
    """Near-copy mask of the dataset's samples, the threshold and the NCC pixel size used."""
    real, holdout = reference_rows(run_dir)
    images, _ = read_synthetic_arrays(folder)
    pixel_size = ncc_pixel_size(real.images)
    mask, threshold = near_copy_mask(
        images, real.images, holdout.images, quantile, "auto", pixel_size
    )
    return mask, float(threshold), pixel_size


def filter_near_copies(
    run_dir: str | Path, synthetic_dir: str | Path, quantile: float = 0.01
) -> dict[str, Any]:
    """Remove the near-copies of training images from an exported synthetic dataset.

    Args:
        run_dir: the trained run (its config says where the real training data are).
        synthetic_dir: the dataset folder written by ``synthmed sample``.
        quantile: false-flag rate on held-out real images (the threshold's calibration).

    Returns:
        The ``filtering.json`` summary: ``applied``, ``quantile``, ``threshold``
        (1 - NCC), ``n_before``, ``n_after``, ``n_dropped`` and ``dropped`` (index and seed
        of each removed sample).
    """
    if not 0.0 < quantile < 1.0:
        raise InputError(f"--quantile must be in (0, 1), got {quantile}")
    run_dir, folder = Path(run_dir), Path(synthetic_dir)
    rows = read_manifest(folder)
    mask, threshold, pixel_size = _flag(run_dir, folder, quantile)
    note = f"applied: threshold={threshold:.6g}, quantile={quantile:g}"
    summary = {
        "applied": True,
        "method": "1 - NCC to the nearest real training image below the held-out quantile",
        "quantile": quantile,
        "threshold": float(threshold),
        "pixel_size": pixel_size,
        "n_before": len(rows),
        "n_after": int((~mask).sum()),
        "n_dropped": int(mask.sum()),
        "dropped": [
            {"index": rows[i].get("index"), "seed": rows[i].get("seed")}
            for i in np.flatnonzero(mask)
        ],
    }
    if mask.all():
        raise InputError(f"every synthetic sample is a near-copy ({note}); nothing left to export")
    _rewrite(folder, rows, ~mask, note, summary)
    log.info("near-copy filter: dropped %d of %d samples (%s)", mask.sum(), len(rows), note)
    return summary
