"""Data-size sweeps: how utility changes with the number of real patients or synthetic images.

Platscher et al. 2021 and Kossen et al. 2021 vary the number of real training patients
(1, 2, 5, 10, all); Frid-Adar et al. 2018 vary the number of synthetic images per class. A
sweep trains every protocol for every (size, seed) cell. The design is paired: for a given
(size, seed), every protocol sees the same real subset, the same initialisation seed and the
same test split, so protocol differences can be tested per seed (``stats.paired_wilcoxon``).
Subsets for one seed are nested (size 1 is part of size 2, ...), which keeps size effects from
being drowned by which patients happened to be drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch

from synthmed.data.types import Item
from synthmed.evaluation.utility.protocols import Settings, Task, run_protocol
from synthmed.evaluation.utility.sets import TrainingSet

log = logging.getLogger(__name__)

Size = int | Literal["all"]
Axis = Literal["real_patients", "synthetic_per_class"]
# Per-class score dicts become flat keys (dice_per_class {1: x} -> dice_class_1) so that
# stats.summarize can treat them like any other metric.
_PER_CLASS = "_per_class"


def patient_keys(data: TrainingSet) -> list[str]:
    """Patient of each row; rows without a patient ID are each their own patient."""
    return [p if p else f"#row{i}" for i, p in enumerate(data.patient_ids)]


def subset_patients(real: TrainingSet, n_patients: Size, seed: int) -> TrainingSet:
    """All rows of ``n_patients`` randomly chosen patients (whole patients, rows in order).

    The patients are a prefix of one seeded permutation, so for a fixed seed the subsets of
    increasing size are nested.

    Raises:
        ValueError: ``n_patients`` < 1 or more than there are patients.
    """
    keys = patient_keys(real)
    patients = list(dict.fromkeys(keys))
    if n_patients == "all":
        return real
    if not 1 <= int(n_patients) <= len(patients):
        raise ValueError(f"asked for {n_patients} patients; the set has {len(patients)}")
    order = np.random.default_rng(seed).permutation(len(patients))
    chosen = {patients[i] for i in order[: int(n_patients)]}
    return real.take([i for i, k in enumerate(keys) if k in chosen])


def subset_synthetic_per_class(synthetic: TrainingSet, n_per_class: Size, seed: int) -> TrainingSet:
    """``n_per_class`` random rows of every image class (all rows count as one class when
    the set has no classes, as for segmentation pairs); nested in ``n`` for a fixed seed.

    Raises:
        ValueError: a class has fewer than ``n_per_class`` rows.
    """
    if n_per_class == "all":
        return synthetic
    n = int(n_per_class)
    classes = synthetic.classes if synthetic.classes is not None else np.zeros(len(synthetic))
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(classes):
        pool = np.flatnonzero(classes == c)
        if n > len(pool):
            raise ValueError(f"asked for {n} synthetic rows of class {c}; there are {len(pool)}")
        picked.append(np.sort(pool[rng.permutation(len(pool))[:n]]))
    return synthetic.take(np.sort(np.concatenate(picked)))


def flatten_scores(scores: dict) -> dict[str, object]:
    """Scalar scores as they are; ``<m>_per_class`` dicts as ``<m>_class_<k>`` keys.

    Lists (per-image values, confusion matrix) are kept under their own names.
    """
    flat: dict[str, object] = {}
    for key, value in scores.items():
        if key.endswith(_PER_CLASS) and isinstance(value, dict):
            stem = key[: -len(_PER_CLASS)]
            flat.update({f"{stem}_class_{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _cells(
    axis: Axis, sizes: Sequence[Size], seeds: Sequence[int], real: TrainingSet, synth
) -> list[tuple[Size, int, TrainingSet, TrainingSet | None]]:
    """(size, seed, real subset, synthetic subset) per cell, checked before any training."""
    cells = []
    for size in sizes:
        for seed in seeds:
            if axis == "real_patients":
                cells.append((size, seed, subset_patients(real, size, seed), synth))
            elif synth is None:
                raise ValueError("a synthetic_per_class sweep needs synthetic data")
            else:
                cells.append((size, seed, real, subset_synthetic_per_class(synth, size, seed)))
    return cells


def run_sweep(
    task: Task,
    protocols: Sequence[str],
    sizes: Sequence[Size],
    seeds: Sequence[int],
    real_train: TrainingSet,
    synthetic: TrainingSet | None,
    val: TrainingSet | list[Item],
    test: TrainingSet | list[Item],
    settings: Settings,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int, dict], None] | None = None,
    axis: Axis = "real_patients",
) -> list[dict]:
    """One row per (protocol, size, seed): the test scores of one model each.

    Args:
        sizes: real patients (``axis="real_patients"``) or synthetic rows per class
            (``axis="synthetic_per_class"``), ints or ``"all"``.
        seeds: >= 3 for a report (5 for the benchmark); each seed fixes the subset, the
            synthetic draw, initialisation, batches and augmentation.
        progress: called as ``progress(done, total, row)`` after each model.

    Returns:
        Rows with ``task``, ``axis``, ``protocol``, ``size``, ``seed``, ``n_real_patients``,
        ``n_real_rows``, ``n_synthetic_rows``, the flattened scores, and ``history``.
    """
    cells = _cells(axis, sizes, seeds, real_train, synthetic)
    rows, total = [], len(cells) * len(protocols)
    for size, seed, real, synth in cells:
        n_patients = len(set(patient_keys(real)))
        for protocol in protocols:
            result = run_protocol(
                task, protocol, real, synth, val, test, settings, seed, device, quiet=True
            )
            row = {"task": task, "axis": axis, "protocol": protocol, "size": size, "seed": seed}
            row["n_real_patients"] = n_patients
            row["n_real_rows"] = result["n_real_rows"]
            row["n_synthetic_rows"] = result["n_synthetic_rows"]
            row.update(flatten_scores(result["scores"]))
            row["history"] = result["history"]
            rows.append(row)
            log.info("sweep %d/%d: %s size=%s seed=%s", len(rows), total, protocol, size, seed)
            if progress is not None:
                progress(len(rows), total, row)
    return rows
