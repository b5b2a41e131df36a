"""Training data for the utility harness as plain arrays, with who each row comes from.

Real and synthetic rows share one container so protocols can mix them by concatenation and
sweeps can subset real rows by whole patient (``patient_ids``); synthetic rows are marked
``"synthetic"`` so a mixed set still says how many real rows it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from synthmed.data.types import Item

SYNTHETIC = "synthetic"


@dataclass
class TrainingSet:
    """Rows of one training (or validation / test) set.

    Attributes:
        images: float (N, C, *spatial), intensities in [0, 1].
        labels: int (N, *spatial) label maps for segmentation, else None.
        classes: int (N,) image-level classes for classification, else None.
        patient_ids: N strings; real rows name their patient, synthetic rows ``"synthetic"``,
            an empty string means "unknown" (each such row counts as its own patient).
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    classes: np.ndarray | None = None
    patient_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.images)
        if not self.patient_ids:
            self.patient_ids = [""] * n
        self.patient_ids = [str(p) for p in self.patient_ids]
        for name, value in (("labels", self.labels), ("classes", self.classes)):
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} rows but images has {n}")
        if len(self.patient_ids) != n:
            raise ValueError(f"patient_ids has {len(self.patient_ids)} rows but images has {n}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_synthetic(self) -> int:
        return sum(p == SYNTHETIC for p in self.patient_ids)

    @property
    def n_real(self) -> int:
        return len(self) - self.n_synthetic

    def take(self, index: Sequence[int] | np.ndarray) -> TrainingSet:
        """The rows at ``index`` (in that order; repeats allowed)."""
        idx = np.asarray(index, dtype=np.int64)
        return TrainingSet(
            images=self.images[idx],
            labels=None if self.labels is None else self.labels[idx],
            classes=None if self.classes is None else self.classes[idx],
            patient_ids=[self.patient_ids[i] for i in idx],
        )


def concat_sets(first: TrainingSet, second: TrainingSet) -> TrainingSet:
    """Rows of ``first`` then ``second``; both must carry the same kind of targets."""
    if first.images.shape[1:] != second.images.shape[1:]:
        raise ValueError(
            f"cannot mix rows of shape {first.images.shape[1:]} and {second.images.shape[1:]}"
        )
    if (first.labels is None) != (second.labels is None):
        raise ValueError("one set has label maps and the other has none")
    if (first.classes is None) != (second.classes is None):
        raise ValueError("one set has image classes and the other has none")
    return TrainingSet(
        images=np.concatenate([first.images, second.images]),
        labels=None if first.labels is None else np.concatenate([first.labels, second.labels]),
        classes=None if first.classes is None else np.concatenate([first.classes, second.classes]),
        patient_ids=first.patient_ids + second.patient_ids,
    )


def set_from_items(items: Sequence[Item]) -> TrainingSet:
    """Stack equally shaped items (labels / classes kept when every item has one)."""
    if not items:
        raise ValueError("no items")
    shapes = {item.image.shape for item in items}
    if len(shapes) != 1:
        raise ValueError(f"items differ in shape {sorted(shapes)[:3]}; resize or cut patches")
    has_labels = all(item.label is not None for item in items)
    has_classes = all(item.class_id is not None for item in items)
    return TrainingSet(
        images=np.stack([item.image for item in items]).astype(np.float32, copy=False),
        labels=np.stack([item.label for item in items]).astype(np.int64) if has_labels else None,
        classes=np.array([int(i.class_id) for i in items], np.int64) if has_classes else None,
        patient_ids=[item.patient_id for item in items],
    )


def items_from_set(data: TrainingSet) -> list[Item]:
    """One :class:`Item` per row (for whole-image segmentation scoring)."""
    return [
        Item(
            image=np.asarray(data.images[i], dtype=np.float32),
            label=None if data.labels is None else data.labels[i],
            class_id=None if data.classes is None else int(data.classes[i]),
            patient_id=data.patient_ids[i],
        )
        for i in range(len(data))
    ]
