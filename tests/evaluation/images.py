"""Small image sets with structure, for fidelity and privacy known-answer tests."""

from __future__ import annotations

import numpy as np


def blobs(n: int, seed: int, size: int = 16) -> np.ndarray:
    """(n, 1, size, size) float32 in [0, 1]: sums of 1-3 Gaussian blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(3, size - 3, 2)
            sigma, amp = rng.uniform(1.5, 3), rng.uniform(0.5, 1)
            out[i, 0] += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return np.clip(out, 0, 1)
