"""Patient-level train/val/test splits, saved as JSON so experiments can pin them.

Slices or patches of one patient are near duplicates; putting them on both sides of a split
inflates every utility and privacy number, so splits are always drawn over patient IDs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from synthmed.atomic import write_json
from synthmed.data.types import Item
from synthmed.errors import InputError

SPLIT_NAMES = ("train", "val", "test")


def patient_key(item: Item, index: int) -> str:
    """The item's patient ID; items without one count as their own patient."""
    return item.patient_id or item.source or f"#{index}"


def _round(x: float) -> int:
    return int(np.floor(x + 0.5))


def split_counts(n_patients: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Number of (val, test) patients: rounded fractions, at least one each when the fraction
    is > 0 and there are >= 3 patients, and always at least one training patient."""
    n_val, n_test = _round(n_patients * val_fraction), _round(n_patients * test_fraction)
    if n_patients >= 3:
        n_val = max(n_val, 1) if val_fraction > 0 else 0
        n_test = max(n_test, 1) if test_fraction > 0 else 0
    while n_val + n_test > max(n_patients - 1, 0):
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def split_by_patient(
    items: Sequence[Item], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[Item]]:
    """Split items into train/val/test with no patient in two sets.

    Args:
        items: items with ``patient_id``.
        val_fraction, test_fraction: share of patients (not items) for val and test.
        seed: shuffles the sorted patient IDs; the same seed gives the same split.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, items in their input order.
    """
    keys = [patient_key(item, i) for i, item in enumerate(items)]
    patients = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(patients))
    shuffled = [patients[i] for i in order]
    n_val, n_test = split_counts(len(patients), val_fraction, test_fraction)
    ids = {
        "test": shuffled[:n_test],
        "val": shuffled[n_test : n_test + n_val],
        "train": shuffled[n_test + n_val :],
    }
    return apply_split(items, ids)


def apply_split(items: Sequence[Item], ids: Mapping[str, Sequence[str]]) -> dict[str, list[Item]]:
    """Assign items to splits by patient ID lists (e.g. from :func:`load_split`).

    Raises:
        InputError: an item's patient is in no split.
    """
    where = {pid: name for name in SPLIT_NAMES for pid in ids.get(name, [])}
    out: dict[str, list[Item]] = {name: [] for name in SPLIT_NAMES}
    for i, item in enumerate(items):
        key = patient_key(item, i)
        if key not in where:
            raise InputError(f"patient '{key}' is in no split", item.source or None)
        out[where[key]].append(item)
    return out


def save_split(path: str | Path, splits: Mapping[str, Sequence[Item] | Sequence[str]]) -> Path:
    """Write ``{"train": [patient IDs], "val": [...], "test": [...]}`` as JSON (atomically).

    Accepts either item lists (as returned by :func:`split_by_patient`) or ID lists.
    """
    data = {}
    for name in SPLIT_NAMES:
        entries = splits.get(name, [])
        keys = [e if isinstance(e, str) else patient_key(e, i) for i, e in enumerate(entries)]
        data[name] = sorted(set(keys))
    write_json(path, data)
    return Path(path)


def load_split(path: str | Path) -> dict[str, list[str]]:
    """Read a split file written by :func:`save_split`.

    Raises:
        InputError: missing/invalid file, unknown split names, or a patient in two splits.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("split file not found", path) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read split file: {exc}", path) from exc
    if not isinstance(data, dict) or set(data) - set(SPLIT_NAMES):
        raise InputError(f"a split file maps {list(SPLIT_NAMES)} to lists of patient IDs", path)
    out = {name: [str(p) for p in data.get(name, [])] for name in SPLIT_NAMES}
    seen: dict[str, str] = {}
    for name, ids in out.items():
        for pid in ids:
            if pid in seen and seen[pid] != name:
                raise InputError(f"patient '{pid}' is in both {seen[pid]} and {name}", path)
            seen[pid] = name
    return out
