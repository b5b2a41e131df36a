"""Lesion editing of label maps (Shin et al. 2018, arXiv 1807.10225), 2D and 3D.

Shin et al. make new tumour cases by editing the tumour labels of brain label maps (moving,
resizing, or inserting a tumour into healthy anatomy) before pix2pix translates the maps to
MRI. These are the pure numpy edits: label map in, new label map out, input never modified.
Seeded batches with recorded parameters live in ``synthmed.sampling.edit_plan``.

Conventions shared by every function:

- ``label`` is an integer array (H, W) or (D, H, W); ``lesion_value`` is the lesion's label.
- Organ mask (where a lesion may lie): ``organ_mask`` when given; else the pixels whose
  label is in ``organ_values`` plus the lesion itself; else every non-background pixel.
  The array border counts as the edge of the field of view. A lesion that would leave the
  organ is an ``EditError`` unless ``clip=True``.
- Fill rule: pixels a lesion vacates take the label of the nearest organ tissue pixel (not
  background, not lesion), found with scipy's Euclidean distance transform
  (``return_indices``). The surrounding tissue thus grows into the hole, so no background
  hole or stale lesion label is left inside the organ; for a compact hole this is the most
  common label among its neighbours. Vacated pixels outside the organ take the nearest
  non-lesion label of any kind.
- ``component`` picks one connected lesion (index into ``lesion_components``, largest
  first); None edits all lesion pixels together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage, signal

from synthmed.errors import InputError

logger = logging.getLogger(__name__)


class EditError(InputError):
    """An edit that cannot be done as asked: no lesion, or a lesion leaving the organ."""


def organ_mask_from_label(label: np.ndarray, organ_values: Sequence[int]) -> np.ndarray:
    """Bool mask of pixels whose label counts as organ, e.g. (1, 2, 3) for CSF/GM/WM."""
    return np.isin(np.asarray(label), np.asarray(list(organ_values)))


def organ_mask_from_image(image: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Bool mask of the imaged body part, for label maps that only hold the lesion (e.g. LGG
    tumour masks): the largest connected region brighter than ``fraction`` of the image's
    range (mean over channels), holes filled. Keeps edited lesions inside the brain instead
    of anywhere in the field of view.

    Args:
        image: (C, H, W) or (C, D, H, W), any intensity range.
    """
    mean = np.asarray(image, dtype=np.float64).mean(axis=0)
    low, high = float(mean.min()), float(mean.max())
    if high <= low:
        return np.ones(mean.shape, dtype=bool)
    bright = ndimage.binary_fill_holes(mean > low + fraction * (high - low))
    parts, n = ndimage.label(bright)
    if n == 0:
        return np.ones(mean.shape, dtype=bool)
    sizes = ndimage.sum_labels(np.ones_like(parts), parts, index=np.arange(1, n + 1))
    return parts == (int(np.argmax(sizes)) + 1)


def resolve_organ_mask(
    label: np.ndarray,
    lesion_value: int,
    organ_mask: np.ndarray | None = None,
    organ_values: Sequence[int] | None = None,
) -> np.ndarray:
    """The organ mask every edit checks against (see the module docstring for the order).

    The lesion is added to an ``organ_values`` mask because a tumour displaces organ tissue:
    its own pixels are valid places for it to be.
    """
    lab = _check_label(label)
    if organ_mask is not None:
        organ = np.asarray(organ_mask, dtype=bool)
        if organ.shape != lab.shape:
            raise EditError(f"organ mask shape {organ.shape} != label map shape {lab.shape}")
        return organ
    if organ_values is not None:
        return organ_mask_from_label(lab, organ_values) | (lab == lesion_value)
    return lab != 0


def lesion_components(label: np.ndarray, lesion_value: int) -> list[np.ndarray]:
    """Connected lesions as bool masks, largest first (full, i.e. 8/26-, connectivity).

    Diagonal contact counts as connected so a ragged GAN-made lesion stays one lesion.
    """
    lab = _check_label(label)
    structure = ndimage.generate_binary_structure(lab.ndim, lab.ndim)
    comps, n = ndimage.label(lab == lesion_value, structure)
    sizes = np.bincount(comps.ravel(), minlength=n + 1)[1:]
    return [comps == k + 1 for k in np.argsort(-sizes, kind="stable")]


def remove_lesion(
    label: np.ndarray,
    lesion_value: int,
    organ_mask: np.ndarray | None = None,
    *,
    organ_values: Sequence[int] | None = None,
    component: int | None = None,
) -> np.ndarray:
    """Healthy anatomy: the lesion replaced by surrounding tissue (the fill rule).

    A map without a lesion comes back unchanged (as a copy), so any case can serve as the
    healthy anatomy for ``insert_lesion``.
    """
    lab = _check_label(label)
    if component is None and not (lab == lesion_value).any():
        return lab.copy()
    organ = resolve_organ_mask(lab, lesion_value, organ_mask, organ_values)
    return _vacate(lab, _lesion_mask(lab, lesion_value, component), lesion_value, organ)


