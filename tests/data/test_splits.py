"""Patient-level splits: no leakage (property test), determinism, small counts, files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthmed.data.splits import load_split, save_split, split_by_patient, split_counts
from synthmed.data.types import Item
from synthmed.errors import InputError


def _items(counts: list[int]) -> list[Item]:
    tiny = np.zeros((1, 2, 2), np.float32)
    return [
        Item(image=tiny, patient_id=f"p{p}", source=f"p{p}/{k}")
        for p, n in enumerate(counts)
        for k in range(n)
    ]


@settings(max_examples=30, deadline=None)
@given(
    counts=st.lists(st.integers(1, 4), min_size=1, max_size=25),
    val=st.floats(0, 0.5),
    test=st.floats(0, 0.45),
    seed=st.integers(0, 2**16),
)
def test_no_patient_leakage(counts, val, test, seed):
    items = _items(counts)
    splits = split_by_patient(items, val, test, seed)
    ids = {name: {i.patient_id for i in part} for name, part in splits.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    assert sum(len(part) for part in splits.values()) == len(items)
    assert splits["train"], "at least one training patient"
    if len(counts) >= 3:
        assert bool(ids["val"]) == (val > 0) and bool(ids["test"]) == (test > 0)
    again = split_by_patient(items, val, test, seed)
    assert {k: [i.source for i in v] for k, v in again.items()} == {
        k: [i.source for i in v] for k, v in splits.items()
    }


def test_counts_for_few_patients():
    assert split_counts(3, 0.15, 0.25) == (1, 1)
    assert split_counts(1, 0.5, 0.4) == (0, 0)
    assert split_counts(20, 0.15, 0.25) == (3, 5)
    assert split_counts(10, 0.0, 0.3) == (0, 3)


def test_seed_changes_split():
    items = _items([1] * 30)
    a = split_by_patient(items, 0.2, 0.2, seed=0)
    b = split_by_patient(items, 0.2, 0.2, seed=1)
    assert [i.patient_id for i in a["test"]] != [i.patient_id for i in b["test"]]


def test_save_and_load_round_trip(tmp_path):
    splits = split_by_patient(_items([2, 1, 3, 1, 1]), 0.2, 0.2, seed=3)
    path = save_split(tmp_path / "split.json", splits)
    loaded = load_split(path)
    assert loaded == {k: sorted({i.patient_id for i in v}) for k, v in splits.items()}


def test_load_split_errors(tmp_path):
    with pytest.raises(InputError, match="gone.json"):
        load_split(tmp_path / "gone.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": ["a"], "test": ["a"]}')
    with pytest.raises(InputError, match="bad.json.*both train and test"):
        load_split(bad)
