"""Sampling in shards: resumable, and split over the ranks of a torchrun job.

A dataset of ``n`` samples is cut into shards of ``batch_size`` consecutive indices (the
batches a single process generates, so a shard's pixels do not depend on who made it). Shard
files go into ``.<name>.partial`` next to the dataset folder: a shard's images, then its
manifest rows in ``shards/shard_<k>.json`` (written last, atomically: a shard whose rows file
exists is complete). Under torchrun each rank makes a contiguous block of the missing shards
(a disjoint, contiguous seed range); rank 0 then joins the rows into ``manifest.csv`` and
renames the folder into place. The result is the folder one process writes, whatever the
number of ranks. A run that stopped part-way leaves the partial folder, and the same request
made again (``request.json`` must match) makes only the missing shards.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from synthmed import distributed
from synthmed.atomic import replace_dir, write_json
from synthmed.errors import InputError
from synthmed.progress import stage

log = logging.getLogger(__name__)

REQUEST = "request.json"
SHARDS = "shards"

MakeShard = Callable[[Path, int, int], list[dict]]
"""``make(folder, start, stop)``: write samples ``start .. stop-1`` into ``folder`` and
return their manifest rows."""


def partial_dir(out_dir: Path) -> Path:
    """Where an unfinished dataset lives: hidden, next to the dataset folder."""
    return out_dir.with_name(f".{out_dir.name}.partial")


def shard_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each shard: ``size`` consecutive sample indices, the last shorter."""
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def rank_block(todo: list[int], rank: int, world: int) -> list[int]:
    """This rank's contiguous block of ``todo`` (blocks differ in length by at most one)."""
    per, extra = divmod(len(todo), world)
    first = rank * per + min(rank, extra)
    return todo[first : first + per + (1 if rank < extra else 0)]


def _shard_file(folder: Path, k: int) -> Path:
    return folder / SHARDS / f"shard_{k:06d}.json"


def _open_partial(folder: Path, request: dict) -> None:
    """Keep a partial folder made by the same request; start afresh otherwise (rank 0)."""
    saved = folder / REQUEST
    if folder.is_dir():
        try:
            same = json.loads(saved.read_text()) == json.loads(json.dumps(request))
        except (OSError, ValueError):
            same = False
        if same:
            return
        log.info("discarding %s: made by another sampling request", folder)
        shutil.rmtree(folder)
    (folder / SHARDS).mkdir(parents=True)
    write_json(saved, request)


def _done(folder: Path, count: int) -> list[bool]:
    return [_shard_file(folder, k).is_file() for k in range(count)]


def _read_rows(folder: Path, count: int) -> list[dict]:
    rows = []
    for k in range(count):
        path = _shard_file(folder, k)
        if not path.is_file():
            raise InputError(
                f"shard {k} is missing after every rank finished: the output folder must be "
                "on a file system that all nodes share",
                folder,
            )
        rows += json.loads(path.read_text())
    return rows


def sample_in_shards(
    out_dir: Path,
    request: dict,
    n: int,
    shard_size: int,
    make: MakeShard,
    finish: Callable[[Path, list[dict]], None],
    quiet: bool = False,
) -> Path:
    """Make the missing shards of ``request`` (this rank's block of them), then on rank 0
    ``finish(folder, rows)`` (manifest, dataset.json) and rename the folder to ``out_dir``.

    Every rank returns ``out_dir`` once it is complete (a barrier ends the call).
    """
    folder = partial_dir(out_dir)
    bounds = shard_bounds(n, shard_size)
    if distributed.is_main():
        _open_partial(folder, request)
    distributed.barrier()  # the partial folder is ready before anyone reads it
    todo = [k for k, done in enumerate(_done(folder, len(bounds))) if not done]
    distributed.barrier()  # every rank has listed the same shards before any is added
    if len(todo) < len(bounds):
        log.info("resuming %s: %d of %d shards to make", folder, len(todo), len(bounds))
    mine = rank_block(todo, distributed.rank(), distributed.world_size())
    quiet = quiet or not distributed.is_main()
    with stage("sample", sum(bounds[k][1] - bounds[k][0] for k in mine), quiet) as bar:
        for k in mine:
            start, stop = bounds[k]
            rows = make(folder, start, stop)
            write_json(_shard_file(folder, k), rows)  # last: the shard is now complete
            bar.advance(stop - start)
    distributed.barrier()  # every shard is written
    if distributed.is_main():
        rows = _read_rows(folder, len(bounds))
        shutil.rmtree(folder / SHARDS)
        (folder / REQUEST).unlink()
        finish(folder, rows)
        replace_dir(folder, out_dir)
    distributed.barrier()  # the dataset is in place before any rank goes on to use it
    return out_dir