def move_lesion(
    label: np.ndarray,
    lesion_value: int,
    offset: Sequence[int],
    organ_mask: np.ndarray | None = None,
    *,
    clip: bool = False,
    organ_values: Sequence[int] | None = None,
    component: int | None = None,
) -> np.ndarray:
    """Translates the lesion by an integer offset; its shape and area are kept exactly.

    Args:
        offset: one integer per axis, (dy, dx) or (dz, dy, dx).
        clip: if the moved lesion would leave the organ, move it instead by the valid offset
            nearest (Euclidean) to ``offset``, found over all positions where it fits.

    Raises:
        EditError: no lesion, or it would leave the organ (or fits nowhere) and not clipped.
    """
    lab = _check_label(label)
    organ = resolve_organ_mask(lab, lesion_value, organ_mask, organ_values)
    mask = _lesion_mask(lab, lesion_value, component)
    crop, lo = _crop(mask)
    start = _place(crop, lo + _int_vector(offset, lab.ndim, "offset"), organ, clip)
    return _paste(_vacate(lab, mask, lesion_value, organ), crop, start, lesion_value)


def valid_offsets(
    label: np.ndarray,
    lesion_value: int,
    organ_mask: np.ndarray | None = None,
    *,
    organ_values: Sequence[int] | None = None,
    component: int | None = None,
) -> np.ndarray:
    """Every integer offset at which ``move_lesion`` keeps the lesion inside the organ.

    Returns:
        int array (K, ndim), K = 0 when the lesion fits nowhere.
    """
    lab = _check_label(label)
    organ = resolve_organ_mask(lab, lesion_value, organ_mask, organ_values)
    crop, lo = _crop(_lesion_mask(lab, lesion_value, component))
    return np.argwhere(_fit_map(crop, organ)) - lo


def scale_lesion(
    label: np.ndarray,
    lesion_value: int,
    factor: float | Sequence[float],
    organ_mask: np.ndarray | None = None,
    *,
    clip: bool = True,
    organ_values: Sequence[int] | None = None,
    component: int | None = None,
) -> np.ndarray:
    """Resizes the lesion about its centroid (nearest-neighbour zoom of its mask).

    The area changes by about ``factor**ndim`` (2D: factor squared). Pixels that land
    outside the organ are cut (``clip=True``, logged with the area left) or raise.

    Args:
        factor: > 0, one value or one per axis.
    """
    lab = _check_label(label)
    f = np.broadcast_to(np.asarray(factor, dtype=float), (lab.ndim,))
    if not np.all(f > 0):
        raise EditError(f"scale factor must be > 0, got {factor}")
    organ = resolve_organ_mask(lab, lesion_value, organ_mask, organ_values)
    mask = _lesion_mask(lab, lesion_value, component)
    new, lost = _resample(mask, np.diag(1.0 / f), _zoom_pad(_crop(mask)[0].shape, f))
    return _put_resampled(lab, mask, new, lost, organ, clip, lesion_value, "scaled")


def rotate_lesion(
    label: np.ndarray,
    lesion_value: int,
    angle_deg: float,
    organ_mask: np.ndarray | None = None,
    *,
    clip: bool = True,
    organ_values: Sequence[int] | None = None,
    component: int | None = None,
) -> np.ndarray:
    """Rotates the lesion about its centroid; 3D volumes rotate in the axial (H, W) plane.

    Nearest-neighbour resampling keeps the area within a few percent. Positive angles turn
    counter-clockwise as displayed (row 0 at the top). Clipping as in ``scale_lesion``.
    """
    lab = _check_label(label)
    organ = resolve_organ_mask(lab, lesion_value, organ_mask, organ_values)
    mask = _lesion_mask(lab, lesion_value, component)
    t = np.deg2rad(angle_deg)
    inverse = np.eye(lab.ndim)
    inverse[-2:, -2:] = [[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]]  # output -> input
    h, w = _crop(mask)[0].shape[-2:]
    pad = [0] * (lab.ndim - 2) + [int(np.ceil(np.hypot(h, w) / 2)) + 1] * 2
    new, lost = _resample(mask, inverse, pad)
    return _put_resampled(lab, mask, new, lost, organ, clip, lesion_value, "rotated")


