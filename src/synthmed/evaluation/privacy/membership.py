"""Membership inference against a generator: can an attacker tell training images from others?

An attack gives each candidate real image a score, higher meaning "more likely a training member".
Black-box scores come from distances to synthetic samples (GAN-Leaks, Chen et al. 2020); white-box
scores from the trained critic (LOGAN, Hayes et al. 2019). :func:`membership_attack_metrics` turns
member and non-member scores into ROC AUC and TPR at low FPR (the regime that matters for privacy,
Carlini et al. 2022, "Membership inference attacks from first principles").
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

from synthmed.evaluation.privacy.neighbours import (
    ArrayLike,
    Backend,
    Metric,
    nearest_neighbours,
)


def distance_membership_scores(
    candidates: ArrayLike,
    synthetic: ArrayLike,
    k: int = 1,
    calibration_feats: ArrayLike | None = None,
    metric: Metric = "l2",
    backend: Backend = "auto",
) -> np.ndarray:
    """GAN-Leaks style black-box membership scores from distances to synthetic samples.

    A generator that memorised a training image produces samples near it, so a candidate close to
    the synthetic set is more likely a member: ``score = -d_syn``, the mean distance to its k
    nearest synthetic samples (k=1 is the full black-box attack of Chen et al. 2020, "GAN-Leaks:
    A taxonomy of membership inference attacks against generative models", CCS). Candidates in
    dense regions are close to everything; the calibrated variant removes that by subtracting the
    distance to a reference set of real NON-members, ``score = -(d_syn - d_ref)`` (in the spirit
    of GAN-Leaks' calibration and DOMIAS, van Breugel et al. 2023, with a real reference set in
    place of a reference generator).

    Args:
        candidates: (K, D) real images' features to score.
        synthetic: (M, D) generated features.
        k: synthetic neighbours averaged per candidate.
        calibration_feats: optional (R, D) real features known NOT to be training members, disjoint
            from ``candidates`` (a candidate inside it would get ``d_ref = 0``).
        metric: "l2" or "cosine".
        backend: nearest-neighbour backend.

    Returns:
        (K,) float64 scores, higher = more likely a member.
    """
    d_syn, _ = nearest_neighbours(candidates, synthetic, k, metric, backend)
    score = -d_syn.mean(axis=1)
    if calibration_feats is not None:
        d_ref, _ = nearest_neighbours(candidates, calibration_feats, k, metric, backend)
        score += d_ref.mean(axis=1)
    return score


def discriminator_membership_scores(critic_scores: ArrayLike) -> np.ndarray:
    """LOGAN white-box scores (Hayes et al. 2019, PoPETs): the critic's output on each candidate.

    An overfitted discriminator rates its training images as "more real", so the raw critic score
    (logit or Wasserstein critic value, not a probability) is already the membership score.

    Args:
        critic_scores: (K,) critic outputs on candidate real images.

    Returns:
        (K,) float64 copy, higher = more likely a member.
    """
    return _as_scores(critic_scores, "critic_scores")


def _as_scores(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    s = np.asarray(x, dtype=np.float64).reshape(-1)
    if s.size == 0 or not np.isfinite(s).all():
        raise ValueError(f"{name} must be a non-empty array of finite scores")
    return s


def _roc_counts(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positive counts for "member if score >= t" at every distinct score t.

    Written with searchsorted because scikit-learn is not a dependency. The first point is the
    empty prediction (t = +inf): 0 true and 0 false positives.
    """
    thresholds = np.unique(np.concatenate([members, nonmembers]))[::-1]
    tp = members.size - np.searchsorted(np.sort(members), thresholds, side="left")
    fp = nonmembers.size - np.searchsorted(np.sort(nonmembers), thresholds, side="left")
    return np.concatenate([[0], tp]), np.concatenate([[0], fp])


def tpr_at_fpr(member_scores: ArrayLike, nonmember_scores: ArrayLike, target_fpr: float) -> float:
    """Highest TPR among thresholds whose FPR is at most ``target_fpr`` (conservative).

    No interpolation between ROC points: with n non-members only FPRs in steps of 1/n exist, and
    at most ``floor(target_fpr * n)`` false positives are allowed. When that is 0 (e.g. 1 % FPR
    with fewer than 100 non-members) the threshold must lie above every non-member score, and
    tied member scores at that threshold do not count.

    Args:
        member_scores: (A,) attack scores of training members.
        nonmember_scores: (B,) attack scores of non-members.
        target_fpr: in [0, 1].

    Returns:
        TPR in [0, 1].
    """
    members = _as_scores(member_scores, "member_scores")
    nonmembers = _as_scores(nonmember_scores, "nonmember_scores")
    tp, fp = _roc_counts(members, nonmembers)
    allowed = np.floor(target_fpr * nonmembers.size + 1e-9)
    return float(tp[fp <= allowed].max() / members.size)


def membership_attack_metrics(
    member_scores: ArrayLike, nonmember_scores: ArrayLike
) -> dict[str, float | int]:
    """ROC summary of a membership-inference attack (higher score = predicted member).

    Args:
        member_scores: (A,) scores of candidates that were in the training set.
        nonmember_scores: (B,) scores of real candidates that were not.

    Returns:
        ``auc``: ROC AUC = P(member score > non-member score) + 0.5 P(tie), via average ranks
        (Mann-Whitney U); 0.5 = attack no better than chance, 1 = perfect, 0 = reversed.
        ``tpr_at_1pct_fpr`` / ``tpr_at_10pct_fpr``: see :func:`tpr_at_fpr`.
        ``balanced_accuracy_best``: max over thresholds of (TPR + TNR) / 2, chosen on the same
        scores, so optimistic for the attacker (>= 0.5 always).
        ``n_members`` / ``n_nonmembers``: sample sizes, to judge the resolution of the above.
    """
    members = _as_scores(member_scores, "member_scores")
    nonmembers = _as_scores(nonmember_scores, "nonmember_scores")
    # Rank-sum AUC written out because scikit-learn is not a dependency; rankdata averages ties.
    ranks = rankdata(np.concatenate([members, nonmembers]))
    n_m, n_n = members.size, nonmembers.size
    auc = (ranks[:n_m].sum() - n_m * (n_m + 1) / 2) / (n_m * n_n)
    tp, fp = _roc_counts(members, nonmembers)
    balanced = np.max((tp / n_m + 1.0 - fp / n_n) / 2.0)
    return {
        "auc": float(auc),
        "tpr_at_1pct_fpr": tpr_at_fpr(members, nonmembers, 0.01),
        "tpr_at_10pct_fpr": tpr_at_fpr(members, nonmembers, 0.10),
        "balanced_accuracy_best": float(balanced),
        "n_members": n_m,
        "n_nonmembers": n_n,
    }
