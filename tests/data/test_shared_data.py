"""The real datasets in ../shared/data load through the public config path.

Skipped when the folder is absent (e.g. a bare checkout); each test stays under ~2 s.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from synthmed.config.schema import PatchConfig, PreprocessConfig, SourceConfig
from synthmed.data.patches import extract_patches
from synthmed.data.preprocess import preprocess_items
from synthmed.data.sources import load_source

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}"),
]

DRIVE = dict(
    kind="folders",
    root="drive",
    image_glob="training/images/*_training.tif",
    label_glob="training/1st_manual/*_manual1.gif",
    mask_glob="training/mask/*_training_mask.gif",
    id_regex=r"(\d+)_",
)

LGG_ID = r"(TCGA_\w+_\d+_\d+)(?:_mask)?\.tif"
LGG_PATIENT = r"(TCGA_[A-Z0-9]+_[A-Z0-9]+_\d{8})"


def _need(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def test_drive_training_folders():
    _need("drive")
    items = load_source(SourceConfig(**DRIVE), base_dir=SHARED)
    assert len(items) == 20
    assert [i.patient_id for i in items][:2] == ["21", "22"]
    assert items[0].image.shape == (3, 584, 565)
    assert all(set(np.unique(i.label)) == {0, 1} for i in items)
    assert all(i.meta["fov"].dtype == bool and 0.6 < i.meta["fov"].mean() < 0.75 for i in items)
    fg = np.mean([i.label.mean() for i in items])
    assert 0.05 < fg < 0.1  # ~7.5 % vessel pixels
    cfg = PreprocessConfig(channels="green", resize=[256, 256])
    pre = preprocess_items(items[:2], cfg)
    patches = extract_patches(pre, PatchConfig(size=32, per_image=8, seed=0))
    assert patches.images.shape == (16, 1, 32, 32)
    assert (patches.labels[patches.foreground, 16, 16] == 1).all()


def test_lgg_two_patients_pair_slices():
    _need("lgg_flair", "kaggle_3m")
    spec = SourceConfig(
        kind="folders",
        root=SHARED / "lgg_flair",
        image_glob="kaggle_3m/TCGA_CS_4941_19960909/*[0-9].tif",
        label_glob="kaggle_3m/TCGA_CS_4941_19960909/*_mask.tif",
        id_regex=LGG_ID,
        patient_regex=LGG_PATIENT,
    )
    items = load_source(spec)
    more = load_source(
        spec.model_copy(
            update={
                "image_glob": "kaggle_3m/TCGA_HT_7602_19951103/*[0-9].tif",
                "label_glob": "kaggle_3m/TCGA_HT_7602_19951103/*_mask.tif",
            }
        )
    )
    assert {i.patient_id for i in items} == {"TCGA_CS_4941_19960909"}
    assert {i.patient_id for i in more} == {"TCGA_HT_7602_19951103"}
    assert not any(i.source.endswith("_mask.tif") for i in items + more)
    assert items[0].meta["id"].startswith("TCGA_CS_4941_19960909_")
    assert items[0].image.shape == (3, 256, 256) and items[0].label.shape == (256, 256)
    assert any(i.label.any() for i in items) and all(i.label.max() <= 1 for i in items)
    ids = [int(i.meta["id"].rsplit("_", 1)[1]) for i in items]
    assert sorted(ids) == list(range(1, len(items) + 1))


def test_lgg_whole_glob_pairs():
    """The full-dataset glob excludes masks; pairing by patient+slice ID is unique."""
    root = _need("lgg_flair")
    images = sorted(root.glob("kaggle_3m/*/*[0-9].tif"))
    masks = sorted(root.glob("kaggle_3m/*/*_mask.tif"))
    assert len(images) == len(masks) == 721
    image_ids = {re.search(LGG_ID, p.name).group(1) for p in images}
    mask_ids = {re.search(LGG_ID, p.name).group(1) for p in masks}
    assert image_ids == mask_ids and len(image_ids) == 721
    patients = {re.search(LGG_PATIENT, p.relative_to(root).as_posix()).group(1) for p in images}
    assert len(patients) == 19


def test_breastmnist_npz():
    _need("breastmnist", "breastmnist.npz")
    spec = SourceConfig(kind="npz", npz="breastmnist/breastmnist.npz")
    items = load_source(spec, base_dir=SHARED)
    assert len(items) == 780 and items[0].image.shape == (1, 28, 28)
    assert [i.meta["npz_split"] for i in items].count("val") == 78
    assert sum(i.class_id == 0 for i in items) == 147 + 21 + 42


def test_busi_csv_subset(tmp_path):
    root = _need("busi_256")
    with open(root / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    subset = tmp_path / "busi.csv"
    subset.write_text("file,label\n" + "".join(f'"{r["file"]}",{r["label"]}\n' for r in rows[::97]))
    spec = SourceConfig(
        kind="csv", csv=subset, root=root, class_names=["normal", "benign", "malignant"]
    )
    items = load_source(spec)
    assert len(items) == len(rows[::97]) and items[0].image.shape == (3, 256, 256)
    assert {i.meta["class_name"] for i in items} <= {"normal", "benign", "malignant"}
