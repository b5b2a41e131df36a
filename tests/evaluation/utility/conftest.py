"""Tiny in-memory data sets for the utility harness: bright-vs-dark squares and disc masks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from synthmed.evaluation.utility.sets import TrainingSet


def make_squares(n: int, seed: int, size: int = 16, per_patient: int = 2) -> TrainingSet:
    """Class 1: a bright 8x8 square on a dark noisy background; class 0: background only."""
    gen = np.random.default_rng(seed)
    classes = np.arange(n) % 2
    images = gen.uniform(0.0, 0.2, (n, 1, size, size)).astype(np.float32)
    for i in np.flatnonzero(classes):
        r, c = gen.integers(0, size - 8, 2)
        images[i, 0, r : r + 8, c : c + 8] += 0.7
    ids = [f"s{seed}p{i // per_patient}" for i in range(n)]
    return TrainingSet(images=images, classes=classes, patient_ids=ids)


def make_discs(n: int, seed: int, size: int = 16, per_patient: int = 1) -> TrainingSet:
    """Image = noisy disc of intensity 0.8 on 0.1; label = the disc (1) on background (0)."""
    gen = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((n, size, size), np.int64)
    for i in range(n):
        cy, cx = gen.integers(size // 4, 3 * size // 4, 2)
        labels[i] = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size / 5) ** 2
    noise = gen.normal(0.0, 0.03, (n, 1, size, size))
    images = (0.1 + 0.7 * labels[:, None] + noise).clip(0, 1).astype(np.float32)
    ids = [f"s{seed}p{i // per_patient}" for i in range(n)]
    return TrainingSet(images=images, labels=labels, patient_ids=ids)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: thread hand-off costs more than it saves (10-70x on a shared 2-core box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def squares() -> Callable[..., TrainingSet]:
    return make_squares


@pytest.fixture
def discs() -> Callable[..., TrainingSet]:
    return make_discs
