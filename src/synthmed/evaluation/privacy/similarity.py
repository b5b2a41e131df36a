"""Pixel-space similarity: normalized cross-correlation (NCC) between images.

NCC compares two images after removing brightness (mean) and contrast (scale), so a synthetic
image that reproduces a training scan with a different intensity window still scores ~1. It is the
Pearson correlation of the flattened pixel values, in [-1, 1].
"""

from __future__ import annotations

import numpy as np

from synthmed.evaluation.privacy.neighbours import (
    ArrayLike,
    Backend,
    as_feature_matrix,
    nearest_neighbours,
)


def standardize_images(images: ArrayLike) -> np.ndarray:
    """Flatten each image, subtract its mean and scale it to unit L2 norm.

    Args:
        images: (N, ...) images of any spatial size (channels included in the flattening).

    Returns:
        (N, P) float64 rows with zero mean and unit norm; a constant image becomes all zeros, so
        its NCC with every image (itself included) is defined as 0.
    """
    x = as_feature_matrix(images, "images").astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.finfo(np.float64).tiny)


def normalized_cross_correlation_matrix(
    a: ArrayLike, b: ArrayLike, chunk_size: int = 4096
) -> np.ndarray:
    """NCC of every image in ``a`` with every image in ``b``.

    Args:
        a: (M, ...) images.
        b: (N, ...) images with the same number of pixels as ``a``.
        chunk_size: rows of ``a`` per matrix product.

    Returns:
        (M, N) float64 NCC values in [-1, 1]; 1 for identical images up to ``a * x + b`` (a > 0).
    """
    sa, sb = standardize_images(a), standardize_images(b)
    if sa.shape[1] != sb.shape[1]:
        raise ValueError(f"image sizes differ: {sa.shape[1]} vs {sb.shape[1]} pixels")
    out = np.empty((sa.shape[0], sb.shape[0]), dtype=np.float64)
    for s in range(0, sa.shape[0], chunk_size):
        out[s : s + chunk_size] = sa[s : s + chunk_size] @ sb.T
    return np.clip(out, -1.0, 1.0)


def ncc_distance(a: ArrayLike, b: ArrayLike, chunk_size: int = 4096) -> np.ndarray:
    """``1 - NCC`` for every pair: (M, N) float64 in [0, 2], 0 for affine-intensity copies."""
    return 1.0 - normalized_cross_correlation_matrix(a, b, chunk_size)


def nearest_ncc_neighbours(
    queries: ArrayLike,
    references: ArrayLike,
    k: int = 1,
    backend: Backend = "auto",
    exclude_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The k references with the highest NCC to each query, without the full (M, N) matrix.

    NCC is the cosine similarity of mean-centred images, and for standardised (zero-mean,
    unit-norm) rows ``|a - b|^2 = 2 - 2 NCC``; so nearest-by-NCC is exactly nearest-by-L2 after
    per-image standardisation, and the search is delegated to :func:`nearest_neighbours`.

    Args:
        queries: (M, ...) images.
        references: (N, ...) images with the same number of pixels.
        k: neighbours per query.
        backend: nearest-neighbour backend ("auto", "faiss", "torch").
        exclude_self: queries are the references; skip each image's own row.

    Returns:
        ncc_distances: (M, k) float64 ``1 - NCC``, ascending.
        indices: (M, k) int64 rows of ``references``.
    """
    return nearest_neighbours(
        standardize_images(queries),
        standardize_images(references),
        k=k,
        metric="cosine",
        backend=backend,
        exclude_self=exclude_self,
    )
