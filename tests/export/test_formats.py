"""Export formats: each layout checked against its tool's documented format, with round trips."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from synthmed.data.readers import read_image, read_label
from synthmed.data.synthetic import read_synthetic_arrays
from synthmed.data.writers import write_nifti
from synthmed.errors import InputError
from synthmed.export import export_dataset, formats
from tests.export.helpers import tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def source(run: Path) -> tuple[np.ndarray, np.ndarray]:
    return read_synthetic_arrays(run / "synthetic")


def manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_format_is_registered():
    assert formats() == ["dicom", "monai", "nifti", "nnunet", "npz", "png"]


def test_nnunet_layout_matches_documented_format(run: Path, source, tmp_path: Path):
    folder = export_dataset(run / "synthetic", "nnunet", tmp_path / "nnUNet_raw", quiet=True)
    assert folder == tmp_path / "nnUNet_raw" / "Dataset500_Synthmed"
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "green"}
    assert meta["labels"] == {"background": 0, "vessel": 1}
    assert meta["numTraining"] == 3 and meta["file_ending"] == ".nii.gz"
    cases = sorted(p.name[: -len(".nii.gz")] for p in (folder / "labelsTr").iterdir())
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == [
        f"{c}_0000.nii.gz" for c in cases
    ]
    images, labels = source
    for k, case in enumerate(cases):
        img = nib.load(folder / "imagesTr" / f"{case}_0000.nii.gz")
        seg = nib.load(folder / "labelsTr" / f"{case}.nii.gz")
        assert img.shape == seg.shape == (16, 16, 1)  # 2D as (x, y, 1), as nnU-Net does
        np.testing.assert_array_equal(img.affine, seg.affine)
        np.testing.assert_allclose(img.get_fdata()[..., 0].T, images[k, 0], atol=1e-6)
        np.testing.assert_array_equal(np.asarray(seg.dataobj)[..., 0].T, labels[k])
        assert set(np.unique(np.asarray(seg.dataobj))) <= set(meta["labels"].values())
    rows = manifest(folder)
    assert [r["export_label"] for r in rows] == [f"labelsTr/{c}.nii.gz" for c in cases]
    # the export gate (on by default) filtered the sampled set; each file carries its verdict
    assert all(r["near_copy_filtering"].startswith("applied: threshold=") for r in rows)
    assert {r["export_gate"] for r in rows} == {"passed"}
    assert meta["synthmed"]["generator"]["checkpoint_sha256"] == rows[0]["checkpoint_sha256"]


def _inline_pool_context(_method: str):
    """Runs nnU-Net's multiprocessing checks in this process (spawning costs seconds)."""

    class Pool:
        def __init__(self, *args, **kwargs) -> None: ...

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None: ...

        def starmap(self, fn, iterable):
            return [fn(*args) for args in iterable]

    return type("Context", (), {"Pool": Pool})


def test_nnunet_passes_nnunetv2_integrity_check(run: Path, tmp_path: Path, monkeypatch):
    verify = pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity")
    folder = export_dataset(run / "synthetic", "nnunet", tmp_path, name="Dataset777_T", quiet=True)
    monkeypatch.setattr(
        verify, "multiprocessing", SimpleNamespace(get_context=_inline_pool_context)
    )
    verify.verify_dataset_integrity(str(folder), num_processes=1)  # raises on any problem


def test_monai_datalist_loads_and_round_trips(run: Path, source, tmp_path: Path):
    from monai.data import load_decathlon_datalist
    from monai.transforms import Compose, LoadImaged, SqueezeDimd

    folder = export_dataset(run / "synthetic", "monai", tmp_path / "monai", quiet=True)
    items = load_decathlon_datalist(folder / "datalist.json", is_segmentation=True)
    assert len(items) == 3 and all(Path(it["image"]).is_file() for it in items)
    keys = ["image", "label"]
    load = Compose([LoadImaged(keys, ensure_channel_first=True), SqueezeDimd(keys, dim=-1)])
    images, labels = source
    for k, item in enumerate(items):
        data = load(item)
        np.testing.assert_allclose(data["image"].numpy()[0].T, images[k, 0], atol=1e-6)
        np.testing.assert_array_equal(data["label"].numpy()[0].T, labels[k])
    assert [it["seed"] for it in items] == [0, 1, 2]


