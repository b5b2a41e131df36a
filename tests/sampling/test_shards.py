"""Sampling in shards: 2 torchrun ranks write exactly the dataset 1 process writes, and an
interrupted request makes only its missing shards when run again (in 1 process or in 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synthmed import api
from synthmed.sampling import export
from synthmed.sampling.shards import partial_dir, rank_block, shard_bounds
from tests.torchrun import output, synthmed_cli, two_node_job
from tests.training.test_training import tiny_config

N, SHARD = 7, 2  # 4 shards: 2, 2, 2, 1 samples


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shards") / "run"
    api.train(tiny_config(2, **{"sample.batch_size": str(SHARD)}), folder, quiet=True)
    return folder


@pytest.fixture(scope="module")
def reference(run: Path, tmp_path_factory) -> Path:
    """The dataset one process writes (one thread, as each torchrun worker here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("reference") / "syn"
        return api.sample(run, n=N, formats=["png", "nifti"], out=out, device="cpu", quiet=True)
    finally:
        torch.set_num_threads(threads)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _interrupted(run: Path, out: Path, monkeypatch, after_shards: int) -> None:
    """A sampling run that fails while making shard ``after_shards`` (as a killed job would)."""
    real, calls = export.generate_pairs, []

    def failing(*args, **kwargs):
        if len(calls) == after_shards:
            raise RuntimeError("interrupted")
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "generate_pairs", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        api.sample(run, n=N, formats=["png", "nifti"], out=out, device="cpu", quiet=True)
    monkeypatch.setattr(export, "generate_pairs", real)
    assert not out.exists() and partial_dir(out).is_dir()


def test_rank_blocks_are_contiguous_and_cover_the_shards():
    assert shard_bounds(7, 2) == [(0, 2), (2, 4), (4, 6), (6, 7)]
    todo = [1, 2, 4, 5, 6]
    blocks = [rank_block(todo, r, 3) for r in range(3)]
    assert blocks == [[1, 2], [4, 5], [6]]
    assert rank_block([0], 1, 2) == []  # more ranks than shards: the rest wait


def test_two_ranks_write_the_one_process_dataset(run, reference, tmp_path):
    out = tmp_path / "syn"
    done = synthmed_cli(
        "sample", str(run), "--n", str(N), "--format", "png", "--format", "nifti",
        "--out", str(out), "--device", "cpu", "--nproc", "2", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, output(done)
    assert done.stdout.count("synthetic dataset:") == 1  # rank 0 alone reports
    files = _files(out)
    assert files.keys() == _files(reference).keys()  # no shard or request files left
    assert files == _files(reference)  # byte for byte, manifest and dataset.json included
    assert not partial_dir(out).exists()


def test_interrupted_request_makes_only_missing_shards(run, reference, tmp_path, monkeypatch):
    out = tmp_path / "syn"
    _interrupted(run, out, monkeypatch, after_shards=2)
    real, made = export.generate_pairs, []
    monkeypatch.setattr(
        export, "generate_pairs", lambda *a, **k: made.append(list(a[1])) or real(*a, **k)
    )
    api.sample(run, n=N, formats=["png", "nifti"], out=out, device="cpu", quiet=True)
    assert made == [[4, 5], [6]]  # shards 0 and 1 were kept
    assert _files(out) == _files(reference)


def test_other_request_discards_the_partial_folder(run, tmp_path, monkeypatch):
    out = tmp_path / "syn"
    _interrupted(run, out, monkeypatch, after_shards=1)
    real, made = export.generate_pairs, []
    monkeypatch.setattr(
        export, "generate_pairs", lambda *a, **k: made.append(list(a[1])) or real(*a, **k)
    )
    api.sample(run, n=N, seed=100, formats=["png", "nifti"], out=out, device="cpu", quiet=True)
    assert made[0] == [100, 101] and len(made) == 4  # every shard made again, for seed 100


@pytest.mark.slow  # a second torchrun job (~15 s here); the 1-process refill above is fast
def test_two_ranks_fill_the_shards_one_process_left(run, reference, tmp_path, monkeypatch):
    out = tmp_path / "syn"
    _interrupted(run, out, monkeypatch, after_shards=1)
    kept = partial_dir(out) / "images" / "sample_000000_seed00000000.png"
    stamp = kept.stat().st_mtime_ns, kept.stat().st_ino
    done = synthmed_cli(
        "sample", str(run), "--n", str(N), "--format", "png", "--format", "nifti",
        "--out", str(out), "--device", "cpu", "--nproc", "2", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, output(done)
    moved = out / "images" / kept.name
    assert (moved.stat().st_mtime_ns, moved.stat().st_ino) == stamp  # shard 0 not rewritten
    assert _files(out) == _files(reference)


@pytest.mark.slow  # two torchrun agents (~20 s here)
def test_two_node_rendezvous_writes_the_one_process_dataset(run, reference, tmp_path):
    out = tmp_path / "syn"
    jobs = two_node_job(
        "sample", str(run), "--n", str(N), "--format", "png", "--format", "nifti",
        "--out", str(out), "--device", "cpu", "--quiet",
    )  # fmt: skip
    for done in jobs:
        assert done.returncode == 0, output(done)
    assert _files(out) == _files(reference)
