"""The one record every reader, phantom generator and transform passes along."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass
class Item:
    """One labelled image.

    Attributes:
        image: float32 array, channel first: (C, H, W) in 2D or (C, D, H, W) in 3D.
        label: integer label map with the image's spatial shape ((H, W) or (D, H, W)), values
            0..K-1 (0 = background), or None for unlabelled / classification-only data.
        class_id: image-level class (e.g. lesion type), or None.
        patient_id: who the image comes from; splits never put one patient in two sets.
        source: where it came from (a file path, or e.g. ``phantom:fundus:17``).
        spacing: voxel spacing per spatial axis in mm when known (NIfTI/DICOM), else None.
        meta: free-form extras (original shape, slice index, ...).
    """

    image: np.ndarray
    label: np.ndarray | None = None
    class_id: int | None = None
    patient_id: str = ""
    source: str = ""
    spacing: tuple[float, ...] | None = None
    meta: dict = field(default_factory=dict)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.image.shape[1:])

    @property
    def spatial_dims(self) -> int:
        return self.image.ndim - 1

    def with_(self, **changes) -> Item:
        """A copy with some fields replaced (items are treated as immutable)."""
        return replace(self, **changes)