def test_nifti_spacing_given_or_default(run: Path, source, tmp_path: Path):
    folder = export_dataset(run / "synthetic", "nifti", tmp_path / "a", spacing=[0.5, 0.8])
    row = manifest(folder)[1]
    image = read_image(folder / row["export_image"])
    label = read_label(folder / row["export_label"])
    assert image.spacing == pytest.approx((0.5, 0.8))
    np.testing.assert_allclose(image.array, source[0][1], atol=1e-6)
    np.testing.assert_array_equal(label.array, source[1][1])
    folder = export_dataset(run / "synthetic", "nifti", tmp_path / "b", quiet=True)
    info = json.loads((folder / "export.json").read_text())
    assert info["spacing_mm"] == [1.0, 1.0] and "default 1.0 mm" in info["spacing_source"]
    with pytest.raises(InputError, match="2 values"):
        export_dataset(run / "synthetic", "nifti", tmp_path / "c", spacing=[1.0])


@pytest.mark.parametrize("bits", [8, 16])
def test_png_round_trip(run: Path, source, tmp_path: Path, bits: int):
    folder = export_dataset(run / "synthetic", "png", tmp_path, bits=bits, quiet=True)
    for k, row in enumerate(manifest(folder)):
        stored = np.asarray(Image.open(folder / row["export_image"]))
        assert stored.dtype == (np.uint8 if bits == 8 else np.uint16)
        np.testing.assert_array_equal(stored, np.rint(source[0][k, 0] * (2**bits - 1)))
        np.testing.assert_array_equal(read_label(folder / row["export_label"]).array, source[1][k])


def test_npz_medmnist_layout_with_provenance(run: Path, source, tmp_path: Path):
    folder = export_dataset(run / "synthetic", "npz", tmp_path, quiet=True)
    archive = np.load(folder / "synthetic.npz", allow_pickle=False)
    images = archive["train_images"]
    assert images.dtype == np.uint8 and images.shape == (3, 16, 16)
    np.testing.assert_array_equal(archive["train_images"], np.rint(source[0][:, 0] * 255))
    np.testing.assert_array_equal(archive["train_masks"], source[1])
    assert archive["train_labels"].shape == (3, 1)
    np.testing.assert_array_equal(archive["train_seeds"], [0, 1, 2])
    assert "checkpoint_sha256" in str(archive["manifest_csv"])
    assert json.loads(str(archive["export_json"]))["n"] == 3


def test_dicom_is_marked_synthetic_with_fresh_uids(run: Path, source, tmp_path: Path):
    import pydicom

    folder = export_dataset(run / "synthetic", "dicom", tmp_path, quiet=True)
    uids = set()
    for k, row in enumerate(manifest(folder)):
        image = pydicom.dcmread(folder / row["export_image"])
        label = pydicom.dcmread(folder / row["export_label"])
        assert image.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
        assert list(image.ImageType) == ["DERIVED", "SECONDARY"] and image.ConversionType == "SYN"
        description = image.SeriesDescription
        assert description.startswith("SYNTHETIC") and len(description) <= 64
        assert str(image.PatientName) == "SYNTHETIC" and image.BurnedInAnnotation == "NO"
        assert image.StudyInstanceUID == label.StudyInstanceUID
        assert image.FrameOfReferenceUID == label.FrameOfReferenceUID
        assert image.SeriesInstanceUID != label.SeriesInstanceUID
        uids |= {image.SOPInstanceUID, label.SOPInstanceUID, image.StudyInstanceUID}
        np.testing.assert_array_equal(image.pixel_array, np.rint(source[0][k, 0] * 255))
        np.testing.assert_array_equal(read_label(folder / row["export_label"]).array, source[1][k])
        assert f"seed={row['seed']}" in image.ImageComments
    assert len(uids) == 3 * 3


