"""Data config in, preprocessed patient-level splits out; plus a dataset summary for reports."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synthmed.config.schema import DataConfig, SourceConfig
from synthmed.data.preprocess import preprocess_items
from synthmed.data.sources import load_source, resolve
from synthmed.data.splits import apply_split, load_split, patient_key, split_by_patient
from synthmed.data.types import Item
from synthmed.errors import InputError

log = logging.getLogger(__name__)


def source_location(spec: SourceConfig, base_dir: Path | None = None) -> Path | None:
    """The file or folder a source reads (for error messages); None for phantoms."""
    base = Path(base_dir) if base_dir is not None else Path(".")
    where = {"folders": spec.root, "csv": spec.csv, "npz": spec.npz}.get(spec.kind)
    return None if where is None else resolve(where, base)


def load_splits(cfg: DataConfig, base_dir: Path | None = None) -> dict[str, list[Item]]:
    """Load, preprocess and split the data of a run.

    Val (and test, without a separate test source) are drawn by patient from the training
    source; a separate ``cfg.test`` source becomes the test split whole.

    Args:
        cfg: the run's data config.
        base_dir: folder relative paths are resolved against (the config file's folder).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``.

    Raises:
        InputError: unreadable data, or a needed split (train; val/test when their fraction
            is > 0; test when a test source is given) that ends up empty.
    """
    train_items = preprocess_items(load_source(cfg.train, base_dir), cfg.preprocess)
    test_fraction = 0.0 if cfg.test is not None else cfg.split.test_fraction
    if cfg.split.file is not None:
        splits = _pinned_split(train_items, resolve(cfg.split.file, base_dir or Path(".")))
        test_fraction = 1.0 if cfg.test is None and splits["test"] else 0.0
        val_needed = bool(splits["val"])
    else:
        splits = split_by_patient(
            train_items, cfg.split.val_fraction, test_fraction, cfg.split.seed
        )
        val_needed = cfg.split.val_fraction > 0
    if cfg.test is not None:
        splits["test"] = preprocess_items(load_source(cfg.test, base_dir), cfg.preprocess)
        _warn_shared_patients(splits["train"] + splits["val"], splits["test"])
    needed = {
        "train": True,
        "val": val_needed,
        "test": cfg.test is not None or test_fraction > 0,
    }
    for name, need in needed.items():
        if need and not splits[name]:
            spec = cfg.test if name == "test" and cfg.test is not None else cfg.train
            n = len({item.patient_id for item in train_items})
            raise InputError(
                f"the {name} split is empty ({n} patients in the training source; "
                f"val_fraction={cfg.split.val_fraction}, test_fraction={test_fraction}); "
                "add patients or set the fraction to 0",
                source_location(spec, base_dir),
            )
    log.info("splits: %s", {k: len(v) for k, v in splits.items()})
    return splits


def _pinned_split(items: list[Item], path: Path) -> dict[str, list[Item]]:
    """Items assigned by a split file; a file that lists patients the data lack is refused
    too (it was made for other data, so the arms would not be the ones it pins)."""
    ids = load_split(path)
    try:
        splits = apply_split(items, ids)
    except InputError as exc:  # name the split file: that is what the user has to fix
        raise InputError(f"{exc.problem} (data: {exc.path})", path) from None
    present = {patient_key(item, i) for i, item in enumerate(items)}
    missing = sorted({p for name in ids for p in ids[name]} - present)
    if missing:
        raise InputError(
            f"{len(missing)} patient(s) of the split file are not in the data "
            f"(e.g. '{missing[0]}'): wrong data folder or split file?",
            path,
        )
    return splits


def _warn_shared_patients(train: Sequence[Item], test: Sequence[Item]) -> None:
    shared = {i.patient_id for i in train} & {i.patient_id for i in test}
    if shared:
        log.warning(
            "%d patient IDs occur in both the training and the test source (e.g. %s)",
            len(shared),
            sorted(shared)[0],
        )


def describe(items: Sequence[Item]) -> dict:
    """Summary of a list of items for reports and dry runs.

    Returns:
        dict with ``n_items``, ``n_patients``, ``image_shape`` (a list, or "mixed"),
        ``channels``, ``spatial_dims``, ``intensity_range``, ``label_classes`` (values present),
        ``foreground_fraction`` (share of label pixels > 0), ``class_counts`` (image classes)
        and ``class_names`` when known.
    """
    if not items:
        return {"n_items": 0, "n_patients": 0}
    shapes = {tuple(item.image.shape) for item in items}
    labelled = [item.label for item in items if item.label is not None]
    counts = np.zeros(0, dtype=np.int64)
    for label in labelled:
        found = np.bincount(label.ravel().astype(np.int64))
        counts = np.pad(counts, (0, max(len(found) - len(counts), 0)))
        counts[: len(found)] += found
    classes = Counter(item.class_id for item in items if item.class_id is not None)
    names = next((item.meta["class_names"] for item in items if "class_names" in item.meta), None)
    return {
        "n_items": len(items),
        "n_patients": len({item.patient_id for item in items}),
        "image_shape": list(next(iter(shapes))) if len(shapes) == 1 else "mixed",
        "channels": sorted({item.image.shape[0] for item in items}),
        "spatial_dims": sorted({item.spatial_dims for item in items}),
        "intensity_range": [
            float(min(item.image.min() for item in items)),
            float(max(item.image.max() for item in items)),
        ],
        "n_labelled": len(labelled),
        "label_classes": np.flatnonzero(counts).tolist(),
        "foreground_fraction": float(counts[1:].sum() / counts.sum()) if counts.sum() else None,
        "class_counts": {int(k): int(v) for k, v in sorted(classes.items())},
        "class_names": names,
    }
