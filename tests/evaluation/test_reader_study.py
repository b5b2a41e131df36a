"""Reader-study statistics against hand-computed values (Wikipedia's worked examples)."""

from __future__ import annotations

import pytest

from synthmed.evaluation.reader_study import (
    binomial_test,
    category_counts,
    cohen_kappa,
    fleiss_kappa,
    real_vs_synthetic,
    wilson_interval,
)

FLEISS_WIKIPEDIA = [  # 10 subjects, 14 raters, 5 categories: kappa = 0.210
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_wikipedia_example():
    # P-bar = 0.37802, P-bar_e = 0.21277 -> (0.37802 - 0.21277) / (1 - 0.21277) = 0.20993
    assert fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(0.20993, abs=1e-5)


def test_fleiss_kappa_perfect_and_undefined():
    assert fleiss_kappa([[3, 0], [0, 3]]) == pytest.approx(1.0)
    assert fleiss_kappa([[3, 0], [3, 0]]) is None  # one category only: chance agreement 1
    assert fleiss_kappa([]) is None
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[2, 0], [1, 0]])


def test_cohen_kappa_two_by_two_table():
    # Wikipedia: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 of 50.
    # p_o = 35/50 = 0.7; p_e = (25/50)(30/50) + (25/50)(20/50) = 0.5; kappa = 0.4
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["x", "x"], ["x", "x"]) is None
    assert cohen_kappa([], []) is None


def test_two_reader_fleiss_is_close_to_cohen_with_equal_marginals():
    a = ["real", "real", "synthetic", "synthetic"]
    b = ["real", "synthetic", "real", "synthetic"]
    table = category_counts([list(p) for p in zip(a, b, strict=True)], ["real", "synthetic"])
    assert table == [[2, 0], [1, 1], [1, 1], [0, 2]]
    assert fleiss_kappa(table) == pytest.approx(0.0)
    assert cohen_kappa(a, b) == pytest.approx(0.0)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert (lo, hi) == (pytest.approx(0.40383, abs=1e-5), pytest.approx(0.59617, abs=1e-5))
    lo, hi = wilson_interval(0, 10)  # upper = z^2/n / (1 + z^2/n) = 0.27753
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.27753, abs=1e-5)
    assert wilson_interval(0, 0) is None


def test_binomial_test_hand_computed():
    # P(X <= 2 | n=10, p=1/2) = (1 + 10 + 45) / 1024; two-sided doubles it
    assert binomial_test(2, 10) == pytest.approx(2 * 56 / 1024)
    assert binomial_test(5, 10) == pytest.approx(1.0)
    assert binomial_test(10, 10) == pytest.approx(2 / 1024)
    assert binomial_test(0, 0) is None


def test_binomial_test_matches_scipy_for_other_p():
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n, p in [(3, 20, 0.3), (17, 40, 0.5), (900, 1700, 0.5)]:
        expected = scipy_stats.binomtest(k, n, p).pvalue
        assert binomial_test(k, n, p) == pytest.approx(expected, rel=1e-9)


def test_real_vs_synthetic_sensitivity_specificity():
    truths = ["synthetic", "synthetic", "synthetic", "real", "real", "real"]
    answers = ["synthetic", "synthetic", "real", "real", "synthetic", "synthetic"]
    out = real_vs_synthetic(truths, answers)
    assert out["accuracy"]["correct"] == 3 and out["accuracy"]["value"] == 0.5
    assert out["sensitivity"]["value"] == pytest.approx(2 / 3)  # synthetic called synthetic
    assert out["specificity"]["value"] == pytest.approx(1 / 3)  # real called real
    assert out["p_value_vs_chance"] == pytest.approx(1.0)
    empty = real_vs_synthetic([], [])
    assert empty["accuracy"]["value"] is None and empty["p_value_vs_chance"] is None
