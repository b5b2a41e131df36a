"""``synthmed evaluate --nproc 2`` (2 gloo ranks) writes the metrics.json of one process:
utility cells split over the ranks, feature extraction sharded, rank 0 alone writing; a run
without a synthetic folder is sampled first by the same ranks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from synthmed import api
from tests.evaluation.test_run import TINY_EVAL
from tests.torchrun import output, synthmed_cli
from tests.training.test_training import tiny_config


def _metrics(run: Path) -> dict:
    """metrics.json without what differs between two evaluations of one run: wall times and
    the synthetic folder's absolute path."""
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["provenance"].pop("evaluate_timing")
    metrics.pop("synthetic_dir")
    return metrics


def test_evaluate_nproc_2_writes_the_metrics_of_one_process(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = tmp_path / "base" / "run"
        api.train(tiny_config(2, **TINY_EVAL), base, quiet=True)
        api.sample(base, quiet=True, device="cpu")
    finally:
        torch.set_num_threads(threads)
    one, two = tmp_path / "one" / "run", tmp_path / "two" / "run"
    shutil.copytree(base, one)
    shutil.copytree(base, two, ignore=shutil.ignore_patterns("synthetic"))  # sampled first
    done = synthmed_cli("evaluate", str(one), "--device", "cpu", "--quiet")
    assert done.returncode == 0, output(done)
    done = synthmed_cli("evaluate", str(two), "--device", "cpu", "--quiet", "--nproc", "2")
    assert done.returncode == 0, output(done)
    assert done.stdout.count("metrics: ") == 1, output(done)  # rank 0 alone reports
    m1, m2 = _metrics(one), _metrics(two)
    assert m1["fidelity"] and m1["privacy"]  # every section ran
    assert "image_label_agreement" in m1["fidelity"]  # with rank 0's reference U-Net
    rows = m1["utility"]["segmentation"]["rows"]
    assert {r["protocol"] for r in rows} == {"real", "synthetic-only"} and len(rows) >= 2
    assert m2 == m1  # same numbers, bit for bit (JSON floats are exact round trips)
    assert (two / "synthetic" / "manifest.csv").read_text() == (
        one / "synthetic" / "manifest.csv"
    ).read_text()  # the 2 ranks' sampling made the 1-process dataset
    for name in ("closest_pairs.png", "fidelity_encoder.json"):  # written once, by rank 0
        assert (two / "evaluation" / name).is_file(), name
    assert not list(two.rglob("*.tmp*"))
