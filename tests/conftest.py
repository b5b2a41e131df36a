"""Shared fixtures: tiny image+label files written with each format's own library.

Fixtures return factories (or paths) so every test builds exactly the few files it needs in
its own ``tmp_path``; nothing here needs downloads or the shared datasets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from synthmed.data.types import Item


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _disc_label(shape: tuple[int, ...], centre: tuple[int, ...], radius: float) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
    return (dist2 <= radius**2).astype(np.uint8)


@pytest.fixture
def make_item() -> Callable[..., Item]:
    """Factory for in-memory items: ``make_item(patient_id, shape=(1, 32, 32), ...)``."""

    def make(
        patient_id: str = "p0",
        shape: tuple[int, ...] = (1, 32, 32),
        seed: int = 0,
        lesion: bool = True,
        fov: bool = False,
    ) -> Item:
        gen = np.random.default_rng(seed)
        spatial = shape[1:]
        centre = tuple(int(gen.integers(s // 4, 3 * s // 4)) for s in spatial)
        label = _disc_label(spatial, centre, min(spatial) / 6)
        meta = {}
        if fov:
            middle = tuple(s // 2 for s in spatial)
            meta["fov"] = _disc_label(spatial, middle, min(spatial) / 2.2).astype(bool)
        return Item(
            image=gen.random(shape, dtype=np.float32),
            label=label if lesion else np.zeros(spatial, np.uint8),
            patient_id=patient_id,
            source=f"mem:{patient_id}:{seed}",
            meta=meta,
        )

    return make


@pytest.fixture
def png_pairs(tmp_path: Path) -> Callable[..., Path]:
    """Write ``n`` grey 8-bit PNG images + {0, 255} masks: root/images, root/labels."""
    from PIL import Image

    def write(n: int = 3, size: int = 24, root: Path | None = None) -> Path:
        root = root or tmp_path / "pngs"
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        gen = np.random.default_rng(1)
        for k in range(n):
            image = gen.integers(0, 256, (size, size), dtype=np.uint8)
            label = _disc_label((size, size), (size // 2, size // 2 + k), size / 5) * 255
            Image.fromarray(image).save(root / "images" / f"case_{k:02d}.png")
            Image.fromarray(label.astype(np.uint8)).save(root / "labels" / f"case_{k:02d}_seg.png")
        return root

    return write


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    z: float = 0.0,
    instance: int = 1,
    slope: float = 1.0,
    intercept: float = 0.0,
    series_uid: str | None = None,
    spacing: tuple[float, float] = (0.5, 0.75),
) -> Path:
    """One MR slice (uint16 stored values) with geometry and rescale tags (pydicom 3)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = series_uid or "1.2.3.4.5"
    ds.Modality, ds.PatientID = "MR", "anon"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = list(spacing)
    ds.ImagePositionPatient = [0.0, 0.0, float(z)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.InstanceNumber, ds.SliceThickness = instance, 2.0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def dicom_series(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 3-slice series whose file-name order is the reverse of its slice order.

    Returns the folder and the expected (D, H, W) volume in rescaled units (slope 2,
    intercept -100), ordered by ImagePositionPatient z = 0, 3, 6.
    """
    folder = tmp_path / "series"
    folder.mkdir()
    gen = np.random.default_rng(2)
    stored = gen.integers(0, 1000, (3, 6, 5), dtype=np.uint16)
    for k in range(3):
        write_dicom(
            folder / f"slice_{2 - k}.dcm",
            stored[k],
            z=3.0 * k,
            instance=k + 1,
            slope=2.0,
            intercept=-100.0,
        )
    (folder / "notes.txt").write_text("not dicom")
    return folder, stored.astype(np.float32) * 2 - 100


@pytest.fixture
def dicom_writer() -> Callable[..., Path]:
    """The :func:`write_dicom` helper as a fixture."""
    return write_dicom