def insert_lesion(
    healthy_label: np.ndarray,
    lesion_mask: np.ndarray,
    centre: Sequence[float],
    lesion_value: int,
    organ_mask: np.ndarray | None = None,
    *,
    clip: bool = False,
    organ_values: Sequence[int] | None = None,
) -> np.ndarray:
    """Pastes a lesion mask (from another case or a mask-GAN sample) with its centroid at
    ``centre`` (rounded to the pixel grid), overwriting the tissue under it.

    Args:
        lesion_mask: bool array with the label map's number of axes; any size, only its
            lesion pixels are used.
        centre: (y, x) or (z, y, x) in pixels.
        clip: if it would leave the organ, paste at the nearest position where it fits.
    """
    lab = _check_label(healthy_label)
    lesion = np.asarray(lesion_mask, dtype=bool)
    if lesion.ndim != lab.ndim or not lesion.any():
        raise EditError(f"lesion mask must be a non-empty {lab.ndim}D mask, got {lesion.shape}")
    crop, _ = _crop(lesion)
    organ = resolve_organ_mask(lab, lesion_value, organ_mask, organ_values)
    c = np.asarray(centre, dtype=float)
    if c.shape != (lab.ndim,) or not np.isfinite(c).all():
        raise EditError(f"centre must be {lab.ndim} finite numbers, got {centre}")
    start = _place(crop, np.rint(c - _centroid(crop)).astype(int), organ, clip)
    return _paste(lab.copy(), crop, start, lesion_value)


def valid_centres(
    healthy_label: np.ndarray,
    lesion_mask: np.ndarray,
    lesion_value: int,
    organ_mask: np.ndarray | None = None,
    *,
    organ_values: Sequence[int] | None = None,
) -> np.ndarray:
    """Every ``centre`` at which ``insert_lesion`` fits the lesion inside the organ.

    Returns:
        float array (K, ndim), K = 0 when it fits nowhere.
    """
    lab = _check_label(healthy_label)
    crop, _ = _crop(np.asarray(lesion_mask, dtype=bool))
    organ = resolve_organ_mask(lab, lesion_value, organ_mask, organ_values)
    return np.argwhere(_fit_map(crop, organ)) + _centroid(crop)


def zoom_mask(mask: np.ndarray, factor: float | Sequence[float]) -> np.ndarray:
    """Nearest-neighbour zoom of a lone lesion mask, cropped to its bounding box.

    Used to bring a lesion-bank mask to a target size before ``insert_lesion``.
    """
    m = np.asarray(mask, dtype=bool)
    f = np.broadcast_to(np.asarray(factor, dtype=float), (m.ndim,))
    if not m.any() or not np.all(f > 0):
        raise EditError(f"zoom needs a non-empty mask and factor > 0, got {factor}")
    crop, _ = _crop(m)
    pad = _zoom_pad(crop.shape, f)
    win = _resample_window(np.pad(crop, [(p, p) for p in pad]), np.diag(1.0 / f))
    if not win.any():
        raise EditError(f"lesion vanished when zoomed by {factor}")
    return _crop(win)[0]


# ----------------------------------------------------------------------------- helpers


def _check_label(label: np.ndarray) -> np.ndarray:
    lab = np.asarray(label)
    if lab.ndim not in (2, 3) or not np.issubdtype(lab.dtype, np.integer):
        raise EditError(
            f"label map must be an integer array (H, W) or (D, H, W), got {lab.dtype} {lab.shape}"
        )
    return lab


def _int_vector(values: Sequence[int], ndim: int, name: str) -> np.ndarray:
    v = np.asarray(values)
    if v.shape != (ndim,) or not np.all(np.equal(np.mod(v, 1), 0)):
        raise EditError(f"{name} must be {ndim} integers, got {values}")
    return v.astype(int)


def _lesion_mask(lab: np.ndarray, lesion_value: int, component: int | None) -> np.ndarray:
    if component is None:
        mask = lab == lesion_value
    else:
        comps = lesion_components(lab, lesion_value)
        if not 0 <= component < len(comps):
            raise EditError(f"lesion component {component} not in 0..{len(comps) - 1}")
        mask = comps[component]
    if not mask.any():
        raise EditError(f"label map has no lesion pixels with value {lesion_value}")
    return mask


def _vacate(lab: np.ndarray, mask: np.ndarray, lesion_value: int, organ: np.ndarray) -> np.ndarray:
    """A copy of ``lab`` with ``mask`` refilled by the fill rule (module docstring)."""
    out = lab.copy()
    tissue = organ & (lab != 0) & (lab != lesion_value)
    _fill_nearest(out, mask & organ, tissue)
    _fill_nearest(out, mask & ~organ, lab != lesion_value)
    return out


