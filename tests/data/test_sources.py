"""Sources: pairing, label mapping, csv/npz/phantom kinds and every bad-input case."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synthmed.config.schema import PhantomSpec, SourceConfig
from synthmed.data.sources import load_source, map_label_values
from synthmed.errors import InputError


def folders(root, **kw) -> SourceConfig:
    defaults = dict(image_glob="images/*.png", label_glob="labels/*.png", id_regex=r"case_(\d+)")
    return SourceConfig(kind="folders", root=root, **{**defaults, **kw})


def test_folders_pairs_and_maps_0_255(png_pairs):
    items = load_source(folders(png_pairs()))
    assert [i.patient_id for i in items] == ["00", "01", "02"]
    assert items[0].image.shape == (1, 24, 24) and items[0].image.dtype == np.float32
    assert set(np.unique(items[1].label)) == {0, 1}
    assert items[0].source.endswith("case_00.png")


def test_relative_root_resolved_against_base_dir(png_pairs, tmp_path):
    png_pairs(root=tmp_path / "data" / "set")
    items = load_source(folders("data/set"), base_dir=tmp_path)
    assert len(items) == 3


def test_patient_regex_and_fov_mask(png_pairs):
    root = png_pairs()
    (root / "masks").mkdir()
    for k in range(3):
        Image.fromarray(np.full((24, 24), 255, np.uint8)).save(root / "masks" / f"case_{k:02d}.gif")
    spec = folders(root, mask_glob="masks/*.gif", patient_regex=r"(images)/")
    items = load_source(spec)
    assert {i.patient_id for i in items} == {"images"}
    assert items[0].meta["fov"].dtype == bool and items[0].meta["fov"].all()


def test_missing_label_names_image(png_pairs):
    root = png_pairs()
    (root / "labels" / "case_01_seg.png").unlink()
    with pytest.raises(InputError, match="case_01.png.*no label"):
        load_source(folders(root))


def test_duplicate_ids(png_pairs):
    root = png_pairs()
    with pytest.raises(InputError, match="duplicate ID"):
        load_source(folders(root, id_regex=r"(case)_"))


def test_shape_mismatch_names_both_files(png_pairs):
    root = png_pairs()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "labels" / "case_02_seg.png")
    with pytest.raises(InputError) as info:
        load_source(folders(root))
    assert "case_02.png" in str(info.value) and "case_02_seg.png" in str(info.value)


def test_label_values_declared_and_outside(png_pairs):
    root = png_pairs()
    items = load_source(folders(root, label_values=[255, 0]))
    assert set(np.unique(items[0].label)) == {0, 1} and items[0].label[12, 12] == 0
    with pytest.raises(InputError, match=r"case_00_seg\.png.*label values \{255\} outside"):
        load_source(folders(root, label_values=[0, 128]))


def test_auto_label_mapping_rules():
    assert map_label_values(np.array([0, 3, 1]), None, "x").tolist() == [0, 3, 1]
    with pytest.raises(InputError, match="x.png.*label_values"):
        map_label_values(np.array([0, 7, 200]), None, "x.png")


def test_empty_glob_names_pattern(tmp_path):
    with pytest.raises(InputError, match=r"nothing/\*\.png.*matched no files"):
        load_source(SourceConfig(kind="folders", root=tmp_path, image_glob="nothing/*.png"))


def test_missing_root(tmp_path):
    with pytest.raises(InputError, match="absent.*root folder not found"):
        load_source(SourceConfig(kind="folders", root=tmp_path / "absent", image_glob="*.png"))


def test_csv_with_labels_classes_and_patients(png_pairs):
    root = png_pairs()
    (root / "list.csv").write_text(
        "image,label,class,patient_id\n"
        "images/case_00.png,labels/case_00_seg.png,benign,A\n"
        "images/case_01.png,labels/case_01_seg.png,malignant,A\n"
        "images/case_02.png,,benign,B\n"
    )
    items = load_source(SourceConfig(kind="csv", csv=root / "list.csv"))
    assert [i.class_id for i in items] == [0, 1, 0]
    assert [i.patient_id for i in items] == ["A", "A", "B"]
    assert items[1].meta["class_name"] == "malignant" and items[2].label is None
    named = load_source(
        SourceConfig(kind="csv", csv=root / "list.csv", class_names=["malignant", "benign"])
    )
    assert [i.class_id for i in named] == [1, 0, 1]


def test_csv_busi_layout_file_and_class_label(png_pairs):
    root = png_pairs()
    (root / "labels.csv").write_text("file,label\nimages/case_00.png,2\nimages/case_01.png,0\n")
    items = load_source(SourceConfig(kind="csv", csv="labels.csv"), base_dir=root)
    assert [i.class_id for i in items] == [2, 0] and items[0].label is None
    assert items[0].patient_id == "images/case_00"


def test_csv_empty_and_missing_image(tmp_path):
    (tmp_path / "e.csv").write_text("image,class\n")
    with pytest.raises(InputError, match="e.csv.*no rows"):
        load_source(SourceConfig(kind="csv", csv=tmp_path / "e.csv"))
    (tmp_path / "m.csv").write_text("image\ngone.png\n")
    with pytest.raises(InputError, match="gone.png.*not found"):
        load_source(SourceConfig(kind="csv", csv=tmp_path / "m.csv"))


def test_npz_medmnist_keys(tmp_path, rng):
    np.savez(
        tmp_path / "m.npz",
        train_images=rng.integers(0, 255, (3, 8, 8), dtype=np.uint8),
        train_labels=np.array([[1], [0], [1]]),
    )
    items = load_source(SourceConfig(kind="npz", npz=tmp_path / "m.npz", npz_splits=["train"]))
    assert [i.patient_id for i in items] == ["train-0", "train-1", "train-2"]
    assert items[0].meta["npz_split"] == "train" and items[0].class_id == 1
    with pytest.raises(InputError, match="m.npz.*no key val_images"):
        load_source(SourceConfig(kind="npz", npz=tmp_path / "m.npz", npz_splits=["val"]))


def test_phantom_kind():
    phantoms = pytest.importorskip("synthmed.data.phantoms")
    kinds = [k for k in ("fundus", "brain") if k in phantoms.PHANTOMS]
    if not kinds:
        pytest.skip("no phantom registered yet")
    spec = SourceConfig(
        kind="phantom", phantom=PhantomSpec(kind=kinds[0], n_patients=2, size=32, seed=1)
    )
    items = load_source(spec)
    assert len(items) == 2 and len({i.patient_id for i in items}) == 2
    with pytest.raises(InputError, match="phantom.kind"):
        load_source(SourceConfig(kind="phantom", phantom=PhantomSpec(kind="nope")))
