"""The two rules of the export gate, as pure functions: feature rows in, a verdict dict out.

* :func:`near_copy_rule`: how many synthetic rows are near-copies of a training row, and is
  that more than a generator that copies no more than real data would give?
* :func:`membership_rule`: can GAN-Leaks (Chen et al. 2020) tell training rows from held-out
  rows by their distance to the synthetic rows, beyond chance and beyond a set AUC?

Both are hypothesis tests rather than fixed cut-offs on the observed numbers, so that a small
dataset (16 samples, 12 held-out rows) is not refused on noise. File handling and the refusal
message live in :mod:`synthmed.evaluation.gate`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from synthmed.evaluation.privacy.membership import (
    distance_membership_scores,
    membership_attack_metrics,
)
from synthmed.evaluation.privacy.memorization import (
    calibrate_copy_threshold,
    flag_near_copies,
    held_out_flag_rate,
    max_accepted_near_copies,
    near_copy_p_value,
)
from synthmed.evaluation.privacy.neighbours import Metric, nearest_neighbours


def distinct_rows(x: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of each distinct row of ``x`` (N, ...).

    Patches cut from an image no larger than the patch are the same row several times;
    counted once each, they do not pretend to more evidence than the data hold.
    """
    flat = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1))
    _, first = np.unique(flat, axis=0, return_index=True)
    return np.sort(first)


def near_copy_rule(
    synthetic: np.ndarray,
    train: np.ndarray,
    holdout: np.ndarray,
    n_holdout: int,
    quantile: float,
    alpha: float,
    max_rate: float | None = None,
    metric: Metric = "cosine",
) -> tuple[dict[str, Any], np.ndarray]:
    """Near-copy flags and the binomial verdict on their count.

    Args:
        synthetic, train, holdout: (M, D), (N, D), (H, D) feature rows (standardised pixels
            with ``cosine`` = 1 - NCC, as :func:`synthmed.evaluation.privacy.audit.pixel_space`).
        n_holdout: distinct held-out images behind ``holdout`` (sets the held-out level).
        quantile: share of held-out rows below the copy threshold (its calibration).
        alpha: a count whose one-sided binomial p-value is below this is refused.
        max_rate: the true near-copy rate accepted; None = the held-out level
            (:func:`held_out_flag_rate`).

    Returns:
        (verdict, mask): ``passed``, ``n``, ``n_flagged``, ``rate``, ``limit_count``,
        ``limit_rate``, ``held_out_level``, ``null_rate`` and ``null_source``, ``p_value``,
        ``alpha``, ``threshold`` (1 - NCC), ``quantile``; mask (M,) True = near-copy.
    """
    threshold = calibrate_copy_threshold(train, holdout, quantile, metric)
    d, _ = nearest_neighbours(synthetic, train, 1, metric)
    mask = flag_near_copies(d[:, 0], threshold)
    level = held_out_flag_rate(n_holdout, quantile)
    null = level if max_rate is None else float(max_rate)
    n, flagged = int(mask.size), int(mask.sum())
    allowed = max_accepted_near_copies(n, null, alpha)
    verdict = {
        "passed": flagged <= allowed,
        "n": n,
        "n_flagged": flagged,
        "rate": flagged / n,
        "limit_count": allowed,
        "limit_rate": allowed / n,
        "held_out_level": level,
        "n_holdout_distinct": int(n_holdout),
        "null_rate": null,
        "null_source": "held-out level" if max_rate is None else "sample.gate.max_near_copy_rate",
        "p_value": near_copy_p_value(flagged, n, null),
        "alpha": alpha,
        "threshold": float(threshold),
        "quantile": quantile,
    }
    return verdict, mask


def membership_rule(
    synthetic: np.ndarray,
    members: np.ndarray,
    nonmembers: np.ndarray,
    max_auc: float,
    alpha: float,
    metric: Metric = "cosine",
) -> dict[str, Any]:
    """GAN-Leaks full black-box attack (score = -distance to the nearest synthetic row) with a
    one-sided Mann-Whitney test of "members score higher".

    Refused only when the AUC is above ``max_auc`` AND the test says p < ``alpha``: with
    tens of rows an AUC of 0.7 is often chance, and the limit alone would refuse on it.

    Args:
        synthetic: (M, D) rows of the samples that would be written (M >= 1).
        members: (A, D) training rows; nonmembers: (B, D) held-out rows.

    Returns:
        ``passed``, ``auc``, ``p_value``, ``max_auc``, ``alpha``, ``tpr_at_10pct_fpr``,
        ``n_synthetic``, ``n_members``, ``n_nonmembers``.
    """
    s_mem = distance_membership_scores(members, synthetic, metric=metric)
    s_non = distance_membership_scores(nonmembers, synthetic, metric=metric)
    attack = membership_attack_metrics(s_mem, s_non)
    p = float(mannwhitneyu(s_mem, s_non, alternative="greater").pvalue)
    auc = float(attack["auc"])
    return {
        "passed": not (auc > max_auc and p < alpha),
        "auc": auc,
        "p_value": p,
        "max_auc": max_auc,
        "alpha": alpha,
        "tpr_at_10pct_fpr": float(attack["tpr_at_10pct_fpr"]),
        "n_synthetic": int(len(synthetic)),
        "n_members": int(attack["n_members"]),
        "n_nonmembers": int(attack["n_nonmembers"]),
    }


def seeded_subset(indices: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """At most ``n`` of ``indices``, drawn without replacement by a fixed seed, sorted."""
    if len(indices) <= n:
        return np.asarray(indices)
    pick = np.random.default_rng(seed).choice(len(indices), size=n, replace=False)
    return np.sort(np.asarray(indices)[pick])
