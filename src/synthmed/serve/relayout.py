"""A stored dataset export re-laid as another export format (``?layout=nnunet|monai``).

The bundle keeps the export exactly as published (NIfTI, PNG, DICOM, npz, ...). A reader who
wants to train nnU-Net or MONAI on it should not have to convert it by hand, so the server
reads the export's samples back through its own ``manifest.csv`` (``export_image`` /
``export_label`` columns) and hands them to the registered exporter of the requested format
(:mod:`synthmed.export`), provenance included. Exports do not carry the sampled dataset folder
they were made from; their files are the source. NIfTI exports round-trip exactly; integer
formats (PNG, DICOM, npz) are scaled back to [0, 1] from their 8- or 16-bit range.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from synthmed.errors import InputError
from synthmed.serve.bundle import CONTENT
from synthmed.serve.gate import manifest_rows
from synthmed.serve.rules import Refusal

LAYOUTS = ("original", "nnunet", "monai")
EXPORT_COLUMNS = ("export_format", "export_image", "export_label")


def _unit_range(array: np.ndarray) -> np.ndarray:
    """Integer-coded intensities (PNG, DICOM: read as floats) back to [0, 1]; floats kept."""
    if array.size == 0 or (float(array.min()) >= 0.0 and float(array.max()) <= 1.0):
        return array.astype(np.float32)
    top = 255.0 if float(array.max()) <= 255.0 else 65535.0
    return (array / top).astype(np.float32)


def _drop_slice_axis(array: np.ndarray, spatial_dims: int, channel_first: bool) -> np.ndarray:
    """2D samples are stored as single-slice volumes (x, y, 1): drop that axis again."""
    axis = 1 if channel_first else 0
    extra = array.ndim - spatial_dims - (1 if channel_first else 0)
    return array.squeeze(axis) if extra == 1 and array.shape[axis] == 1 else array


def _read_npz(folder: Path, rows: list[dict[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    archive = (rows[0]["export_image"]).split(":", 1)[0]
    with np.load(folder / archive, allow_pickle=False) as data:
        ints, masks = data["train_images"], data["train_masks"]
    top = float(np.iinfo(ints.dtype).max)
    images = ints.astype(np.float32) / top
    rgb = images.ndim == masks.ndim + 1
    images = np.moveaxis(images, -1, 1) if rgb else images[:, None]
    return images, masks.astype(np.int64)


def read_export_arrays(
    folder: Path, rows: list[dict[str, str]], spatial_dims: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, *spatial) in [0, 1] and labels (N, *spatial) of an export folder."""
    from synthmed.data.readers import read_image, read_label

    if rows and rows[0].get("export_image", "").endswith("]"):  # one npz archive
        return _read_npz(folder, rows)
    images, labels = [], []
    for row in rows:
        channels = [read_image(folder / p).array for p in row["export_image"].split(";") if p]
        image = np.concatenate([_drop_slice_axis(c, spatial_dims, True) for c in channels])
        images.append(_unit_range(image))
        label = read_label(folder / row["export_label"]).array
        labels.append(_drop_slice_axis(label, spatial_dims, False))
    return np.stack(images), np.stack(labels).astype(np.int64)


def export_job(content: Path, layout: str, name: str):
    """The :class:`~synthmed.export.core.ExportJob` that writes ``content`` as ``layout``."""
    from synthmed.export.core import ExportInfo, ExportJob

    export: dict[str, Any] = json.loads((content / "export.json").read_text(encoding="utf-8"))
    rows = manifest_rows(content / "manifest.csv")
    spacing = tuple(float(v) for v in export.get("spacing_mm") or ())
    images, labels = read_export_arrays(content, rows, len(spacing) or 2)
    info = ExportInfo(
        list(export.get("label_names") or []),
        list(export.get("channel_names") or []),
        spacing or (1.0,) * (images.ndim - 2),
        str(export.get("spacing_source") or ""),
    )
    source = [{k: v for k, v in row.items() if k not in EXPORT_COLUMNS} for row in rows]
    job = ExportJob(images, labels, source, info, layout, name)
    gate = export.get("export_gate")
    job.gate = gate if isinstance(gate, dict) else None
    return job


def relay(files: dict[str, Path], layout: str, name: str, out: Path) -> Path:
    """Write the bundle's dataset export (``files``: the extracted bundle) as ``layout``
    into the new folder ``out``; returns ``out``.

    Raises:
        Refusal: ``bad_query`` for an unknown layout, ``bad_bundle`` when the stored export
            cannot be read back.
    """
    from synthmed.export import EXPORTERS
    from synthmed.export.core import write_provenance

    if layout not in LAYOUTS[1:]:
        raise Refusal("bad_query", f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    content = files[f"{CONTENT}/manifest.csv"].parent
    try:
        job = export_job(content, layout, name)
        out.mkdir(parents=True)
        write_provenance(out, job, EXPORTERS.get(layout).write(job, out))
    except (InputError, KeyError, ValueError) as exc:
        raise Refusal("bad_bundle", f"cannot re-lay the stored export as {layout}: {exc}") from None
    return out
