"""No PHI leaves: a model trained on DICOMs with made-up patient data, exported in every
format and packaged, contains none of the source header values in any file."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from synthmed import api
from synthmed.config import resolve_config
from synthmed.export import export_dataset, formats
from synthmed.packaging import build_package
from tests.training.test_training import TINY

PHI = {
    "PatientName": "Doe^Jane",
    "PatientID": "PHI-123456",
    "PatientBirthDate": "19700101",
    "StudyDate": "20200304",
    "InstitutionName": "Secret Hospital",
}
NEEDLES = [v.encode() for v in PHI.values()] + [b"Jane", b"Secret"]  # >= 4 bytes: no chance hits


def write_source_dicom(path: Path, pixels: np.ndarray) -> None:
    """An MR slice whose header holds made-up PHI (pydicom 3)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    for key, value in PHI.items():
        setattr(ds, key, value)
    ds.Modality, ds.StudyDescription = "MR", "Doe^Jane brain PHI-123456"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = [0.5, 0.75]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def write_phi_dataset(root: Path, n: int = 6, size: int = 32) -> None:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        label = np.zeros((size, size), np.uint8)
        label[8 + i : 20, 6:22] = 255
        write_source_dicom(root / f"case{i:02d}.dcm", rng.integers(0, 4000, (size, size)))
        Image.fromarray(label).save(root / f"case{i:02d}_mask.png")


def payloads(path: Path) -> list[bytes]:
    """The raw bytes plus every decompressed layer (gzip, zip members, PNG text chunks)."""
    raw = path.read_bytes()
    out = [raw]
    if raw[:2] == b"\x1f\x8b":
        out.append(gzip.decompress(raw))
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            out += [archive.read(name) for name in archive.namelist()]
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        out.append(json.dumps(Image.open(path).info, default=str).encode())
    return out


def test_no_source_header_value_reaches_any_export(tmp_path: Path):
    data = tmp_path / "source"
    write_phi_dataset(data)
    source = {
        "kind": "folders",
        "root": str(data),
        "image_glob": "*.dcm",
        "label_glob": "*.png",
        "id_regex": r"case(\d+)",
        "label_values": [0, 255],
        "label_names": ["background", "lesion"],
    }
    overrides = TINY + ["data.preprocess.channels=keep", "train.steps=2", "sample.n=2"]
    user = {"name": "phi", "data": {"train": source}}
    cfg = resolve_config(user, preset="demo-gan", overrides=overrides)
    run = tmp_path / "run"
    api.train(cfg, run, quiet=True)
    synthetic = api.sample(run, device="cpu", quiet=True)
    exports = [export_dataset(synthetic, f, tmp_path / "export" / f, quiet=True) for f in formats()]
    package = build_package(run, tmp_path / "phi.synthmed")

    nifti_meta = json.loads((tmp_path / "export" / "nifti" / "export.json").read_text())
    assert nifti_meta["spacing_mm"] == [0.5, 0.75]  # geometry, not identity, is carried over
    scanned = [p for folder in [*exports, package, run] for p in folder.rglob("*") if p.is_file()]
    assert len(scanned) > 40
    for path in scanned:
        for blob in payloads(path):
            for needle in NEEDLES:
                assert needle not in blob, f"{needle!r} found in {path}"
