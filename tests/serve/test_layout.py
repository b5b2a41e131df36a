"""Downloads re-laid for a training tool: ``?layout=nnunet|monai`` turns a stored dataset
export (NIfTI or DICOM as published) into an nnU-Net raw dataset or a MONAI datalist zip, on
SQLite and PostgreSQL; a model package and an unknown layout are refused with a 4xx."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from tests.serve.conftest import Server


def unzip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return {n: archive.read(n) for n in archive.namelist()}


def nifti(data: bytes, tmp_path, name: str) -> np.ndarray:
    import nibabel as nib

    path = tmp_path / name
    path.write_bytes(data)
    return np.asarray(nib.load(path).dataobj)


@pytest.mark.parametrize("source", ["nifti", "dicom"])
def test_nnunet_layout_from_a_stored_export(server: Server, bundle, exports, tmp_path, source):
    assert server.publish(bundle(source, name="vessels")).status_code == 201
    response = server.get("/api/items/vessels/download", layout="nnunet")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="vessels-nnunet.zip"'
    files = unzip(response.content)
    meta = json.loads(files["dataset.json"])
    assert meta["numTraining"] == 4 and meta["file_ending"] == ".nii.gz"
    assert meta["labels"] == {"background": 0, "vessel": 1}
    images = sorted(n for n in files if n.startswith("imagesTr/"))
    labels = sorted(n for n in files if n.startswith("labelsTr/"))
    assert len(images) == len(labels) == 4 and all(n.endswith("_0000.nii.gz") for n in images)
    assert {"manifest.csv", "export.json"} <= set(files)
    assert json.loads(files["export.json"])["format"] == "nnunet"
    # the labels are the published ones, voxel for voxel (images: exact for NIfTI, 8-bit DICOM)
    original = exports["nifti"]
    first = sorted((original / "labels").iterdir())[0]
    relaid = nifti(files[f"labelsTr/{first.name}"], tmp_path, "l.nii.gz")
    assert np.array_equal(relaid, nifti(first.read_bytes(), tmp_path, "o.nii.gz"))
    image = nifti(files[images[0]], tmp_path, "i.nii.gz")
    expected = nifti(sorted((original / "images").iterdir())[0].read_bytes(), tmp_path, "e.nii.gz")
    assert np.allclose(
        image.squeeze(), expected.squeeze(), atol=0 if source == "nifti" else 1 / 254
    )


def test_monai_layout_from_the_page_url(server: Server, bundle):
    assert server.publish(bundle("nifti", name="vessels")).status_code == 201
    response = server.get("/items/vessels/download", layout="monai")
    assert response.status_code == 200, response.text
    files = unzip(response.content)
    datalist = json.loads(files["datalist.json"])
    assert datalist["numTraining"] == 4
    for entry in datalist["training"]:
        assert entry["image"] in files and entry["label"] in files
    audit = server.get("/api/audit", "admin").json()["entries"]
    assert audit[0]["action"] == "download" and audit[0]["detail"]["layout"] == "monai"


def test_model_package_and_unknown_layout_are_refused(server: Server, bundle):
    assert server.publish(bundle("model", name="tiny-model")).status_code == 201
    response = server.get("/api/items/tiny-model/download", layout="nnunet")
    assert response.status_code == 409
    assert response.json()["error"] == "not_a_dataset"
    assert "model package, not a dataset" in response.json()["detail"]
    assert server.get("/api/items/tiny-model/download", layout="original").status_code == 200
    assert server.publish(bundle("nifti", name="vessels")).status_code == 201
    bad = server.get("/api/items/vessels/download", layout="png")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_query"
    assert "original, nnunet, monai" in bad.json()["detail"]
    assert list(server.settings.spool_dir.iterdir()) == []  # nothing left in the spool
