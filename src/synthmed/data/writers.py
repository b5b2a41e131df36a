"""Writers for synthetic datasets: PNG, label PNG, NIfTI and MedMNIST-style NPZ.

Every file goes through :func:`synthmed.atomic.atomic_path`, so a crash never leaves a half
written file that a later stage would read. Axis conventions match :mod:`.readers`, so
``read_image(write_nifti(...))`` gives the same array back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from synthmed.atomic import atomic_path


def _to_hwc(array: np.ndarray) -> np.ndarray:
    """(H,W) / (1,H,W) / (3|4,H,W) / (H,W,3|4) -> (H,W) or (H,W,C) for Pillow."""
    array = np.asarray(array)
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[0] == 1:
        return array[0]
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        return np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return array
    raise ValueError(f"expected a grey (H, W) or RGB (3, H, W)/(H, W, 3) image, got {array.shape}")


def _to_integers(array: np.ndarray, bits: int) -> np.ndarray:
    """Floats in [0, 1] are scaled to the full range; integers must already fit it."""
    top = 2**bits - 1
    dtype = np.uint8 if bits == 8 else np.uint16
    if np.issubdtype(array.dtype, np.floating):
        return np.rint(np.clip(array, 0.0, 1.0) * top).astype(dtype)
    if array.size and (array.min() < 0 or array.max() > top):
        raise ValueError(f"integer values {array.min()}..{array.max()} do not fit {bits} bits")
    return array.astype(dtype)


def write_png(path: str | Path, array: np.ndarray, bits: int = 8) -> Path:
    """Write a grey or RGB image as PNG.

    Args:
        path: destination (``.png``).
        array: (H, W), (1, H, W), (3, H, W) or (H, W, 3); float in [0, 1] (scaled, clipped)
            or integers already in 0..2**bits-1.
        bits: 8, or 16 (grey only: Pillow cannot write 16-bit RGB PNG).

    Returns:
        The written path.
    """
    from PIL import Image

    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    pixels = _to_integers(_to_hwc(array), bits)
    if bits == 16 and pixels.ndim == 3:
        raise ValueError("16-bit PNG is written for grey images only")
    img = Image.fromarray(pixels)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def write_label_png(path: str | Path, label: np.ndarray) -> Path:
    """Write a label map (H, W) as 8-bit grey PNG with the class values unchanged (0..255)."""
    from PIL import Image

    label = np.asarray(label)
    if label.ndim == 3 and label.shape[0] == 1:
        label = label[0]
    if label.ndim != 2:
        raise ValueError(f"expected a (H, W) label map, got {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f"label values {label.min()}..{label.max()} do not fit in uint8")
    with atomic_path(path) as tmp:
        Image.fromarray(label.astype(np.uint8)).save(tmp, format="PNG")
    return Path(path)


def _nifti_dtype(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype == np.int64:
        return array.astype(np.int32)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    return array


def write_nifti(
    path: str | Path,
    array: np.ndarray,
    spacing: Sequence[float] | None = None,
    affine: np.ndarray | None = None,
) -> Path:
    """Write a channel-first image or label as NIfTI.

    Args:
        path: ``.nii`` or ``.nii.gz``.
        array: (C, H, W) or (C, D, H, W) (a label map: ``label[None]``). Stored as
            (x=W, y=H, z=D[, t=C]); a 2D image is one z slice.
        spacing: mm per spatial axis in array order ((dy, dx) or (dz, dy, dx)).
        affine: 4x4 voxel (x, y, z) -> RAS matrix; default ``diag(dx, dy, dz, 1)``.
    """
    import nibabel as nib

    array = _nifti_dtype(np.asarray(array))
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise ValueError(f"expected (C, H, W) or (C, D, H, W), got {array.shape}")
    data = np.transpose(array, (3, 2, 1, 0))  # (x, y, z, c)
    if data.shape[3] == 1:
        data = data[..., 0]
    zooms = [1.0, 1.0, 1.0]
    if spacing is not None:
        rev = [float(s) for s in reversed(tuple(spacing))]
        zooms[: len(rev)] = rev
    if affine is None:
        affine = np.diag([*zooms, 1.0])
    img = nib.Nifti1Image(np.ascontiguousarray(data), np.asarray(affine, dtype=float))
    if spacing is not None:
        img.header.set_zooms(tuple(zooms) + (1.0,) * (data.ndim - 3))
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def _medmnist_images(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) channel-first or float images -> MedMNIST's uint8 (N, H, W[, 3])."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = images[:, 0] if images.shape[1] == 1 else np.moveaxis(images, 1, -1)
    if np.issubdtype(images.dtype, np.floating):
        images = np.rint(np.clip(images, 0.0, 1.0) * 255)
    return images.astype(np.uint8)


def write_npz_medmnist(
    path: str | Path, splits: Mapping[str, tuple[np.ndarray, np.ndarray]]
) -> Path:
    """Write ``{split: (images, labels)}`` as MedMNIST keys ``<split>_images``/``_labels``.

    Images become uint8 (N, H, W) or (N, H, W, 3); labels (N, 1) as in the official files,
    so MedMNIST tooling reads synthetic sets unchanged.
    """
    arrays: dict[str, np.ndarray] = {}
    for split, (images, labels) in splits.items():
        images = _medmnist_images(images)
        labels = np.asarray(labels).reshape(len(images), -1)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return Path(path)
