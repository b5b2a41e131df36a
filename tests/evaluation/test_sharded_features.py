"""Feature extraction split over torchrun ranks gives the features of one process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from synthmed import distributed
from synthmed.evaluation.fidelity import PixelExtractor
from synthmed.evaluation.fidelity.extractors import batched_apply
from synthmed.evaluation.fidelity.sharded import ShardedExtractor, sharded, sharded_embed


class ConvFeatures:
    """A seeded conv net as a feature extractor (batched like the encoder's)."""

    name = "conv"

    def __init__(self, batch_size: int = 4) -> None:
        self.batch_size = batch_size
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2)).eval()

    def fit(self, images):
        return self

    def embed(self, images):
        return batched_apply(self.net, images, self.batch_size, "cpu")

    def describe(self):
        return {"name": self.name}


def _images(n: int) -> torch.Tensor:
    return torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(n))


CASES = [(PixelExtractor(size=4, batch_size=3), 10), (ConvFeatures(), 11), (ConvFeatures(), 1)]


def _worker(rank: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        feats = [sharded(extractor).embed(_images(n)) for extractor, n in CASES]
        if rank == 0:
            torch.save(feats, out)
    finally:
        dist.destroy_process_group()


def test_two_ranks_extract_exactly_the_single_process_features(tmp_path: Path):
    out = tmp_path / "feats.pt"
    mp.spawn(_worker, args=(f"file://{tmp_path / 'init'}", str(out)), nprocs=2)
    feats = torch.load(out)
    for (extractor, n), got in zip(CASES, feats, strict=True):
        assert torch.equal(got, extractor.embed(_images(n))), extractor.name


def test_one_process_uses_the_extractor_itself():
    extractor = PixelExtractor(size=4)
    assert sharded(extractor) is extractor
    wrapped = ShardedExtractor(extractor)
    assert torch.equal(wrapped.embed(_images(5)), extractor.embed(_images(5)))
    assert wrapped.describe() == extractor.describe() and wrapped.size == 4
    assert torch.equal(sharded_embed(extractor, _images(3)), extractor.embed(_images(3)))


@pytest.mark.parametrize("n,unit", [(10, 3), (11, 4), (1, 4), (0, 2), (7, 1)])
def test_blocks_cover_the_rows_in_order_at_batch_boundaries(n, unit):
    for world in (1, 2, 3):
        blocks = [distributed.block_bounds(n, r, world, unit) for r in range(world)]
        assert blocks[0][0] == 0 and blocks[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))
        assert all(start % unit == 0 or start == n for start, _ in blocks)
