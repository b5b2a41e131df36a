"""An evaluated tiny phantom run, shared by the report tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synthmed import api
from tests.evaluation.test_run import TINY_EVAL
from tests.training.test_training import tiny_config


@pytest.fixture(scope="session")
def evaluated_run(tmp_path_factory) -> Path:
    """Train 2 steps, sample 24, evaluate three protocols at sizes 1 and all with 2 seeds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("report") / "run"
    api.train(tiny_config(2, **TINY_EVAL), run, quiet=True)
    api.sample(run, quiet=True, device="cpu")
    api.evaluate(
        run,
        device="cpu",
        quiet=True,
        protocols=["real", "real+classic-aug", "synthetic-only"],
        sizes=[1, "all"],
        seeds=2,
    )
    torch.set_num_threads(threads)
    return run
