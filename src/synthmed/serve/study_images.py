"""Images for a reader study: chosen from a published dataset and an uploaded real set, and
re-encoded the same way so nothing but the pixels can tell them apart.

Both sides go through one conversion: the middle slice of a 3D volume, the first channel
(or RGB when there are three), min-max to 8 bits, a PNG without metadata. File names,
formats, bit depths and headers of the sources therefore never reach a reader. Images of
different sizes or colour modes are refused rather than resized: a reader would spot the
side from the size alone, and resampling one side only would mark it too.
"""

from __future__ import annotations

import csv
import io
import random
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np

from synthmed.errors import InputError
from synthmed.serve.bundle import CONTENT, safe_extract
from synthmed.serve.rules import Refusal

MANIFEST = f"{CONTENT}/manifest.csv"
IMAGE_ENDINGS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".nii.gz", ".dcm", ".npy")


@dataclass(frozen=True)
class StudyImage:
    """One image ready for readers: where it came from (admins only), class, PNG bytes."""

    truth: str
    source: str
    class_name: str | None
    png: bytes
    look: tuple[int, ...]
    """(height, width, channels) of the PNG: must agree across the whole study."""


def to_display(array: np.ndarray) -> np.ndarray:
    """Channel-first ``(C, H, W)`` or ``(C, D, H, W)`` -> ``(H, W)`` or ``(H, W, 3)`` uint8."""
    if array.ndim == 4:  # a volume: its middle slice along depth
        array = array[:, array.shape[1] // 2]
    if array.ndim != 3:
        raise InputError(f"expected a channel-first 2D image or 3D volume, got {array.shape}")
    image = np.moveaxis(array[:3], 0, -1) if array.shape[0] == 3 else array[0]
    lo, hi = float(image.min()), float(image.max())
    unit = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image, dtype=np.float32)
    return np.round(unit * 255).astype(np.uint8)


def encode(path: Path, truth: str, source: str, class_name: str | None) -> StudyImage:
    """Read any supported image file and re-encode it as a plain 8-bit PNG."""
    from PIL import Image

    from synthmed.data.readers import read_image

    try:
        pixels = to_display(read_image(path).array)
    except InputError as exc:
        raise Refusal("bad_study", f"cannot read {truth} image {source}: {exc.problem}") from None
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    look = pixels.shape if pixels.ndim == 3 else (*pixels.shape, 1)
    return StudyImage(truth, source, class_name, buf.getvalue(), tuple(look))


def synthetic_images(bundle: BinaryIO, n: int, seed: int, work: Path) -> list[StudyImage]:
    """``n`` images drawn (seeded) from a published dataset bundle's manifest rows."""
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            raise Refusal("bad_study", "the synthetic item has no manifest.csv")
        rows = list(csv.DictReader(io.StringIO(archive.read(MANIFEST).decode("utf-8"))))
        usable = [r for r in rows if f"{CONTENT}/{first_image(r)}" in names]
        if len(usable) < n:
            raise Refusal(
                "bad_study",
                f"the synthetic item has {len(usable)} image files (npz exports have none), "
                f"the study asks for {n}",
            )
        chosen = random.Random(seed).sample(usable, n)
        out = []
        for row in chosen:
            member = f"{CONTENT}/{first_image(row)}"
            local = work / "synthetic" / member
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(archive.read(member))
            out.append(encode(local, "synthetic", member, row.get("class") or None))
    return out


def first_image(row: dict[str, str]) -> str:
    """The row's exported image file (the first channel's file when channels are split)."""
    return (row.get("export_image") or "").split(";")[0]


def real_images(
    upload: Path, n: int, seed: int, work: Path, max_file: int, max_total: int
) -> list[StudyImage]:
    """``n`` images drawn (seeded) from an uploaded zip; an image's class is its folder."""
    files = safe_extract(upload, work / "real", max_file, max_total)
    names = sorted(
        name
        for name in files
        if name.lower().endswith(IMAGE_ENDINGS)
        and not any(part.startswith((".", "__MACOSX")) for part in PurePosixPath(name).parts)
    )
    if len(names) < n:
        raise Refusal(
            "bad_study", f"the real-image zip has {len(names)} images, the study asks for {n}"
        )
    chosen = random.Random(seed + 1).sample(names, n)
    return [encode(files[name], "real", name, folder_class(name)) for name in chosen]


def folder_class(name: str) -> str | None:
    """``CLASS/image.png`` -> ``CLASS``; an image at the top of the zip has no class."""
    parent = PurePosixPath(name).parent.name
    return parent or None


def study_images(
    bundle: BinaryIO,
    upload: Path,
    n: int,
    seed: int,
    spool: Path,
    limits: tuple[int, int],
) -> list[StudyImage]:
    """Both sides, checked to look alike (size, channels); refused with the numbers if not."""
    spool.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=spool, prefix="study-") as tmp:
        synthetic = synthetic_images(bundle, n, seed, Path(tmp))
        real = real_images(upload, n, seed, Path(tmp), *limits)
    looks = {image.look for image in synthetic + real}
    if len(looks) > 1:
        shown = ", ".join("x".join(map(str, look)) for look in sorted(looks))
        raise Refusal(
            "bad_study",
            f"images differ in size or channels ({shown}; height x width x channels): a reader "
            "could tell the sides apart by that alone; give real images of the synthetic size",
        )
    return synthetic + real
