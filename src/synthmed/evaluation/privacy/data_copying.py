"""Meehan et al. 2020 three-sample data-copying test (C_T statistic).

Meehan, Chaudhuri, Dasgupta, "A Non-Parametric Test to Detect Data-Copying in Generative Models",
AISTATS 2020 (arXiv 2004.05675; reference code github.com/casey-meehan/data-copying).

Space is cut into cells by k-means on the training set. In each cell, the distances of generated
samples to their nearest training point (in that cell) are compared with those of held-out test
samples by a Mann-Whitney U test, z-scored under the null of equal distributions. C_T is the
average of the per-cell z-scores weighted by the cell's share of test samples. Generated samples
that sit closer to training points than real new data does (data copying) give C_T << 0; C_T ~ 0
is what an unbiased sampler gives; C_T >> 0 means generated samples are farther than real data
(underfitting). The authors reduce high-dimensional features (e.g. to 64 PCA components) first.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.stats import mannwhitneyu

from synthmed.evaluation.privacy.neighbours import ArrayLike, as_feature_matrix, nearest_neighbours

logger = logging.getLogger(__name__)


def _assign(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (M,) and squared distance to it (M,) for each row of ``x``."""
    d2 = (x**2).sum(1)[:, None] - 2.0 * x @ centroids.T + (centroids**2).sum(1)[None, :]
    labels = d2.argmin(axis=1)
    return labels, np.maximum(d2[np.arange(x.shape[0]), labels], 0.0)


def kmeans_centroids(
    x: ArrayLike, n_clusters: int, seed: int = 0, max_iter: int = 100
) -> np.ndarray:
    """Seeded k-means (k-means++ initialisation, then Lloyd iterations).

    Written here because scikit-learn is not a dependency and faiss is optional; a seeded NumPy
    version gives the same cells on every machine. An emptied cluster is re-seeded at the point
    farthest from its centroid, so every cell keeps at least one training point.

    Args:
        x: (N, D) points, N >= n_clusters.
        n_clusters: number of cells.
        seed: seed of the k-means++ draws.
        max_iter: Lloyd iterations at most (stops early when assignments no longer change).

    Returns:
        (n_clusters, D) float64 centroids.
    """
    x = as_feature_matrix(x, "x").astype(np.float64)
    if not 1 <= n_clusters <= x.shape[0]:
        raise ValueError(f"need 1 <= n_clusters <= {x.shape[0]} points, got {n_clusters}")
    rng = np.random.default_rng(seed)
    centroids = x[[rng.integers(x.shape[0])]]
    for _ in range(1, n_clusters):
        _, d2 = _assign(x, centroids)
        p = d2 / d2.sum() if d2.sum() > 0 else None  # all points equal: draw uniformly
        centroids = np.vstack([centroids, x[rng.choice(x.shape[0], p=p)]])
    labels = None
    for _ in range(max_iter):
        new_labels, d2 = _assign(x, centroids)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for c in range(n_clusters):
            members = labels == c
            if members.any():
                centroids[c] = x[members].mean(axis=0)
            else:
                far = int(d2.argmax())
                centroids[c], labels[far], d2[far] = x[far], c, 0.0
    return centroids


def mann_whitney_z(generated: np.ndarray, test: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of generated vs test distances (negative: generated are smaller).

    U counts pairs with generated > test (ties 1/2); z = (U + 0.5 - m n / 2) / sqrt(m n (m+n+1)/12)
    with the continuity correction of the authors' one-sided ("less") test and no tie correction
    of the variance, as in their code.
    """
    m, n = generated.size, test.size
    u = mannwhitneyu(generated, test, alternative="less").statistic
    return float((u + 0.5 - m * n / 2.0) / np.sqrt(m * n * (m + n + 1) / 12.0))


def data_copying_statistic(
    train_feats: ArrayLike,
    test_feats: ArrayLike,
    synthetic_feats: ArrayLike,
    n_cells: int = 10,
    seed: int = 0,
    min_generated: int = 20,
) -> dict[str, float | np.ndarray]:
    """Meehan et al. (2020) C_T data-copying statistic.

    Args:
        train_feats: (N, D) features of the generator's training set (defines the cells).
        test_feats: (H, D) held-out real features from the same population, not trained on.
        synthetic_feats: (M, D) generated features.
        n_cells: k-means cells fitted on the training set.
        seed: k-means seed.
        min_generated: cells with fewer generated samples are skipped (the set Pi_tau of the
            paper; the authors' experiments keep cells with more than 20 generated samples).
            Cells without test samples are skipped too (weight 0).

    Returns:
        ``c_t``: sum over kept cells of ``P_n(cell) * z(cell)`` / sum of ``P_n(cell)``; NaN if no
        cell is kept. Below about -3: data copying; ~0: fine; above about 3: underfitting.
        ``z_per_cell``: (n_cells,) Mann-Whitney z-scores, NaN for skipped cells.
        ``cell_weights``: (n_cells,) normalised test-sample weights used in ``c_t`` (0 if skipped).
        ``n_test_per_cell``, ``n_generated_per_cell``: (n_cells,) int64 counts.
    """
    train = as_feature_matrix(train_feats, "train_feats").astype(np.float64)
    test = as_feature_matrix(test_feats, "test_feats").astype(np.float64)
    gen = as_feature_matrix(synthetic_feats, "synthetic_feats").astype(np.float64)
    centroids = kmeans_centroids(train, n_cells, seed)
    cells = [_assign(x, centroids)[0] for x in (train, test, gen)]
    n_test = np.bincount(cells[1], minlength=n_cells)
    n_gen = np.bincount(cells[2], minlength=n_cells)
    z = np.full(n_cells, np.nan)
    for c in np.flatnonzero((n_gen >= max(min_generated, 1)) & (n_test > 0)):
        t_c = train[cells[0] == c]
        d_test = nearest_neighbours(test[cells[1] == c], t_c)[0][:, 0]
        d_gen = nearest_neighbours(gen[cells[2] == c], t_c)[0][:, 0]
        z[c] = mann_whitney_z(d_gen, d_test)
    kept = np.isfinite(z)
    weights = np.where(kept, n_test / test.shape[0], 0.0)
    if kept.any():
        weights /= weights.sum()
        c_t = float(np.sum(weights[kept] * z[kept]))
    else:
        logger.warning("no cell has %d generated and 1 test sample; C_T is NaN", min_generated)
        c_t = float("nan")
    return {
        "c_t": c_t,
        "z_per_cell": z,
        "cell_weights": weights,
        "n_test_per_cell": n_test.astype(np.int64),
        "n_generated_per_cell": n_gen.astype(np.int64),
    }
