"""Everything ``synthmed evaluate`` needs from a run folder, loaded once.

The three evaluation sections must see the same data: the generator's own real training rows
(what it could have memorised), held-out real rows of patients it never saw (validation + test
split, the "as good as real data" reference), and the exported synthetic set read back from
its files (what a user who downloads it gets). Segmentation runs (label maps) use patches as the
generator did; classification runs (image classes, no label maps) use whole images.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from synthmed.checkpoints import latest_checkpoint, load_checkpoint, sampling_checkpoint
from synthmed.config.schema import RunConfig
from synthmed.data.arrays import training_arrays
from synthmed.data.pipeline import load_splits
from synthmed.data.synthetic import read_manifest, read_synthetic_arrays
from synthmed.data.types import Item
from synthmed.errors import InputError
from synthmed.evaluation.utility.sets import TrainingSet, set_from_items

log = logging.getLogger(__name__)

# Manifest columns that may hold a sample's image-level class (class-conditional generators).
_CLASS_COLUMNS = ("class_id", "class")


@dataclass
class EvalInputs:
    """Data and checkpoint of one evaluation.

    Attributes:
        task: ``segmentation`` (label maps) or ``classification`` (image classes only).
        num_classes: label values incl. background, or image classes.
        splits: the run's items per split (val/test are scored whole).
        real: the generator's real training rows, ``patient_ids`` per row.
        holdout: real rows of the validation and test patients (same preprocessing as real).
        synthetic: the exported synthetic rows.
        checkpoint: the loaded checkpoint dict; ``checkpoint_path`` its file.
        lesion_value: the label value that was kept as the lesion when every label map was
            reduced to lesion / not lesion (``evaluate.label_target``); None: all classes.
    """

    task: str
    num_classes: int
    splits: dict[str, list[Item]]
    real: TrainingSet
    holdout: TrainingSet
    synthetic: TrainingSet
    checkpoint: dict[str, Any]
    checkpoint_path: Path
    manifest: list[dict[str, str]]
    lesion_value: int | None = None


def detect_task(items: list[Item]) -> str:
    """Segmentation when every training item has a label map; classification when none has
    one but every item has a class; otherwise a clear error."""
    if items and all(it.label is not None for it in items):
        return "segmentation"
    if items and all(it.label is None and it.class_id is not None for it in items):
        return "classification"
    raise InputError(
        "evaluation needs a label map for every training image (segmentation) or an "
        "image-level class for every image and no label maps (classification)"
    )


def real_rows(items: list[Item], config: RunConfig, task: str) -> TrainingSet:
    """Rows exactly as the generator saw them (patches for segmentation), with patient IDs."""
    if task == "classification":
        try:
            return set_from_items(items)
        except ValueError as exc:
            raise InputError(f"classification evaluation: {exc}") from None
    images, labels, item_index = training_arrays(items, config.data)
    ids = [items[int(i)].patient_id for i in item_index]
    return TrainingSet(images.astype(np.float32), labels.astype(np.int64), None, ids)


def _manifest_classes(rows: list[dict[str, str]]) -> np.ndarray | None:
    for column in _CLASS_COLUMNS:
        if rows and all(r.get(column, "") != "" for r in rows):
            return np.array([int(r[column]) for r in rows], dtype=np.int64)
    return None


def _synthetic_rows(folder: Path, limit: int | None, task: str) -> tuple[TrainingSet, list]:
    manifest = read_manifest(folder)[:limit]
    images, labels = read_synthetic_arrays(folder, limit)
    classes = _manifest_classes(manifest)
    if task == "classification":
        if classes is None:
            raise InputError(
                "classification evaluation needs the class of every synthetic sample "
                f"(a manifest column {' or '.join(_CLASS_COLUMNS)})",
                folder / "manifest.csv",
            )
        return TrainingSet(images, None, classes, ["synthetic"] * len(images)), manifest
    if labels is None:
        raise InputError(
            "the real data have label maps but the synthetic dataset has none (image-only "
            "samples): segmentation utility needs labelled synthetic pairs",
            folder / "manifest.csv",
        )
    return TrainingSet(images, labels, None, ["synthetic"] * len(images)), manifest


def _num_classes(task: str, checkpoint: dict, real: TrainingSet) -> int:
    if task == "segmentation":
        return int(checkpoint["num_classes"])
    declared = int(checkpoint.get("model_kwargs", {}).get("num_classes", 0) or 0)
    return max(declared, int(real.classes.max()) + 1)


def _sampled_checkpoint(run_dir: Path, synth_dir: Path, which: str) -> Path:
    """The checkpoint the synthetic set was drawn from (its manifest's ``checkpoint`` column),
    so the critic attack audits the same model; the run's sampling checkpoint otherwise."""
    try:
        rows = read_manifest(synth_dir)[:1]
    except InputError:
        rows = []
    named = rows[0].get("checkpoint", "") if rows else ""
    if named and (Path(run_dir) / named).is_file():
        return Path(run_dir) / named
    if not named:
        return sampling_checkpoint(run_dir, which)
    return latest_checkpoint(run_dir)


def load_inputs(config: RunConfig, run_dir: Path, synth_dir: Path) -> EvalInputs:
    """Load the run's splits, real training and held-out rows, synthetic rows and checkpoint."""
    ckpt_path = _sampled_checkpoint(run_dir, synth_dir, config.sample.checkpoint)
    checkpoint = load_checkpoint(ckpt_path)
    splits = load_splits(config.data)
    task = detect_task(splits["train"])
    if not splits.get("test"):
        raise InputError(
            "the run has no real test split: set data.split.test_fraction or data.test"
        )
    real = real_rows(splits["train"], config, task)
    held_items = list(splits.get("val", [])) + list(splits["test"])
    holdout = real_rows(held_items, config, task)
    synthetic, manifest = _synthetic_rows(synth_dir, config.evaluate.n_synthetic, task)
    if synthetic.images.shape[1:] != real.images.shape[1:]:
        raise InputError(
            f"synthetic images have shape {synthetic.images.shape[1:]} but the real training "
            f"rows {real.images.shape[1:]}",
            synth_dir,
        )
    log.info(
        "evaluating %s: %d real training rows, %d held-out rows, %d synthetic rows",
        task,
        len(real),
        len(holdout),
        len(synthetic),
    )
    inputs = EvalInputs(
        task=task,
        num_classes=_num_classes(task, checkpoint, real),
        splits=splits,
        real=real,
        holdout=holdout,
        synthetic=synthetic,
        checkpoint=checkpoint,
        checkpoint_path=ckpt_path,
        manifest=manifest,
    )
    lesion = target_lesion_value(config, task, inputs.num_classes)
    return inputs if lesion is None else lesion_only(inputs, lesion)


def target_lesion_value(config: RunConfig, task: str, num_classes: int) -> int | None:
    """The label value every section scores alone (``evaluate.label_target``), or None for
    all classes. ``auto`` targets the lesion when the anatomy classes were derived from the
    images (``data.preprocess.anatomy``): the utility must measure tumour segmentation, not
    how well a U-Net re-finds intensity thresholds."""
    target = config.evaluate.label_target
    if target == "auto":
        target = "lesion" if config.data.preprocess.anatomy is not None else "all"
    if target == "all":
        return None
    if task != "segmentation":
        raise InputError("evaluate.label_target 'lesion' needs label maps (segmentation data)")
    value = config.sample.lesion_value
    value = num_classes - 1 if value is None else int(value)
    if not 0 < value < num_classes:
        raise InputError(
            f"evaluate.label_target 'lesion': lesion value {value} is not a foreground label "
            f"of this run (labels 0..{num_classes - 1})"
        )
    return value


def lesion_only(inputs: EvalInputs, lesion_value: int) -> EvalInputs:
    """The same inputs with every label map reduced to lesion (1) / not lesion (0)."""

    def rows(data: TrainingSet) -> TrainingSet:
        labels = (np.asarray(data.labels) == lesion_value).astype(np.int64)
        return replace(data, labels=labels)

    splits = {
        name: [
            it.with_(label=(np.asarray(it.label) == lesion_value).astype(np.uint8)) for it in items
        ]
        for name, items in inputs.splits.items()
    }
    log.info("evaluating the lesion (label %d) only: label maps reduced to 2 classes", lesion_value)
    return replace(
        inputs,
        num_classes=2,
        splits=splits,
        real=rows(inputs.real),
        holdout=rows(inputs.holdout),
        synthetic=rows(inputs.synthetic),
        lesion_value=lesion_value,
    )
