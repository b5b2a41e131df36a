"""Statistics of a reader study (visual Turing test): can experts tell real from synthetic?

Frid-Adar et al. 2018 ("GAN-based synthetic medical image augmentation for increased CNN
performance in liver lesion classification") showed radiologists real and synthetic lesion
ROIs one at a time; accuracy near 50% means the readers could not tell them apart. These are
pure functions on plain sequences (no I/O, no database): the server turns stored answers into
these inputs, and the unit tests check them against hand-computed values.

Undefined quantities (no answers, a kappa whose chance agreement is 1) are ``None``, never
NaN, so results stay valid JSON.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

Z95 = 1.959963984540054
"""Two-sided 95% quantile of the standard normal distribution."""


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a binomial proportion (better than Wald near 0 and 1 and for
    small n; Wilson 1927). None for n = 0."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _log_pmf(k: int, n: int, p: float) -> float:
    if p in (0.0, 1.0):
        return 0.0 if k == (n if p == 1.0 else 0) else -math.inf
    log_comb = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return log_comb + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_test(successes: int, n: int, p: float = 0.5) -> float | None:
    """Exact two-sided binomial test p-value: the probability, under ``p``, of an outcome no
    more likely than the one observed (the convention of R's binom.test and SciPy's
    binomtest). None for n = 0."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    observed = _log_pmf(successes, n, p)
    tolerance = 1e-7  # outcomes as likely as the observed one, up to rounding, count too
    total = sum(
        math.exp(lp) for k in range(n + 1) if (lp := _log_pmf(k, n, p)) <= observed + tolerance
    )
    return min(1.0, total)


def proportion(successes: int, n: int) -> dict[str, float | int | None]:
    """``successes / n`` with its Wilson 95% interval (None bounds for n = 0)."""
    ci = wilson_interval(successes, n)
    return {
        "n": n,
        "correct": successes,
        "value": successes / n if n else None,
        "ci95_low": ci[0] if ci else None,
        "ci95_high": ci[1] if ci else None,
    }


def real_vs_synthetic(
    truths: Sequence[str], answers: Sequence[str], positive: str = "synthetic"
) -> dict[str, object]:
    """Accuracy (Wilson 95% CI, two-sided binomial test against 50%), and sensitivity and
    specificity for recognising ``positive`` (``synthetic``) images.

    Args:
        truths: per answer, the image's true source (``real`` or ``synthetic``).
        answers: per answer, what the reader said, in the same order.
    """
    if len(truths) != len(answers):
        raise ValueError(f"{len(truths)} truths but {len(answers)} answers")
    n = len(truths)
    correct = sum(t == a for t, a in zip(truths, answers, strict=True))
    pos = [a for t, a in zip(truths, answers, strict=True) if t == positive]
    neg = [a for t, a in zip(truths, answers, strict=True) if t != positive]
    return {
        "accuracy": proportion(correct, n),
        "p_value_vs_chance": binomial_test(correct, n, 0.5),
        "sensitivity": proportion(sum(a == positive for a in pos), len(pos)),
        "specificity": proportion(sum(a != positive for a in neg), len(neg)),
    }


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two readers' answers on the same images (Cohen 1960): agreement
    beyond what their own answer rates give by chance. None when undefined (no images, or
    both readers always gave one and the same answer, so chance agreement is 1)."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} answers against {len(b)}")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of many readers (Fleiss 1971).

    Args:
        counts: one row per image, one column per category: how many readers put the image in
            that category. Every row must sum to the same number of readers (at least 2).

    Returns:
        kappa, or None when undefined (no images, or all answers in one category).
    """
    if not counts:
        return None
    raters = sum(counts[0])
    if raters < 2 or any(sum(row) != raters for row in counts):
        raise ValueError("every image needs the same number (at least 2) of readers")
    n_images = len(counts)
    per_image = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in counts]
    observed = sum(per_image) / n_images
    shares = [sum(col) / (n_images * raters) for col in zip(*counts, strict=True)]
    expected = sum(p * p for p in shares)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def category_counts(
    answers_per_image: Sequence[Sequence[str]], categories: Sequence[str]
) -> list[list[int]]:
    """Answers per image (one list of the readers' answers each) -> Fleiss' count table."""
    index = {c: i for i, c in enumerate(categories)}
    table = []
    for answers in answers_per_image:
        row = [0] * len(categories)
        for answer in answers:
            row[index[answer]] += 1
        table.append(row)
    return table