def test_manifest_keeps_edits_and_near_copy_filtering(run: Path, tmp_path: Path):
    synthetic = tmp_path / "edited"
    shutil.copytree(run / "synthetic", synthetic)
    rows = manifest(synthetic)
    for row in rows:
        row.update(edits="flip_lr", near_copy_filtering="applied (ncc > 0.9 removed)")
    with (synthetic / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    folder = export_dataset(synthetic, "png", tmp_path / "png", run_dir=run, quiet=True)
    out = manifest(folder)
    assert {r["edits"] for r in out} == {"flip_lr"}
    assert {r["near_copy_filtering"] for r in out} == {"applied (ncc > 0.9 removed)"}
    for key in ("seed", "model", "checkpoint_sha256", "config_hash", "synthmed_version"):
        assert [r[key] for r in out] == [r[key] for r in rows]
    plain = export_dataset(run / "synthetic", "npz", tmp_path / "npz", quiet=True)
    assert {r["edits"] for r in manifest(plain)} == {"none"}


def test_bad_requests_are_input_errors(run: Path, tmp_path: Path):
    with pytest.raises(InputError, match="valid names: dicom, monai"):
        export_dataset(run / "synthetic", "analyze", tmp_path / "x")
    with pytest.raises(InputError, match="bits"):
        export_dataset(run / "synthetic", "png", tmp_path / "x", bits=12)
    with pytest.raises(InputError, match="DatasetNNN_Name"):
        export_dataset(run / "synthetic", "nnunet", tmp_path / "x", name="bad name!")
    with pytest.raises(InputError, match="manifest.csv"):
        export_dataset(tmp_path, "png", tmp_path / "x")


def test_failed_export_leaves_nothing(run: Path, tmp_path: Path, monkeypatch):
    import synthmed.export.png as png_format

    calls = []

    def fail_on_second(path, label):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")

    monkeypatch.setattr(png_format, "write_label_png", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        export_dataset(run / "synthetic", "png", tmp_path / "out", quiet=True)
    assert list(tmp_path.iterdir()) == []  # no half-written export, no temporary folder


def volume_dataset(folder: Path, n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A hand-written 3D synthetic set (NIfTI + manifest), as `synthmed sample` writes it."""
    rng = np.random.default_rng(0)
    images = rng.random((n, 1, 4, 6, 5)).astype(np.float32)
    labels = (images[:, 0] > 0.7).astype(np.int64)
    rows = []
    for k in range(n):
        write_nifti(folder / "images" / f"v{k}.nii.gz", images[k])
        write_nifti(folder / "labels" / f"v{k}.nii.gz", labels[k][None].astype(np.uint8))
        rows.append(
            {
                "index": k,
                "seed": k,
                "image_png": "",
                "label_png": "",
                "image_nifti": f"images/v{k}.nii.gz",
                "label_nifti": f"labels/v{k}.nii.gz",
            }
        )
    with (folder / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return images, labels


def test_3d_samples(tmp_path: Path):
    images, labels = volume_dataset(tmp_path / "syn")
    nifti = export_dataset(tmp_path / "syn", "nifti", tmp_path / "nii", spacing=[2, 0.5, 0.5])
    image = read_image(nifti / manifest(nifti)[1]["export_image"])
    assert image.spacing == pytest.approx((2.0, 0.5, 0.5))
    np.testing.assert_allclose(image.array, images[1], atol=1e-6)
    nnunet = export_dataset(tmp_path / "syn", "nnunet", tmp_path / "raw", quiet=True)
    assert nib.load(next((nnunet / "imagesTr").iterdir())).shape == (5, 6, 4)
    dicom = export_dataset(tmp_path / "syn", "dicom", tmp_path / "dcm", bits=16, quiet=True)
    stored = read_image(dicom / manifest(dicom)[0]["export_image"]).array
    np.testing.assert_array_equal(stored, np.rint(images[0] * 65535))
    np.testing.assert_array_equal(
        read_label(dicom / "labels" / "sample_000000_seed00000000.dcm").array, labels[0]
    )
    npz = np.load(export_dataset(tmp_path / "syn", "npz", tmp_path / "npz") / "synthetic.npz")
    assert npz["train_images"].shape == (2, 4, 6, 5)
    with pytest.raises(InputError, match="2D"):
        export_dataset(tmp_path / "syn", "png", tmp_path / "png")


def test_sampled_folder_describes_itself_so_exports_need_no_run(run: Path, tmp_path: Path):
    desc = json.loads((run / "synthetic" / "dataset.json").read_text())
    assert desc["label_names"] == ["background", "vessel"] and desc["image_channels"] == 1
    assert desc["spatial_dims"] == 2 and len(desc["spacing_mm"]) == 2
    assert desc["generator"]["generator_weights"] == "ema"
    # a copy away from its run (nothing to re-read), with names only dataset.json holds
    alone = tmp_path / "alone"
    shutil.copytree(run / "synthetic", alone)
    desc["label_names"] = ["background", "vessel-from-dataset-json"]
    desc["spacing_mm"] = [0.5, 0.25]
    (alone / "dataset.json").write_text(json.dumps(desc))
    folder = export_dataset(alone, "nnunet", tmp_path / "nn", name="Dataset501_Alone", quiet=True)
    assert json.loads((folder / "dataset.json").read_text())["labels"] == {
        "background": 0,
        "vessel-from-dataset-json": 1,
    }
    exported = json.loads((folder / "export.json").read_text())
    assert exported["spacing_mm"] == [0.5, 0.25]
    (alone / "dataset.json").write_text("{not json")
    with pytest.raises(InputError, match="dataset.json"):
        export_dataset(alone, "npz", tmp_path / "bad", quiet=True)
