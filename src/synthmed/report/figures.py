"""Image grids with label overlays, as uint8 RGB arrays and PNG files.

Plain numpy + Pillow (no matplotlib) so training can write sample grids cheaply.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from synthmed.atomic import atomic_path

# Distinct overlay colours for label values 1..8 (0 = background is not drawn).
LABEL_COLOURS = np.array(
    [
        [255, 40, 40],
        [40, 200, 255],
        [255, 210, 0],
        [60, 220, 60],
        [255, 60, 255],
        [255, 140, 0],
        [140, 90, 255],
        [0, 255, 170],
    ],
    dtype=np.float32,
)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) float; grey is repeated, >3 channels keep the first 3."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    if image.ndim == 4:  # 3D: show the middle slice
        image = image[:, image.shape[1] // 2]
    if image.shape[0] == 1:
        image = np.repeat(image, 3, axis=0)
    return np.moveaxis(image[:3], 0, -1)


def overlay(image: np.ndarray, label: np.ndarray | None, alpha: float = 0.45) -> np.ndarray:
    """Tint labelled pixels with a colour per label value; returns (H, W, 3) uint8."""
    rgb = to_rgb(image) * 255
    if label is not None:
        label = np.asarray(label)
        if label.ndim == 3:
            label = label[label.shape[0] // 2]
        for value in np.unique(label):
            if value == 0:
                continue
            mask = label == value
            colour = LABEL_COLOURS[(int(value) - 1) % len(LABEL_COLOURS)]
            rgb[mask] = (1 - alpha) * rgb[mask] + alpha * colour
    return np.clip(rgb, 0, 255).astype(np.uint8)


def grid(tiles: list[np.ndarray], ncol: int = 8, pad: int = 2) -> np.ndarray:
    """Arrange equally sized (H, W, 3) uint8 tiles in rows of ``ncol`` with a white gap."""
    if not tiles:
        raise ValueError("grid needs at least one tile")
    h, w = tiles[0].shape[:2]
    ncol = min(ncol, len(tiles))
    nrow = -(-len(tiles) // ncol)
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncol)
        out[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + c * (w + pad) : pad + c * (w + pad) + w,
        ] = tile
    return out


def pair_grid(
    images: np.ndarray, labels: np.ndarray | None, ncol: int = 8, with_plain: bool = True
) -> np.ndarray:
    """Rows of images, each followed (when ``with_plain``) by a row with the label overlaid.

    Args:
        images: (N, C, *spatial) in [0, 1].
        labels: (N, *spatial) integer maps, or None.
    """
    tiles_plain = [overlay(img, None) for img in images]
    if labels is None:
        return grid(tiles_plain, ncol)
    tiles_lab = [overlay(img, lab) for img, lab in zip(images, labels, strict=True)]
    if not with_plain:
        return grid(tiles_lab, ncol)
    tiles: list[np.ndarray] = []
    for start in range(0, len(images), ncol):
        tiles += tiles_plain[start : start + ncol] + tiles_lab[start : start + ncol]
    return grid(tiles, ncol)


def _upscaled(rgb: np.ndarray, min_size: int) -> Image.Image:
    """Small tiles (32-64 px) are unreadable in a report: enlarge by an integer factor."""
    img = Image.fromarray(rgb)
    if min_size and max(img.size) < min_size:
        factor = -(-min_size // max(img.size))
        img = img.resize((img.width * factor, img.height * factor), Image.NEAREST)
    return img


def save_png(path: str | Path, rgb: np.ndarray, min_size: int = 0) -> Path:
    """Write an (H, W, 3) uint8 array atomically, upscaled (nearest) to at least ``min_size``."""
    with atomic_path(path) as tmp:
        _upscaled(rgb, min_size).save(tmp, format="PNG")
    return Path(path)


def png_bytes(rgb: np.ndarray, min_size: int = 0) -> bytes:
    buf = io.BytesIO()
    _upscaled(rgb, min_size).save(buf, format="PNG")
    return buf.getvalue()


def side_by_side_grid(
    left: np.ndarray,
    right: np.ndarray,
    left_labels: np.ndarray | None = None,
    right_labels: np.ndarray | None = None,
    ncol: int = 4,
    gap: int = 1,
) -> np.ndarray:
    """Pairs ``left[i] | right[i]`` (label overlaid when given), ``ncol`` pairs per row.

    Used for the privacy audit's closest synthetic/training pairs: each tile shows a synthetic
    image and, right next to it, the training image it is nearest to.

    Args:
        left, right: (N, C, *spatial) in [0, 1], same shapes.
        left_labels, right_labels: (N, *spatial) integer maps, or None.
    """
    if len(left) != len(right) or len(left) == 0:
        raise ValueError(f"need equally many left and right images, got {len(left)}/{len(right)}")
    tiles = []
    for i in range(len(left)):
        a = overlay(left[i], None if left_labels is None else left_labels[i])
        b = overlay(right[i], None if right_labels is None else right_labels[i])
        spacer = np.full((a.shape[0], gap, 3), 255, np.uint8)
        tiles.append(np.concatenate([a, spacer, b], axis=1))
    return grid(tiles, ncol, pad=max(2, a.shape[0] // 8))
