"""Whole-patient subsets, per-class synthetic subsets, and a tiny paired sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthmed.evaluation.utility.protocols import Settings
from synthmed.evaluation.utility.sets import TrainingSet
from synthmed.evaluation.utility.stats import paired_wilcoxon, summarize
from synthmed.evaluation.utility.sweep import (
    flatten_scores,
    run_sweep,
    subset_patients,
    subset_synthetic_per_class,
)


def _patients() -> TrainingSet:
    ids = ["a", "a", "a", "b", "c", "c", "", "d", "d", ""]  # "" rows: each its own patient
    return TrainingSet(images=np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1), patient_ids=ids)


def test_subset_patients_takes_whole_nested_patients() -> None:
    data = _patients()
    rows_of = {"a": 3, "b": 1, "c": 2, "d": 2}
    previous: set[int] = set()
    for n in range(1, 7):
        sub = subset_patients(data, n, seed=4)
        rows = set(sub.images[:, 0, 0, 0].astype(int).tolist())
        named = [p for p in sub.patient_ids if p]
        assert len(set(named)) + sub.patient_ids.count("") == n
        assert all(named.count(p) == rows_of[p] for p in set(named))  # never split
        assert previous <= rows  # nested for a fixed seed
        previous = rows
    assert len(previous) == 10 and subset_patients(data, "all", 0) is data
    for bad in (0, 7):
        with pytest.raises(ValueError, match="6"):
            subset_patients(data, bad, 0)


def test_subset_synthetic_per_class() -> None:
    synth = TrainingSet(images=np.zeros((12, 1, 2, 2)), classes=np.array([0, 1, 2] * 4))
    sub = subset_synthetic_per_class(synth, 3, seed=0)
    assert np.bincount(sub.classes).tolist() == [3, 3, 3]
    assert len(subset_synthetic_per_class(TrainingSet(images=np.zeros((5, 1, 2, 2))), 2, 0)) == 2
    with pytest.raises(ValueError, match="there are 4"):
        subset_synthetic_per_class(synth, 5, 0)


def test_flatten_scores() -> None:
    flat = flatten_scores({"dice_mean": 0.8, "dice_per_class": {1: 0.7, 2: 0.9}, "cm": [[1]]})
    assert flat == {"dice_mean": 0.8, "dice_class_1": 0.7, "dice_class_2": 0.9, "cm": [[1]]}


def test_tiny_sweep_is_paired_and_complete(squares) -> None:
    settings = Settings(num_classes=2, steps=4, batch_size=4, val_every=2,
                        classifier_kwargs={"widths": (4, 4, 4), "dense": 8})  # fmt: skip
    seen = []
    rows = run_sweep("classification", ["real", "real+classic-aug"], [1, "all"], [0, 1],
                     squares(8, 0), None, squares(4, 1), squares(6, 2), settings,
                     progress=lambda done, total, row: seen.append((done, total)))  # fmt: skip
    assert len(rows) == 8 and seen[-1] == (8, 8)
    assert {(r["protocol"], r["size"], r["seed"]) for r in rows} == {
        (p, s, k) for p in ("real", "real+classic-aug") for s in (1, "all") for k in (0, 1)
    }
    for r in rows:
        assert math.isfinite(r["balanced_accuracy"]) and math.isfinite(r["auc_class_1"])
        assert r["n_real_patients"] == (1 if r["size"] == 1 else 4)
    by_cell = {}
    for r in rows:
        by_cell.setdefault((r["size"], r["seed"]), set()).add(r["n_real_rows"])
    assert all(len(v) == 1 for v in by_cell.values())  # same subset for both protocols
    summary = summarize(rows, "balanced_accuracy")
    assert len(summary) == 4 and all(s["n"] == 2 for s in summary)
    tests = paired_wilcoxon(rows, "balanced_accuracy")["comparisons"]
    assert [(t["size"], t["protocol"], t["n_pairs"]) for t in tests] == [
        (1, "real", 2),
        ("all", "real", 2),
    ]
