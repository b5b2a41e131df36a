"""Per-image preprocessing: channels, intensity normalisation, slicing, resizing, label mode.

Intensity operations touch images only; spatial operations move the image, its label and its
FOV mask (``meta["fov"]``) together, with nearest-neighbour sampling for label and mask so
class values stay exact (TorchIO's image/label split).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from synthmed.config.schema import PreprocessConfig
from synthmed.data.types import Item
from synthmed.errors import InputError

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
"""ITU-R BT.601 luminance weights (what Pillow's ``convert('L')`` uses)."""


# --------------------------------------------------------------------------- channels


def select_channels(image: np.ndarray, mode: str | Sequence[int]) -> np.ndarray:
    """Pick channels of a channel-first image.

    Args:
        image: (C, H, W) or (C, D, H, W).
        mode: ``keep``; ``grey`` (BT.601 luminance of RGB); ``green`` (channel 1 of RGB, the
            highest vessel contrast in fundus photos); ``first``; or a list of indices.
            Single-channel images pass ``grey``/``green`` unchanged.

    Returns:
        float32 (C', ...) array.
    """
    channels = image.shape[0]
    if mode == "keep":
        return image
    if isinstance(mode, str) and channels == 1 and mode in ("grey", "green", "first"):
        return image
    if mode == "grey":
        if channels < 3:
            return image[:1]
        return np.tensordot(LUMA, image[:3], axes=1)[None].astype(np.float32)
    if mode == "green":
        if channels < 3:
            raise InputError(f"channels 'green' needs an RGB image, found {channels} channels")
        return image[1:2]
    if mode == "first":
        return image[:1]
    indices = list(mode)
    if not indices or min(indices) < -channels or max(indices) >= channels:
        raise InputError(f"channels {indices} do not exist in an image with {channels} channels")
    return image[indices]


# --------------------------------------------------------------------------- intensities


def _scale(image: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros_like(image, dtype=np.float32)
    return np.clip((image - low) / (high - low), 0.0, 1.0).astype(np.float32)


def normalize(
    image: np.ndarray,
    mode: str = "percentile",
    percentiles: tuple[float, float] = (0.5, 99.5),
    ct_window: tuple[float, float] | None = None,
    fov: np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Map intensities to a fixed range, with statistics from one image (or from
    ``reference``: the values of all images of its patient, see ``normalize_scope``).

    Statistics are taken over all channels together (so colour balance is kept) and only
    inside ``fov`` when given (the black surround of a fundus photo would otherwise set the
    low percentile).

    Args:
        image: (C, ...) float array.
        mode: ``percentile`` (clip, then [0, 1]), ``minmax`` ([0, 1]), ``zscore`` (mean 0,
            sd 1), ``ct_window`` (``[centre, width]`` in HU -> [0, 1]), ``none``.
        fov: bool mask with the image's spatial shape, or None.

    Returns:
        float32 array of the same shape.
    """
    image = np.asarray(image, dtype=np.float32)
    if mode == "none":
        return image
    if mode == "ct_window":
        if ct_window is None:
            raise InputError("normalize 'ct_window' needs ct_window: [centre, width]")
        centre, width = ct_window
        return _scale(image, centre - width / 2, centre + width / 2)
    values = image[:, fov] if fov is not None and fov.any() else image
    if reference is not None:
        values = reference
    if mode == "percentile":
        low, high = np.percentile(values, percentiles)
        return _scale(image, float(low), float(high))
    if mode == "minmax":
        return _scale(image, float(values.min()), float(values.max()))
    if mode == "zscore":
        std = float(values.std())
        return ((image - float(values.mean())) / (std if std > 0 else 1.0)).astype(np.float32)
    raise InputError(f"unknown normalize mode '{mode}'")


# --------------------------------------------------------------------------- geometry


def resize_image(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Bilinear (2D, antialiased when shrinking) or trilinear (3D) resize of (C, *spatial)."""
    size = tuple(int(s) for s in size)
    if tuple(image.shape[1:]) == size:
        return image
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    if len(size) == 2:
        shrink = any(s < o for s, o in zip(size, image.shape[1:], strict=True))
        out = F.interpolate(
            tensor, size=size, mode="bilinear", align_corners=False, antialias=shrink
        )
    else:
        out = F.interpolate(tensor, size=size, mode="trilinear", align_corners=False)
    return out[0].numpy()


def resize_nearest(array: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map or mask (H, W) / (D, H, W); dtype kept."""
    size = tuple(int(s) for s in size)
    if tuple(array.shape) == size:
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array).astype(np.float32))[None, None]
    out = F.interpolate(tensor, size=size, mode="nearest-exact")[0, 0].numpy()
    return out.astype(array.dtype)


def crop_or_pad(array: np.ndarray, size: int | Sequence[int], value: float = 0) -> np.ndarray:
    """Centre-crop or constant-pad the last ``len(size)`` axes to ``size``.

    Args:
        array: any array whose trailing axes are spatial, e.g. (C, H, W) or (H, W).
        size: target spatial size (an int means a square/cube over the last two axes).
        value: fill value for padding.
    """
    size = (int(size),) * 2 if isinstance(size, (int, np.integer)) else tuple(map(int, size))
    lead = array.ndim - len(size)
    pads, slices = [(0, 0)] * lead, [slice(None)] * lead
    for have, want in zip(array.shape[lead:], size, strict=True):
        extra = max(want - have, 0)
        pads.append((extra // 2, extra - extra // 2))
        start = max(have - want, 0) // 2
        slices.append(slice(start, start + min(have, want)))
    return np.pad(array[tuple(slices)], pads, mode="constant", constant_values=value)


def _scale_spacing(item: Item, size: Sequence[int]) -> tuple[float, ...] | None:
    if item.spacing is None or len(item.spacing) != len(size):
        return item.spacing
    old = item.spatial_shape
    return tuple(s * o / n for s, o, n in zip(item.spacing, old, size, strict=True))


def resize_item(item: Item, size: Sequence[int]) -> Item:
    """Resize image (linear), label and FOV mask (nearest) together; spacing follows."""
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        size = size * item.spatial_dims
    if len(size) != item.spatial_dims:
        raise InputError(f"resize {list(size)} does not fit a {item.spatial_dims}D image")
    if size == item.spatial_shape:
        return item
    meta = {k: v for k, v in item.meta.items() if k != "affine"}  # grid changed
    if meta.get("fov") is not None:
        meta["fov"] = resize_nearest(meta["fov"], size)
    label = None if item.label is None else resize_nearest(item.label, size)
    return item.with_(
        image=resize_image(item.image, size),
        label=label,
        spacing=_scale_spacing(item, size),
        meta=meta,
    )


def crop_window(array: np.ndarray, starts: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """Cut a window from the trailing axes, zero-padding where it leaves the array."""
    lead = array.ndim - len(starts)
    pads, slices = [(0, 0)] * lead, [slice(None)] * lead
    for dim, start, size in zip(array.shape[lead:], starts, sizes, strict=True):
        before, after = max(-start, 0), max(start + size - dim, 0)
        pads.append((before, after))
        slices.append(slice(start + before, start + size + before))
    return np.pad(array, pads)[tuple(slices)]


def lesion_roi_crop(
    item: Item, size: int, lesion_value: int | None = None, margin: float = 0.25
) -> Item:
    """Square ROI centred on the lesion's bounding box, resized to ``size`` x ``size``.

    Frid-Adar et al. 2018 trained their GANs on lesion ROIs rather than whole slices; this
    cuts such ROIs from labelled 2D images. Without a lesion the central square is used.

    Args:
        item: 2D item with a label map.
        size: output side length in pixels.
        lesion_value: class value of the lesion; None means any foreground (label > 0).
        margin: context added on each side, as a fraction of the box's longer side.

    Returns:
        A new item; ``meta["roi"] = (top, left, side)`` in input pixels.
    """
    if item.label is None or item.spatial_dims != 2:
        raise ValueError("lesion_roi_crop needs a 2D item with a label map")
    lesion = item.label > 0 if lesion_value is None else item.label == lesion_value
    height, width = lesion.shape
    if lesion.any():
        rows, cols = np.flatnonzero(lesion.any(1)), np.flatnonzero(lesion.any(0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        side = max(int(np.ceil(max(y1 - y0, x1 - x0) * (1 + 2 * margin))), 1)
    else:
        y0, y1, x0, x1, side = 0, height, 0, width, min(height, width)
    top, left = int(round((y0 + y1 - side) / 2)), int(round((x0 + x1 - side) / 2))
    box = ((top, left), (side, side))
    meta = {k: v for k, v in item.meta.items() if k != "affine"}
    meta["roi"] = (top, left, side)
    if meta.get("fov") is not None:
        meta["fov"] = resize_nearest(crop_window(meta["fov"], *box), (size, size))
    return item.with_(
        image=resize_image(crop_window(item.image, *box), (size, size)),
        label=resize_nearest(crop_window(item.label, *box), (size, size)),
        spacing=None if item.spacing is None else tuple(s * side / size for s in item.spacing),
        meta=meta,
    )


def slice_volume(item: Item, axis: int, only_labelled: bool = False) -> list[Item]:
    """Cut a 3D item into 2D items along spatial ``axis`` (0 = D); 2D items pass through.

    Slices keep ``patient_id`` (so patient-level splits stay valid) and record
    ``meta["slice_index"]``; ``only_labelled`` drops slices whose label is empty.
    """
    if item.spatial_dims != 3:
        return [item]
    axis = axis % 3
    keep = range(item.spatial_shape[axis])
    if only_labelled and item.label is not None:
        keep = np.flatnonzero(item.label.any(axis=tuple(a for a in range(3) if a != axis)))
    fov = item.meta.get("fov")
    spacing = None if item.spacing is None else tuple(np.delete(item.spacing, axis).tolist())
    base_meta = {k: v for k, v in item.meta.items() if k not in ("fov", "affine")}
    pieces = []
    for k in map(int, keep):
        meta = {**base_meta, "slice_index": k, "slice_axis": axis}
        if fov is not None:
            meta["fov"] = np.take(fov, k, axis=axis)
        label = None if item.label is None else np.take(item.label, k, axis=axis)
        image = np.take(item.image, k, axis=axis + 1)
        pieces.append(
            item.with_(
                image=image,
                label=label,
                spacing=spacing,
                meta=meta,
                source=f"{item.source}#slice{k}",
            )
        )
    return pieces


def _preprocess_one(
    item: Item, cfg: PreprocessConfig, reference: np.ndarray | None = None
) -> list[Item]:
    image = select_channels(item.image, cfg.channels)
    fov = item.meta.get("fov")
    image = normalize(image, cfg.normalize, cfg.percentiles, cfg.ct_window, fov, reference)
    item = item.with_(image=image)
    pieces = (
        [item]
        if cfg.slice_axis is None
        else slice_volume(item, cfg.slice_axis, cfg.only_labelled_slices)
    )
    out = []
    for piece in pieces:
        if cfg.resize:
            piece = resize_item(piece, cfg.resize)
        if cfg.lesion_roi:
            piece = lesion_roi_crop(piece, cfg.lesion_roi, cfg.lesion_value)
        if piece.label is not None:
            label = _apply_label_mode(piece.label, cfg)
            if cfg.anatomy is not None:  # lesion-only maps: anatomy from the image itself
                from synthmed.data.anatomy import derive_anatomy  # scipy/skimage: lazy

                label = derive_anatomy(piece.image, label, cfg.anatomy)
            piece = piece.with_(label=label)
        out.append(piece)
    return out


def _apply_label_mode(label: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """binary: any foreground -> 1; lesion: only ``lesion_value`` -> 1; multiclass: as is.

    With ``anatomy`` the binary lesion map is then turned into background / tissue classes /
    lesion (``synthmed.data.anatomy``).
    """
    if cfg.label_mode == "binary":
        return (label > 0).astype(np.uint8)
    if cfg.label_mode == "lesion":
        return (label == cfg.lesion_value).astype(np.uint8)
    return label


REFERENCE_VALUES = 200_000  # per patient: enough for stable 0.5/99.5 percentiles


def _patient_references(items: Sequence[Item], cfg: PreprocessConfig) -> dict[str, np.ndarray]:
    """Per patient, an evenly thinned sample of the values of all its images (inside the FOV
    where known), after channel selection: the statistics ``normalize_scope: patient`` uses."""
    values: dict[str, list[np.ndarray]] = {}
    for item in items:
        image = select_channels(item.image, cfg.channels).astype(np.float32)
        fov = item.meta.get("fov")
        picked = image[:, fov] if fov is not None and fov.any() else image
        values.setdefault(item.patient_id, []).append(picked.ravel())
    out = {}
    for pid, parts in values.items():
        joined = np.concatenate(parts)
        step = max(1, len(joined) // REFERENCE_VALUES)
        out[pid] = joined[::step]
    return out


def preprocess_items(items: Sequence[Item], cfg: PreprocessConfig) -> list[Item]:
    """Apply channel selection, normalisation, slicing, resizing and label mode (then the
    derived anatomy classes, with ``anatomy``) in that order.

    Normalisation runs before slicing so all slices of a volume share one intensity scale.

    Raises:
        InputError: a setting that does not fit an item, naming the item's source.
    """
    references = _patient_references(items, cfg) if cfg.normalize_scope == "patient" else {}
    out: list[Item] = []
    for item in items:
        try:
            out.extend(_preprocess_one(item, cfg, references.get(item.patient_id)))
        except InputError as exc:
            if exc.path is not None:
                raise
            raise InputError(exc.problem, item.source or None) from exc
    return out
