"""Known answers for bootstrap CIs, group summaries and paired Wilcoxon tests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthmed.evaluation.utility.stats import bootstrap_ci, paired_wilcoxon, summarize


def test_bootstrap_ci_of_a_constant_is_the_constant() -> None:
    assert bootstrap_ci([0.1] * 7) == (0.1, 0.1)
    assert bootstrap_ci([2.5]) == (2.5, 2.5)


def test_bootstrap_ci_contains_the_mean_and_ignores_nan() -> None:
    values = np.random.default_rng(3).normal(0.7, 0.1, 12)
    low, high = bootstrap_ci(list(values) + [math.nan])
    assert low < values.mean() < high
    assert high - low < 4 * values.std()
    assert bootstrap_ci(values, seed=1) != (low, high)  # seeded resampling, not a formula
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def _rows(protocol: str, values: list[float], size: int = 5) -> list[dict]:
    return [
        {"protocol": protocol, "size": size, "seed": s, "dice": v} for s, v in enumerate(values)
    ]


def test_summarize_groups_in_order_with_mean_std_and_n() -> None:
    rows = _rows("real", [1.0, 2.0, 3.0, math.nan]) + _rows("synthetic-only", [4.0])
    out = summarize(rows, "dice")
    assert [(r["protocol"], r["size"]) for r in out] == [("real", 5), ("synthetic-only", 5)]
    assert out[0]["mean"] == 2.0 and out[0]["std"] == 1.0 and out[0]["n"] == 3
    assert out[0]["ci_low"] < 2.0 < out[0]["ci_high"]
    assert out[1]["n"] == 1 and math.isnan(out[1]["std"]) and out[1]["ci_low"] == 4.0


def test_wilcoxon_detects_a_consistent_improvement() -> None:
    base = [0.50, 0.61, 0.55, 0.58, 0.49, 0.63, 0.52, 0.60]
    better = [b + 0.01 * (k + 1) for k, b in enumerate(base)]
    rows = _rows("real+classic-aug", base) + _rows("real+synthetic:1", better)
    (cmp,) = paired_wilcoxon(rows, "dice")["comparisons"]
    assert cmp["protocol"] == "real+synthetic:1" and cmp["size"] == 5
    assert cmp["n_pairs"] == 8 and not cmp["underpowered"]
    assert cmp["p_value"] == pytest.approx(2 / 2**8)  # exact two-sided: all 8 signs agree
    assert cmp["mean_diff"] == pytest.approx(0.045)


def test_wilcoxon_zero_and_mixed_differences_are_not_significant() -> None:
    base = [0.5, 0.6, 0.55, 0.58, 0.49, 0.63, 0.52, 0.60]
    mixed = [b + d for b, d in zip(base, [1, -2, 3, -4, 5, -6, 7, -8], strict=True)]
    rows = _rows("real+classic-aug", base) + _rows("real", base) + _rows("synthetic-only", mixed)
    same, noisy = paired_wilcoxon(rows, "dice")["comparisons"]
    assert same["p_value"] == 1.0 and same["mean_diff"] == 0.0
    assert noisy["p_value"] > 0.5


def test_wilcoxon_flags_few_pairs_and_missing_baseline() -> None:
    rows = _rows("real+classic-aug", [0.1, 0.2, 0.3, 0.4, 0.5]) + _rows("x", [1, 2, 3, 4, 5])
    (cmp,) = paired_wilcoxon(rows, "dice")["comparisons"]
    assert cmp["underpowered"] and cmp["p_value"] == pytest.approx(2 / 2**5)
    (lone,) = paired_wilcoxon(_rows("x", [1.0, 2.0]), "dice")["comparisons"]
    assert lone["n_pairs"] == 0 and math.isnan(lone["p_value"])
