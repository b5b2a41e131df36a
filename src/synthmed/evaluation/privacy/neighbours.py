"""Exact k-nearest-neighbour search between two sets of feature vectors.

Every privacy measure in this package reduces to "how far is each query from its nearest
reference", so this one function is shared. faiss (exact ``IndexFlat*`` search) is used when it is
installed; otherwise a chunked ``torch.cdist`` search does the same job. Both backends only pick the
candidate neighbours: the returned distances are then recomputed exactly in float64 from the input
vectors, so the backends agree and near-copies get distances near 0 rather than the ~1e-3 that
float32 ``|a|^2 + |b|^2 - 2ab`` arithmetic leaves behind.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch

logger = logging.getLogger(__name__)

Metric = Literal["l2", "cosine"]
Backend = Literal["auto", "faiss", "torch"]
ArrayLike = np.ndarray | torch.Tensor

_METRICS = ("l2", "cosine")
_BACKENDS = ("auto", "faiss", "torch")


def as_feature_matrix(x: ArrayLike, name: str = "features") -> np.ndarray:
    """Return ``x`` as a C-contiguous 2D float array, flattening all but the first axis.

    Args:
        x: array or tensor of shape (N, ...); float64 input stays float64, anything else becomes
            float32.
        name: used in error messages.

    Returns:
        Array of shape (N, D) with D the product of the trailing dimensions.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, ...) with N >= 1, got {x.shape}")
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    x = np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=dtype)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _unit_rows(x: np.ndarray) -> np.ndarray:
    # Zero vectors stay zero (cosine similarity 0 to everything) instead of becoming NaN.
    norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    return (x / np.maximum(norms, np.finfo(np.float64).tiny)).astype(x.dtype)


def _import_faiss():
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            "backend='faiss' needs the faiss package (pip install faiss-cpu); "
            "use backend='torch' or 'auto' to run without it"
        ) from err
    return faiss


def _resolve_backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(_BACKENDS)}")
    if backend != "auto":
        return backend
    try:
        import faiss  # noqa: F401
    except ImportError:
        logger.debug("faiss not installed; using the torch nearest-neighbour backend")
        return "torch"
    return "faiss"


def _candidates_faiss(q: np.ndarray, r: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Indices (M, k) of the k nearest references by faiss exact search."""
    faiss = _import_faiss()
    index = faiss.IndexFlatIP(r.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(r.shape[1])
    index.add(np.ascontiguousarray(r, dtype=np.float32))
    _, idx = index.search(np.ascontiguousarray(q, dtype=np.float32), k)
    return idx.astype(np.int64)


def _candidates_torch(q: np.ndarray, r: np.ndarray, k: int, chunk_size: int) -> np.ndarray:
    """Indices (M, k) of the k nearest references by chunked float64 ``torch.cdist``.

    Both sets are chunked, so memory stays at ``chunk_size**2`` distances; the running top-k of
    each query chunk is merged with the top-k of every reference chunk. Cosine search reaches here
    with unit-norm rows, for which L2 order equals cosine order (|a-b|^2 = 2 - 2 cos).
    """
    out = np.empty((q.shape[0], k), dtype=np.int64)
    for qs in range(0, q.shape[0], chunk_size):
        qc = torch.from_numpy(q[qs : qs + chunk_size]).double()
        best_d = torch.full((qc.shape[0], 0), float("inf"), dtype=torch.float64)
        best_i = torch.empty((qc.shape[0], 0), dtype=torch.int64)
        for rs in range(0, r.shape[0], chunk_size):
            d = torch.cdist(qc, torch.from_numpy(r[rs : rs + chunk_size]).double())
            kk = min(k, d.shape[1])
            d_top, i_top = torch.topk(d, kk, dim=1, largest=False)
            best_d = torch.cat([best_d, d_top], dim=1)
            best_i = torch.cat([best_i, i_top + rs], dim=1)
            best_d, order = torch.topk(best_d, min(k, best_d.shape[1]), dim=1, largest=False)
            best_i = torch.gather(best_i, 1, order)
        out[qs : qs + chunk_size] = best_i.numpy()
    return out


def _exact_sorted(
    q: np.ndarray, r: np.ndarray, idx: np.ndarray, metric: str, chunk_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Recompute candidate distances in float64 and sort each row by (distance, index)."""
    dist = np.empty(idx.shape, dtype=np.float64)
    for s in range(0, q.shape[0], chunk_size):
        qc = q[s : s + chunk_size].astype(np.float64)[:, None, :]
        rc = r[idx[s : s + chunk_size]].astype(np.float64)
        if metric == "cosine":
            dist[s : s + chunk_size] = np.clip(1.0 - (qc * rc).sum(axis=2), 0.0, 2.0)
        else:
            dist[s : s + chunk_size] = np.linalg.norm(qc - rc, axis=2)
    # Sorting indices first and then stably by distance breaks exact ties by the smaller index,
    # so both backends return the same neighbours for duplicated references.
    order = np.argsort(idx, axis=1, kind="stable")
    idx, dist = np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)


