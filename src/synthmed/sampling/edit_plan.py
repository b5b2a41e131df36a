"""Seeded, recorded lesion edits in batches: new tumour cases for Shin et al. 2018.

Following TorchIO, a random edit first draws its parameters from an explicit
``np.random.Generator`` and then applies a deterministic edit from ``edits``; the drawn
parameters go into an ``EditRecord`` whose ``to_manifest()`` string fills the manifest's
``edits`` column, so every synthetic case can be reproduced and audited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from synthmed.sampling.edits import (
    EditError,
    insert_lesion,
    move_lesion,
    remove_lesion,
    resolve_organ_mask,
    rotate_lesion,
    scale_lesion,
    valid_centres,
    valid_offsets,
    zoom_mask,
)

EDIT_KINDS = ("move", "scale", "rotate")


@dataclass(frozen=True)
class EditRecord:
    """One lesion edit, enough to redo it.

    Attributes:
        kind: "move", "scale", "rotate" or "insert".
        parameters: what was drawn or asked (offset, factor, angle_deg, centre, ...).
        source: id of the case whose label map was edited (for inserts: the anatomy).
        area_before, area_after: lesion pixel (voxel) counts. For inserts, "before" is the
            source lesion mask as it came from the bank.
        centre_before, centre_after: lesion centroids (y, x) / (z, y, x), None if no lesion.
    """

    kind: str
    parameters: dict = field(default_factory=dict)
    source: str = ""
    area_before: int = 0
    area_after: int = 0
    centre_before: tuple[float, ...] | None = None
    centre_after: tuple[float, ...] | None = None

    @classmethod
    def from_labels(
        cls,
        kind: str,
        parameters: dict,
        before: np.ndarray,
        after: np.ndarray,
        lesion_value: int,
        source: str = "",
    ) -> EditRecord:
        """Record of an edit done by hand with the ``edits`` functions."""
        a0, c0 = lesion_stats(before, lesion_value)
        a1, c1 = lesion_stats(after, lesion_value)
        return cls(kind, _jsonable(parameters), source, a0, a1, c0, c1)

    def to_manifest(self) -> str:
        """Compact, key-sorted JSON for the manifest's ``edits`` column."""
        return json.dumps(_jsonable(asdict(self)), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_manifest(cls, text: str) -> EditRecord:
        """Inverse of ``to_manifest``."""
        d = json.loads(text)
        for key in ("centre_before", "centre_after"):
            d[key] = None if d[key] is None else tuple(d[key])
        return cls(**d)


def edits_to_manifest(records: Sequence[EditRecord]) -> str:
    """Several edits of one case as one JSON list for the ``edits`` column."""
    return "[" + ",".join(r.to_manifest() for r in records) + "]"


def lesion_stats(label: np.ndarray, lesion_value: int) -> tuple[int, tuple[float, ...] | None]:
    """Lesion pixel count and centroid (rounded to 0.01 px; None when there is no lesion)."""
    mask = np.asarray(label) == lesion_value
    if not mask.any():
        return 0, None
    return int(mask.sum()), tuple(round(float(c), 2) for c in ndimage.center_of_mass(mask))


def random_edit(
    label: np.ndarray,
    lesion_value: int,
    rng: np.random.Generator,
    organ_mask: np.ndarray | None = None,
    kinds: Sequence[str] = EDIT_KINDS,
    scale_range: tuple[float, float] = (0.6, 1.6),
    max_shift: int | None = None,
    *,
    organ_values: Sequence[int] | None = None,
    case_id: str = "",
) -> tuple[np.ndarray, EditRecord]:
    """One random move, scale or rotation of the lesion, always inside the organ.

    Draws (in order): the kind; then a move offset uniformly among the offsets where the
    lesion fits (within ``max_shift`` pixels per axis when given), a factor uniform in
    ``scale_range``, or an angle uniform in [-180, 180). Same rng state, same edit.

    Returns:
        the edited label map and its record.
    """
    unknown = set(kinds) - set(EDIT_KINDS)
    if not kinds or unknown:
        raise EditError(f"edit kinds must be among {list(EDIT_KINDS)}, got {list(kinds)}")
    organ = resolve_organ_mask(label, lesion_value, organ_mask, organ_values)
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "move":
        offsets = valid_offsets(label, lesion_value, organ)
        if max_shift is not None:
            offsets = offsets[np.abs(offsets).max(axis=1) <= max_shift]
        if len(offsets) == 0:
            raise EditError("the lesion fits nowhere inside the organ within max_shift")
        params = {"offset": offsets[int(rng.integers(len(offsets)))]}
        out = move_lesion(label, lesion_value, params["offset"], organ)
    elif kind == "scale":
        params = {"factor": float(rng.uniform(*scale_range))}
        out = scale_lesion(label, lesion_value, params["factor"], organ)
    else:
        params = {"angle_deg": float(rng.uniform(-180.0, 180.0))}
        out = rotate_lesion(label, lesion_value, params["angle_deg"], organ)
    return out, EditRecord.from_labels(kind, params, label, out, lesion_value, case_id)


def resize_to_area(mask: np.ndarray, target_area: int, steps: int = 4) -> tuple[np.ndarray, float]:
    """Zooms a lesion mask until its pixel count is close to ``target_area``.

    Nearest-neighbour zoom changes the area only roughly by factor**ndim, so the factor is
    refined a few times and the closest result kept.

    Returns:
        the cropped mask and the zoom factor used.
    """
    m = np.asarray(mask, dtype=bool)
    if target_area < 1 or not m.any():
        raise EditError(
            f"target lesion area must be >= 1 and the mask non-empty, got {target_area}"
        )
    factor = (target_area / m.sum()) ** (1.0 / m.ndim)
    best, best_f = m, 1.0
    for _ in range(steps):
        z = zoom_mask(m, factor)
        if abs(int(z.sum()) - target_area) < abs(int(best.sum()) - target_area):
            best, best_f = z, factor
        if z.sum() == target_area:
            break
        factor *= (target_area / z.sum()) ** (1.0 / m.ndim)
    return best, float(best_f)


def make_tumour_cases(
    healthy_labels: Sequence[np.ndarray],
    lesion_bank: Sequence[np.ndarray] | Mapping[str, np.ndarray],
    n: int,
    rng: np.random.Generator,
    sizes: Sequence[int] | None = None,
    locations: Sequence[Sequence[float]] | None = None,
    organ_masks: Sequence[np.ndarray | None] | None = None,
    *,
    lesion_value: int = 4,
    organ_values: Sequence[int] | None = None,
    case_ids: Sequence[str] | None = None,
) -> list[tuple[np.ndarray, EditRecord]]:
    """N new tumour label maps: bank lesions inserted into healthy anatomy, inside the organ.

    Case i uses anatomy ``healthy_labels[i % len]`` (any lesion it has is removed first, by
    the fill rule) and a lesion drawn uniformly from ``lesion_bank`` (other cases' lesions,
    e.g. from ``lesion_components``, or mask-GAN samples; a mapping's keys name the source).

    Args:
        sizes: target lesion area (pixels/voxels) per case; None keeps the bank size.
        locations: requested centre per case, moved to the nearest position where the
            lesion fits; None draws a centre uniformly among the positions where it fits.
        organ_masks: one per healthy map (None entries: derived from the label map).
        lesion_value: the lesion's label (4 = tumour in the built-in brain phantom).

    Returns:
        n (label map, record of kind "insert") pairs.
    """
    bank = list(
        lesion_bank.items()
        if isinstance(lesion_bank, Mapping)
        else ((f"bank:{i}", m) for i, m in enumerate(lesion_bank))
    )
    if n < 0 or not healthy_labels or not bank:
        raise EditError("make_tumour_cases needs n >= 0, healthy label maps and a lesion bank")
    for name, seq, want in (
        ("sizes", sizes, n),
        ("locations", locations, n),
        ("organ_masks", organ_masks, len(healthy_labels)),
        ("case_ids", case_ids, len(healthy_labels)),
    ):
        if seq is not None and len(seq) != want:
            raise EditError(f"{name} must have {want} entries, got {len(seq)}")
    cases = []
    for i in range(n):
        h = i % len(healthy_labels)
        organ = None if organ_masks is None else organ_masks[h]
        base = remove_lesion(healthy_labels[h], lesion_value, organ, organ_values=organ_values)
        organ = resolve_organ_mask(base, lesion_value, organ, organ_values)
        key, lesion = bank[int(rng.integers(len(bank)))]
        source = f"healthy:{h}" if case_ids is None else case_ids[h]
        cases.append(
            _insert_case(
                base,
                lesion,
                key,
                organ,
                rng,
                lesion_value,
                source,
                None if sizes is None else sizes[i],
                None if locations is None else locations[i],
            )
        )
    return cases


def _insert_case(
    base: np.ndarray,
    lesion: np.ndarray,
    key: str,
    organ: np.ndarray,
    rng: np.random.Generator,
    lesion_value: int,
    source: str,
    size: int | None,
    location: Sequence[float] | None,
) -> tuple[np.ndarray, EditRecord]:
    """One ``make_tumour_cases`` case: resize, pick a centre, insert, record."""
    lesion = np.asarray(lesion, dtype=bool)
    area0, centre0 = lesion_stats(lesion.astype(np.int8), 1)
    mask, factor = (lesion, 1.0) if size is None else resize_to_area(lesion, int(size))
    if location is None:
        centres = valid_centres(base, mask, lesion_value, organ)
        if len(centres) == 0:
            raise EditError(f"lesion {key} ({int(mask.sum())} px) fits nowhere in {source}")
        location = centres[int(rng.integers(len(centres)))]
    out = insert_lesion(base, mask, location, lesion_value, organ, clip=True)
    params = {
        "lesion_source": key,
        "factor": round(factor, 4),
        "target_area": size,
        "requested_centre": np.asarray(location, dtype=float),
    }
    area1, centre1 = lesion_stats(out, lesion_value)
    record = EditRecord("insert", _jsonable(params), source, area0, area1, centre0, centre1)
    return out, record


def _jsonable(value: object) -> object:
    """Plain JSON types: numpy scalars/arrays and tuples to Python, floats to 4 decimals."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return round(float(value), 4)
    return value