def _fill_nearest(out: np.ndarray, holes: np.ndarray, sources: np.ndarray) -> None:
    if not holes.any():
        return
    if not sources.any():  # nothing to grow from (the organ is all lesion): background
        out[holes] = 0
        return
    _, idx = ndimage.distance_transform_edt(~sources, return_indices=True)
    out[holes] = out[tuple(i[holes] for i in idx)]


def _crop(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounding-box crop of a non-empty mask and the crop's start index."""
    idx = np.argwhere(mask)
    lo, hi = idx.min(0), idx.max(0) + 1
    return mask[_window(lo, hi - lo)], lo


def _window(start: np.ndarray, shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(a) + int(n)) for a, n in zip(start, shape, strict=True))


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.asarray(ndimage.center_of_mass(mask), dtype=float)


def _fits(crop: np.ndarray, start: np.ndarray, organ: np.ndarray) -> bool:
    end = start + crop.shape
    if (start < 0).any() or (end > organ.shape).any():
        return False
    return bool(organ[_window(start, crop.shape)][crop].all())


def _fit_map(crop: np.ndarray, organ: np.ndarray) -> np.ndarray:
    """Bool map over crop start positions where every crop pixel is inside the organ.

    One correlation of the outside-organ indicator with the crop, instead of testing each
    of the ~H*W positions in a Python loop.
    """
    if any(c > s for c, s in zip(crop.shape, organ.shape, strict=True)):
        return np.zeros((0,) * organ.ndim, dtype=bool)
    outside = (~organ).astype(np.float32)
    return signal.correlate(outside, crop.astype(np.float32), mode="valid") < 0.5


def _place(crop: np.ndarray, start: np.ndarray, organ: np.ndarray, clip: bool) -> np.ndarray:
    """``start`` if the crop fits there, else (clip) the nearest start where it fits."""
    if _fits(crop, start, organ):
        return start
    if not clip:
        raise EditError(
            f"lesion placed at {start.tolist()} would leave the organ mask "
            "(pass clip=True to use the nearest position inside)"
        )
    valid = np.argwhere(_fit_map(crop, organ))
    if len(valid) == 0:
        raise EditError(f"lesion of {int(crop.sum())} pixels fits nowhere inside the organ mask")
    return valid[np.argmin(((valid - start) ** 2).sum(axis=1))]


def _paste(base: np.ndarray, crop: np.ndarray, start: np.ndarray, value: int) -> np.ndarray:
    base[_window(start, crop.shape)][crop] = value  # basic slice is a view: writes into base
    return base


def _zoom_pad(shape: Sequence[int], f: np.ndarray) -> list[int]:
    return [int(np.ceil(n * max(k - 1.0, 0.0) / 2)) + 1 for n, k in zip(shape, f, strict=True)]


def _resample_window(win: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Nearest-neighbour resampling of a padded mask about its centroid."""
    c = _centroid(win)
    out = ndimage.affine_transform(
        win.astype(np.float32), inverse, offset=c - inverse @ c, order=0, mode="constant"
    )
    return out > 0.5


def _resample(mask: np.ndarray, inverse: np.ndarray, pad: Sequence[int]) -> tuple[np.ndarray, int]:
    """Resamples the lesion in a padded window (cheap in 3D) and puts it back full size.

    Returns:
        the new full-size mask and how many pixels fell outside the array.
    """
    crop, lo = _crop(mask)
    win = _resample_window(np.pad(crop, [(p, p) for p in pad]), inverse)
    idx = np.argwhere(win) + (lo - np.asarray(pad))
    keep = ((idx >= 0) & (idx < mask.shape)).all(axis=1)
    out = np.zeros(mask.shape, dtype=bool)
    out[tuple(idx[keep].T)] = True
    return out, int((~keep).sum())


def _put_resampled(
    lab: np.ndarray,
    mask: np.ndarray,
    new: np.ndarray,
    lost: int,
    organ: np.ndarray,
    clip: bool,
    lesion_value: int,
    what: str,
) -> np.ndarray:
    """Vacates the old lesion and writes the resampled one, clipped to the organ."""
    outside = lost + int((new & ~organ).sum())
    if outside and not clip:
        raise EditError(
            f"{what} lesion would leave the organ mask by {outside} pixels "
            "(pass clip=True to cut it to the organ)"
        )
    new = new & organ
    if not new.any():
        raise EditError(f"{what} lesion is empty (too small, or entirely outside the organ)")
    if outside:
        logger.info(
            "%s lesion clipped to the organ: %d pixels cut, area now %d",
            what,
            outside,
            int(new.sum()),
        )
    out = _vacate(lab, mask, lesion_value, organ)
    out[new] = lesion_value
    return out
