"""Write the pinned split files of the reproduction experiments (run once; the files are
committed in src/synthmed/reproduce/splits/ and every arm of an experiment uses them).

    python benchmarks/reproduction/make_splits.py [--data-root ../shared/data]

Patients (DRIVE: images; LGG: TCGA patients; BUSI and BreastMNIST: images, which have no
patient IDs) are read through synthmed's own data sources, so the IDs are the ones a run sees.
- DRIVE: the 20 training images -> 17 train / 3 validation (the 20 official test images are
  the test set of every DRIVE experiment).
- LGG FLAIR: 19 patients -> train / 3 validation / 5 test (val 15%, test 25%).
- BUSI: 3-fold cross-validation by image, stratified by class; within each fold 15% of the
  training images are held out for validation.
- BreastMNIST: the official MedMNIST train / val split (test = the official test split).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from synthmed.config.schema import SourceConfig
from synthmed.data.sources import load_source
from synthmed.data.splits import patient_key, save_split, split_counts

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "src" / "synthmed" / "reproduce" / "splits"
SEED = 0


def _ids(spec: dict, data_root: Path) -> list:
    items = load_source(SourceConfig.model_validate(spec), data_root)
    return [(patient_key(item, i), item) for i, item in enumerate(items)]


def _shuffled(ids: list[str], seed: int = SEED) -> list[str]:
    ids = sorted(set(ids))
    return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]


def drive(data_root: Path) -> None:
    spec = {
        "kind": "folders",
        "root": "drive",
        "image_glob": "training/images/*_training.tif",
        "label_glob": "training/1st_manual/*_manual1.gif",
        "id_regex": r"(\d+)_",
        "label_values": [0, 255],
    }
    ids = _shuffled([k for k, _ in _ids(spec, data_root)])
    save_split(OUT / "drive.json", {"val": ids[:3], "train": ids[3:], "test": []})


def lgg(data_root: Path) -> None:
    spec = {
        "kind": "folders",
        "root": "lgg_flair",
        "image_glob": "kaggle_3m/*/*[0-9].tif",
        "label_glob": "kaggle_3m/*/*_mask.tif",
        "id_regex": r"(TCGA_\w+_\d+_\d+)(?:_mask)?\.tif",
        "patient_regex": r"(TCGA_[A-Z0-9]+_[A-Z0-9]+_\d{8})",
        "label_values": [0, 255],
    }
    ids = _shuffled([k for k, _ in _ids(spec, data_root)])
    n_val, n_test = split_counts(len(ids), 0.15, 0.25)
    save_split(
        OUT / "lgg_flair.json",
        {"test": ids[:n_test], "val": ids[n_test : n_test + n_val], "train": ids[n_test + n_val :]},
    )


def busi(data_root: Path, folds: int = 3) -> None:
    spec = {
        "kind": "csv",
        "csv": "busi_256/labels.csv",
        "class_names": ["benign", "malignant", "normal"],
    }
    by_class: dict[int, list[str]] = {}
    for key, item in _ids(spec, data_root):
        by_class.setdefault(int(item.class_id), []).append(key)
    parts: list[list[str]] = [[] for _ in range(folds)]
    for k in sorted(by_class):
        for i, key in enumerate(_shuffled(by_class[k], SEED + k)):
            parts[i % folds].append(key)
    for f in range(folds):
        rest = _shuffled([k for g, part in enumerate(parts) if g != f for k in part], SEED + f)
        n_val = int(round(0.15 * len(rest)))
        save_split(
            OUT / f"busi_fold{f}.json",
            {"test": parts[f], "val": rest[:n_val], "train": rest[n_val:]},
        )


def breastmnist(data_root: Path) -> None:
    split = {}
    for name in ("train", "val"):
        spec = {"kind": "npz", "npz": "breastmnist/breastmnist.npz", "npz_splits": [name]}
        split[name] = [k for k, _ in _ids(spec, data_root)]
    save_split(OUT / "breastmnist.json", {**split, "test": []})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (drive, lgg, busi, breastmnist):
        make(args.data_root)
        print("wrote", make.__name__)


if __name__ == "__main__":
    main()
