"""Shared builders for export/packaging tests: a tiny trained run and its synthetic set."""

from __future__ import annotations

from pathlib import Path

from synthmed import api
from tests.training.test_training import tiny_config


def tiny_run(root: Path, n: int = 3, seed: int = 0) -> Path:
    """Train 2 steps (16x16 patches, seconds on CPU) and sample ``n`` PNG pairs."""
    run = root / "run"
    api.train(tiny_config(2, **{"sample.batch_size": "2"}), run, quiet=True)
    api.sample(run, n=n, seed=seed, device="cpu", quiet=True)
    return run
