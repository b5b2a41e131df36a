"""``png``: 8- or 16-bit PNG images and 8-bit label PNGs (class values unchanged).

16-bit keeps more of the generator's float output; Pillow writes 16-bit PNG for grey images
only, so RGB samples must be exported at 8 bit.
"""

from __future__ import annotations

from pathlib import Path

from synthmed.data.writers import write_label_png, write_png
from synthmed.errors import InputError
from synthmed.export.core import EXPORTERS, Exporter, ExportJob


def write_png_dataset(job: ExportJob, folder: Path) -> list[dict[str, str]]:
    if job.spatial_dims != 2:
        raise InputError("png export needs 2D samples; use nifti or nnunet for 3D")
    if job.bits == 16 and job.images.shape[1] != 1:
        raise InputError("16-bit PNG is written for grey images only; use --bits 8 for RGB")
    if job.labels.size and job.labels.max() > 255:
        raise InputError("label values above 255 do not fit a PNG label map; use nifti")
    outputs = []
    for _, stem, image, label in job.samples():
        write_png(folder / "images" / f"{stem}.png", image, bits=job.bits)
        write_label_png(folder / "labels" / f"{stem}.png", label)
        outputs.append({"image": f"images/{stem}.png", "label": f"labels/{stem}.png"})
    return outputs


EXPORTERS.register("png")(Exporter(write_png_dataset))
