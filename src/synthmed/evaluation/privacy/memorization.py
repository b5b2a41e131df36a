"""Memorisation audit: is a synthetic image closer to a training image than new data gets?

A generator that generalises produces images that are no closer to its training images than an
independent real image is. So each synthetic image's distance to its nearest REAL TRAINING image is
compared with (a) its distance to the nearest REAL HELD-OUT image and (b) the distances at which
held-out images naturally sit from the training set. Works on any features: embeddings, or pixels
via :func:`synthmed.evaluation.privacy.similarity.standardize_images` (then L2 ranks like NCC).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binom

from synthmed.evaluation.privacy.neighbours import (
    ArrayLike,
    Backend,
    Metric,
    nearest_neighbours,
)


def nearest_real_distances(
    synthetic_feats: ArrayLike,
    train_feats: ArrayLike,
    holdout_feats: ArrayLike,
    metric: Metric = "l2",
    backend: Backend = "auto",
) -> dict[str, np.ndarray]:
    """Per synthetic image: distance to the nearest training and nearest held-out real image.

    Args:
        synthetic_feats: (M, D) synthetic features.
        train_feats: (N, D) features of the generator's training images.
        holdout_feats: (H, D) features of real images the generator never saw.
        metric: "l2" or "cosine" (see :func:`nearest_neighbours`).
        backend: nearest-neighbour backend.

    Returns:
        Dict of (M,) arrays: ``d_train``, ``idx_train`` (int64 row in train), ``d_holdout``,
        ``idx_holdout`` and ``ratio = d_train / d_holdout``. A small ratio means closer to training
        than to unseen data (suspicious); ~1 or above is what a fresh sample gives when train and
        held-out sets are of similar size. ``ratio`` is inf when only ``d_holdout`` is 0 and 1 when
        both are 0.
    """
    d_tr, i_tr = nearest_neighbours(synthetic_feats, train_feats, 1, metric, backend)
    d_ho, i_ho = nearest_neighbours(synthetic_feats, holdout_feats, 1, metric, backend)
    d_tr, d_ho = d_tr[:, 0], d_ho[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d_ho > 0, d_tr / d_ho, np.where(d_tr > 0, np.inf, 1.0))
    return {
        "d_train": d_tr,
        "idx_train": i_tr[:, 0],
        "d_holdout": d_ho,
        "idx_holdout": i_ho[:, 0],
        "ratio": ratio,
    }


def calibrate_copy_threshold(
    train_feats: ArrayLike,
    holdout_feats: ArrayLike,
    quantile: float = 0.01,
    metric: Metric = "l2",
    backend: Backend = "auto",
) -> float:
    """Distance below which a synthetic image counts as a near-copy of a training image.

    The distances of held-out real images to their nearest training image show how close an
    independent new image from the same population naturally gets. The threshold is their
    ``quantile`` (linear interpolation, ``np.quantile``): a synthetic image that generalises like
    real data is flagged with probability ~``quantile``, a copy (distance ~0) always. Needs
    enough held-out images for the quantile to mean something (1 % of 200 is the 2nd-3rd closest).

    Args:
        train_feats: (N, D) training features.
        holdout_feats: (H, D) held-out real features, disjoint from training (patient-wise).
        quantile: in (0, 1]; the false-flag rate accepted for genuinely new images.
        metric: "l2" or "cosine".
        backend: nearest-neighbour backend.

    Returns:
        The threshold distance (float); use with :func:`flag_near_copies`.
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    d, _ = nearest_neighbours(holdout_feats, train_feats, 1, metric, backend)
    return float(np.quantile(d[:, 0], quantile))


def flag_near_copies(d_train: ArrayLike, threshold: float) -> np.ndarray:
    """Boolean (M,) mask: ``d_train <= threshold`` (a threshold of 0 still flags exact copies)."""
    return np.asarray(d_train, dtype=np.float64) <= threshold


