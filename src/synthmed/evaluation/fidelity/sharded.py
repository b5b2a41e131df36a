"""Feature extraction split over the ranks of a torchrun job (fidelity and privacy).

Each rank embeds one contiguous block of the images, cut at multiples of the extractor's
batch size, so every rank runs exactly the batches a single process runs; the blocks are then
gathered in rank order. The features are therefore those of one process, bit for bit, and
every rank holds them (each computes the same metrics from them; rank 0 writes). Fitting a
learned extractor is not split: it is seeded, and every rank fits (or loads) the same one.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from synthmed import distributed
from synthmed.evaluation.fidelity.extractors import FeatureExtractor, ImageArray, as_image_tensor


def sharded_embed(extractor: FeatureExtractor, images: ImageArray) -> Tensor:
    """``extractor.embed(images)`` computed in blocks over the ranks, ``(N, D)`` on the CPU."""
    world = distributed.world_size()
    if world == 1:
        return extractor.embed(images)
    x = as_image_tensor(images)
    unit = int(getattr(extractor, "batch_size", 256))
    start, stop = distributed.block_bounds(x.shape[0], distributed.rank(), world, unit)
    # a rank without rows embeds one image and keeps none of it (the feature width is needed)
    mine = extractor.embed(x[start:stop]) if stop > start else extractor.embed(x[:1])[:0]
    return distributed.all_gather_rows(mine.contiguous())


class ShardedExtractor:
    """An extractor whose ``embed`` runs sharded over the ranks (:func:`sharded_embed`);
    everything else is the wrapped extractor's."""

    def __init__(self, inner: FeatureExtractor) -> None:
        self.inner = inner
        self.name = inner.name

    def fit(self, images: ImageArray) -> ShardedExtractor:
        self.inner.fit(images)
        return self

    def embed(self, images: ImageArray) -> Tensor:
        return sharded_embed(self.inner, images)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)


def sharded(extractor: FeatureExtractor) -> FeatureExtractor:
    """``extractor`` itself in one process, else its :class:`ShardedExtractor`."""
    return extractor if distributed.world_size() == 1 else ShardedExtractor(extractor)
