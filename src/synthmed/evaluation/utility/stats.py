"""Summaries of sweep rows: mean, std, bootstrap CI, and paired Wilcoxon tests.

Utility differences between arms are often a few Dice points with few seeds, so every mean
comes with its spread and a 95% percentile-bootstrap CI, and arms are compared with the
baseline by a paired test over seeds (same data subset and initialisation per seed). The
smallest two-sided exact Wilcoxon p-value with n pairs is 2 / 2**n, so fewer than 6 pairs can
never reach p < 0.05: such comparisons are flagged ``underpowered``.
Pure functions: rows (dicts) in, dicts out; non-finite metric values are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy.stats import wilcoxon

MIN_PAIRS = 6


def _finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (finite values only).

    Returns:
        ``(low, high)``; ``(v, v)`` for one value or identical values, NaNs for none.
    """
    arr = _finite(values)
    if len(arr) == 0:
        return math.nan, math.nan
    if np.all(arr == arr[0]):  # every resample is the same set of numbers
        return float(arr[0]), float(arr[0])
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), size=(n_boot, len(arr)))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _groups(rows: Sequence[dict], by: Sequence[str]) -> dict[tuple, list[dict]]:
    """Rows grouped by the values of ``by``, groups in order of first appearance."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    return groups


def summarize(
    rows: Sequence[dict], metric: str, by: Sequence[str] = ("protocol", "size")
) -> list[dict]:
    """Per group: ``mean``, ``std`` (sample, ddof=1; NaN for n < 2), ``n``, 95% bootstrap CI.

    Rows without the metric, or with a non-finite value, do not count towards ``n``.
    """
    out = []
    for key, group in _groups(rows, by).items():
        arr = _finite(r[metric] for r in group if metric in r)
        low, high = bootstrap_ci(arr)
        out.append(
            {
                **dict(zip(by, key, strict=True)),
                "metric": metric,
                "mean": float(arr.mean()) if len(arr) else math.nan,
                "std": float(arr.std(ddof=1)) if len(arr) > 1 else math.nan,
                "n": len(arr),
                "ci_low": low,
                "ci_high": high,
            }
        )
    return out


def _test_pairs(diffs: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank (statistic, p); all-zero differences give p = 1."""
    if len(diffs) == 0:
        return math.nan, math.nan
    if np.all(diffs == 0):
        return 0.0, 1.0
    result = wilcoxon(diffs, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def _compare(base: list[dict], other: list[dict], metric: str, pair_on: str) -> dict:
    """Paired differences ``other - base`` over the ``pair_on`` values both have."""
    base_by = {r[pair_on]: float(r.get(metric, math.nan)) for r in base}
    pairs = [
        (float(r.get(metric, math.nan)), base_by[r[pair_on]])
        for r in other
        if r[pair_on] in base_by
    ]
    diffs = np.array([a - b for a, b in pairs if math.isfinite(a) and math.isfinite(b)])
    statistic, p_value = _test_pairs(diffs)
    return {
        "n_pairs": len(diffs),
        "mean_diff": float(diffs.mean()) if len(diffs) else math.nan,
        "median_diff": float(np.median(diffs)) if len(diffs) else math.nan,
        "statistic": statistic,
        "p_value": p_value,
        "underpowered": len(diffs) < MIN_PAIRS,
    }


def paired_wilcoxon(
    rows: Sequence[dict],
    metric: str,
    baseline: str = "real+classic-aug",
    by: Sequence[str] = ("size",),
    pair_on: str = "seed",
) -> dict:
    """Each protocol against ``baseline`` within each ``by`` group, paired on ``pair_on``.

    Returns:
        ``{"metric", "baseline", "alternative": "two-sided", "comparisons": [...]}``, one
        comparison per (group, protocol): the group keys, ``protocol``, ``n_pairs``,
        ``mean_diff`` / ``median_diff`` (protocol minus baseline), ``statistic``,
        ``p_value`` (scipy's exact value for small n; 1.0 when all differences are zero)
        and ``underpowered`` (fewer than 6 pairs).
    """
    comparisons = []
    for key, group in _groups(rows, by).items():
        per_protocol = _groups(group, ("protocol",))
        base = per_protocol.get((baseline,), [])
        for (protocol,), other in per_protocol.items():
            if protocol == baseline:
                continue
            comparisons.append(
                {
                    **dict(zip(by, key, strict=True)),
                    "protocol": protocol,
                    **_compare(base, other, metric, pair_on),
                }
            )
    return {
        "metric": metric,
        "baseline": baseline,
        "alternative": "two-sided",
        "comparisons": comparisons,
    }