def held_out_flag_rate(n_holdout: int, quantile: float) -> float:
    """Chance that a NEW real image is flagged by :func:`calibrate_copy_threshold` calibrated on
    ``n_holdout`` held-out images: the near-copy rate of a generator that is as far from its
    training rows as real images of other patients are.

    The threshold sits at position ``h = quantile * (H - 1)`` of the sorted held-out distances
    (``np.quantile``, linear); a new exchangeable distance falls below the j-th of H order
    statistics with probability j / (H + 1), so at the interpolated position the rate is
    ``(h + 1) / (H + 1)``. That is ``quantile`` for large H, but 0.085 for H = 12 at
    quantile 0.01: with few held-out images even new real images are flagged often.
    """
    if n_holdout < 1:
        raise ValueError("the held-out level needs at least one held-out image")
    return float((quantile * (n_holdout - 1) + 1) / (n_holdout + 1))


def near_copy_p_value(n_flagged: int, n: int, rate: float) -> float:
    """P(X >= n_flagged) for X ~ Binomial(n, rate): how surprising this many near-copies
    would be from a generator whose true near-copy rate is ``rate`` (one-sided)."""
    if n_flagged <= 0:
        return 1.0
    return float(binom.sf(n_flagged - 1, n, rate))


def max_accepted_near_copies(n: int, rate: float, alpha: float) -> int:
    """The largest near-copy count among ``n`` samples whose :func:`near_copy_p_value` is
    still >= ``alpha``: more than this refutes "true rate <= ``rate``" at level ``alpha``."""
    counts = np.arange(1, n + 1)
    surprising = binom.sf(counts - 1, n, rate) < alpha  # monotone: False ... False True ...
    return int(n if not surprising.any() else counts[np.argmax(surprising)] - 1)


def _py(value: Any) -> Any:
    # numpy scalars -> Python scalars, so rows serialise to JSON as-is.
    return value.item() if isinstance(value, np.generic) else value


def per_patient_reproduction(
    idx_train: ArrayLike,
    flags: ArrayLike,
    train_patient_ids: Sequence[Any] | np.ndarray,
    d_train: ArrayLike | None = None,
) -> list[dict[str, Any]]:
    """Which training patients do the synthetic images reproduce?

    Args:
        idx_train: (M,) index of each synthetic image's nearest training image.
        flags: (M,) bool, near-copy flags (e.g. from :func:`flag_near_copies`).
        train_patient_ids: (N,) patient id of each training image.
        d_train: optional (M,) distance to that nearest training image.

    Returns:
        One dict per training patient, most reproduced first (sorted by ``n_flagged`` descending,
        then ``min_distance`` ascending, then ``n_synthetic_nearest`` descending): ``patient_id``,
        ``n_train_images``, ``n_synthetic_nearest`` (synthetic images whose nearest training image
        is this patient's), ``n_flagged`` and ``min_distance`` (None without ``d_train`` or when no
        synthetic image is nearest to this patient).
    """
    idx = np.asarray(idx_train, dtype=np.int64)
    flags = np.asarray(flags, dtype=bool)
    ids = np.asarray(train_patient_ids)
    if idx.shape != flags.shape or (d_train is not None and np.shape(d_train) != idx.shape):
        raise ValueError("idx_train, flags and d_train must have the same shape (M,)")
    patients, inverse = np.unique(ids, return_inverse=True)
    owner = inverse.reshape(-1)[idx]  # patient index of each synthetic image's neighbour
    n_pat = len(patients)
    n_images = np.bincount(inverse.reshape(-1), minlength=n_pat)
    n_near = np.bincount(owner, minlength=n_pat)
    n_flag = np.bincount(owner, weights=flags, minlength=n_pat).astype(np.int64)
    min_d = np.full(n_pat, np.inf)
    if d_train is not None:
        np.minimum.at(min_d, owner, np.asarray(d_train, dtype=np.float64))
    order = np.lexsort((-n_near, min_d, -n_flag))
    return [
        {
            "patient_id": _py(patients[p]),
            "n_train_images": int(n_images[p]),
            "n_synthetic_nearest": int(n_near[p]),
            "n_flagged": int(n_flag[p]),
            "min_distance": float(min_d[p]) if np.isfinite(min_d[p]) else None,
        }
        for p in order
    ]
