"""load_splits end to end on tiny PNG folders, and describe()."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthmed.config.schema import DataConfig, PreprocessConfig, SourceConfig, SplitConfig
from synthmed.data.pipeline import describe, load_splits
from synthmed.errors import InputError


def _source(root) -> SourceConfig:
    return SourceConfig(
        kind="folders",
        root=root,
        image_glob="images/*.png",
        label_glob="labels/*.png",
        id_regex=r"case_(\d+)",
    )


def test_load_splits_by_patient(png_pairs):
    cfg = DataConfig(
        train=_source(png_pairs(n=6)),
        preprocess=PreprocessConfig(resize=[16, 16]),
        split=SplitConfig(val_fraction=0.2, test_fraction=0.2, seed=1),
    )
    splits = load_splits(cfg)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [4, 1, 1]
    assert splits["train"][0].image.shape == (1, 16, 16)
    assert 0 <= splits["train"][0].image.min() and splits["train"][0].image.max() <= 1


def test_separate_test_source(png_pairs, tmp_path):
    train = png_pairs(n=4, root=tmp_path / "train")
    test = png_pairs(n=2, root=tmp_path / "test")
    cfg = DataConfig(train=_source("train"), test=_source("test"), split=SplitConfig(seed=0))
    splits = load_splits(cfg, base_dir=tmp_path)
    assert len(splits["test"]) == 2 and len(splits["train"]) + len(splits["val"]) == 4
    assert all(str(test) in item.source for item in splits["test"])
    assert all(str(train) in item.source for item in splits["train"])


def test_empty_needed_split_names_source(png_pairs):
    root = png_pairs(n=1)
    cfg = DataConfig(train=_source(root), split=SplitConfig(val_fraction=0.2))
    with pytest.raises(InputError, match="pngs.*val split is empty"):
        load_splits(cfg)


def test_describe(make_item):
    items = [make_item("a", seed=1), make_item("b", seed=2).with_(class_id=1)]
    info = describe(items)
    assert info["n_items"] == 2 and info["n_patients"] == 2
    assert info["image_shape"] == [1, 32, 32] and info["channels"] == [1]
    assert info["label_classes"] == [0, 1] and 0 < info["foreground_fraction"] < 0.2
    assert info["class_counts"] == {1: 1}
    expected = np.mean([(i.label > 0).mean() for i in items])
    assert info["foreground_fraction"] == pytest.approx(expected)
    assert describe([]) == {"n_items": 0, "n_patients": 0}


def _patient_ids(root) -> list[str]:
    whole = DataConfig(train=_source(root), split=SplitConfig(val_fraction=0, test_fraction=0))
    return sorted({item.patient_id for item in load_splits(whole)["train"]})


def test_split_file_pins_the_split(png_pairs, tmp_path):
    """A split file decides who is where, whatever the fractions and seed say."""
    root = png_pairs(n=5)
    ids = _patient_ids(root)
    file = tmp_path / "split.json"
    file.write_text(json.dumps({"train": ids[:3], "val": [ids[3]], "test": [ids[4]]}))
    for seed in (0, 1):
        cfg = DataConfig(
            train=_source(root),
            split=SplitConfig(val_fraction=0.6, test_fraction=0.0, seed=seed, file=file),
        )
        splits = load_splits(cfg)
        got = {name: sorted({i.patient_id for i in items}) for name, items in splits.items()}
        assert got == {"train": ids[:3], "val": [ids[3]], "test": [ids[4]]}


def test_split_file_errors_name_the_file(png_pairs, tmp_path):
    root = png_pairs(n=3)
    ids = _patient_ids(root)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"train": ids[:2], "val": []}))
    cfg = DataConfig(train=_source(root), split=SplitConfig(file=missing))
    with pytest.raises(InputError, match=f"missing.json.*patient '{ids[2]}' is in no split"):
        load_splits(cfg)
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"train": ids, "val": ["someone_else"]}))
    cfg = DataConfig(train=_source(root), split=SplitConfig(file=extra))
    with pytest.raises(InputError, match="extra.json.*not in the data"):
        load_splits(cfg)
