"""DiffAugment and ADA under torchrun: each rank draws its own slice of the global batch's
augmentation parameters (2 ranks x N == 1 process x 2N, bit for bit), and the adaptive ``p``
is computed from the statistic summed over the ranks (the same ``p`` on every rank)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from synthmed.training.diffaugment import AdaptiveAugmentProbability, diff_augment

ALL = ("translation", "cutout", "color")


def _batch(n: int, spatial: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(n, 2, *spatial, generator=torch.Generator().manual_seed(7)) * 2 - 1


@pytest.mark.parametrize("spatial", [(12, 12), (6, 8, 10)])
@pytest.mark.parametrize("p", [1.0, 0.5])
def test_two_shards_augment_what_one_process_augments_with_the_whole_batch(spatial, p) -> None:
    x = _batch(6, spatial)
    whole_rng = torch.Generator().manual_seed(3)
    whole = diff_augment(x, ALL, whole_rng, color_channels=1, p=p)
    halves, rngs = [], []
    for rank in range(2):
        rng = torch.Generator().manual_seed(3)
        rows = x[rank * 3 : (rank + 1) * 3]
        halves.append(diff_augment(rows, ALL, rng, color_channels=1, p=p, shard=(rank, 2)))
        rngs.append(rng)
    assert torch.equal(torch.cat(halves), whole)
    # the ranks' parameters differ: rank 1's draw applied to rank 0's rows is another output
    as_rank_1 = diff_augment(x[:3], ALL, torch.Generator().manual_seed(3), p=p, shard=(1, 2))
    assert not torch.equal(
        as_rank_1, diff_augment(x[:3], ALL, torch.Generator().manual_seed(3), p=p, shard=(0, 2))
    )
    for rng in rngs:  # every rank's generator is where the one process's is: still in step
        assert torch.equal(rng.get_state(), whole_rng.get_state())


def test_bad_shard_is_refused() -> None:
    with pytest.raises(ValueError, match="shard"):
        diff_augment(_batch(2, (8, 8)), ALL, torch.Generator(), shard=(2, 2))


# rank 0's critic is confident on its reals, rank 1's is not: only the global mean sign
# (0.25 here, < target 0.6) says "do not raise p"; rank 0 alone (1.0) would raise it
SIGNS = {0: [1.0, 1.0, 1.0, 1.0], 1: [1.0, -1.0, -1.0, -1.0]}


def _ada(initial: float = 0.5) -> AdaptiveAugmentProbability:
    return AdaptiveAugmentProbability(target=0.6, interval=2, speed_images=100, initial=initial)


def _worker(rank: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        ada, ps = _ada(), []
        for _ in range(2):
            ada.update(torch.tensor(SIGNS[rank]))
            ps.append(ada.p)
        ada.update(torch.tensor(SIGNS[rank]))  # a partial interval, as a checkpoint holds it
        torch.save({"p": ps, "state": ada.state_dict()}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_ranks_adapt_p_as_one_process_with_both_batches(tmp_path: Path) -> None:
    out = str(tmp_path / "ada")
    mp.spawn(_worker, args=(f"file://{tmp_path / 'init'}", out), nprocs=2)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    one, ps = _ada(), []
    for _ in range(2):
        one.update(torch.tensor(SIGNS[0] + SIGNS[1]))
        ps.append(one.p)
    one.update(torch.tensor(SIGNS[0] + SIGNS[1]))
    assert ps == [0.5, pytest.approx(0.34)]  # one adjustment (2 updates): 16 images at speed 100
    for result in ranks:
        assert result["p"] == ps
        assert result["state"] == one.state_dict()  # rank 0's checkpoint holds the global state