def _drop_self(dist: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From k+1 neighbours per row, drop the query itself (or the last one if self is absent)."""
    is_self = idx == np.arange(idx.shape[0])[:, None]
    # Rows where self was crowded out by >k exact duplicates drop their last (farthest) entry.
    is_self[~is_self.any(axis=1), -1] = True
    is_self &= np.cumsum(is_self, axis=1) == 1  # drop exactly one entry per row
    keep = ~is_self
    return dist[keep].reshape(-1, k), idx[keep].reshape(-1, k)


def nearest_neighbours(
    queries: ArrayLike,
    references: ArrayLike,
    k: int = 1,
    metric: Metric = "l2",
    backend: Backend = "auto",
    chunk_size: int = 4096,
    exclude_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest references of every query.

    Args:
        queries: (M, D) or (M, ...) feature vectors or images (flattened).
        references: (N, D) or (N, ...), same trailing size as ``queries``.
        k: neighbours per query, 1 <= k <= N (N - 1 with ``exclude_self``).
        metric: "l2" (Euclidean distance, not squared) or "cosine" (1 - cosine similarity, in
            [0, 2]; a zero vector has similarity 0 to everything).
        backend: "faiss" (exact IndexFlatL2 / IndexFlatIP on unit vectors), "torch" (chunked
            cdist) or "auto" (faiss if installed).
        chunk_size: rows per block in the torch search and the float64 distance recomputation.
        exclude_self: the queries ARE the references (within-set search, M == N): skip each
            query's own row, so a point is not its own nearest neighbour. Exact duplicates at other
            rows are still returned.

    Returns:
        distances: (M, k) float64, ascending per row.
        indices: (M, k) int64 row indices into ``references``; exact ties go to the smaller index.
    """
    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(_METRICS)}")
    q = as_feature_matrix(queries, "queries")
    r = as_feature_matrix(references, "references")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"feature sizes differ: queries {q.shape[1]}, references {r.shape[1]}")
    if exclude_self and q.shape[0] != r.shape[0]:
        raise ValueError("exclude_self needs queries and references to be the same set")
    k_search = k + 1 if exclude_self else k
    if not 1 <= k_search <= r.shape[0] or chunk_size < 1:
        raise ValueError(f"need 1 <= k <= {r.shape[0] - exclude_self} and chunk_size >= 1")
    if metric == "cosine":
        q, r = _unit_rows(q), _unit_rows(r)
    if _resolve_backend(backend) == "faiss":
        idx = _candidates_faiss(q, r, k_search, metric)
    else:
        idx = _candidates_torch(q, r, k_search, chunk_size)
    dist, idx = _exact_sorted(q, r, idx, metric, chunk_size)
    return _drop_self(dist, idx, k) if exclude_self else (dist, idx)
