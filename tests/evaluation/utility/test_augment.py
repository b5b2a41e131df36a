"""Classic augmentation moves labels with images, keeps label values, and is seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthmed.evaluation.utility.augment import (
    augment_batch,
    random_flip,
    random_rot90,
    random_warp,
)


def _pairs(n: int = 8, size: int = 16, dims: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric labels {0, 1, 2} (an off-centre L-shape) and images equal to label / 2."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros((n,) + (size,) * dims, dtype=torch.long)
    for i in range(n):
        a, b = (int(v) for v in torch.randint(1, size // 2, (2,), generator=gen))
        labels[i, ..., a : a + 5, b : b + 2] = 1
        labels[i, ..., a : a + 2, b : b + 6] = 2
    return labels[:, None].float() / 2, labels


def _agreement(images: torch.Tensor, labels: torch.Tensor) -> float:
    return float(((images[:, 0] * 2).round() == labels).float().mean())


def test_flip_and_rot90_move_labels_with_images() -> None:
    images, labels = _pairs()
    gen = torch.Generator().manual_seed(1)
    for op in (random_flip, random_rot90):
        x, y = op(images, labels, gen)
        assert _agreement(x, y) == 1.0
        moved = (y != labels).flatten(1).any(dim=1)
        assert 0 < int(moved.sum()) < len(labels)  # some samples changed, some not


def test_warp_moves_labels_with_images_and_keeps_label_values() -> None:
    images, labels = _pairs()
    x, y = random_warp(images, labels, torch.Generator().manual_seed(2), strength=2.0, p=1.0)
    assert set(y.unique().tolist()) <= {0, 1, 2} and y.dtype == labels.dtype
    assert (y != labels).any()
    assert _agreement(x, y) > 0.9  # bilinear vs nearest differ only along edges


def test_augment_batch_is_label_aware_seeded_and_bounded() -> None:
    images, labels = _pairs(n=16)
    images = 0.2 + 0.3 * images  # label 0 -> 0.2, 1 -> 0.35, 2 -> 0.5
    x, y = augment_batch(images, labels, torch.Generator().manual_seed(3))
    assert x.shape == images.shape and y.shape == labels.shape
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert set(y.unique().tolist()) <= {0, 1, 2}
    assert not torch.allclose(x, images)
    # intensity changes are monotone per sample, so brighter still means higher label
    for xi, yi in zip(x[:, 0], y, strict=True):
        if (yi == 2).any() and (yi == 0).any():
            assert xi[yi == 2].median() > xi[yi == 0].median()
    again = augment_batch(images, labels, np.random.default_rng(7))
    assert torch.equal(again[0], augment_batch(images, labels, np.random.default_rng(7))[0])
    assert not torch.equal(again[0], augment_batch(images, labels, np.random.default_rng(8))[0])
    assert augment_batch(images, labels, 0, strength=0.0)[0] is images


def test_augment_batch_handles_3d_and_missing_labels() -> None:
    images, labels = _pairs(n=2, size=8, dims=3)
    x, y = augment_batch(images, labels, 0)
    assert x.shape == (2, 1, 8, 8, 8) and y.shape == (2, 8, 8, 8)
    x2, none = augment_batch(torch.rand(3, 2, 12, 10), None, 1)  # non-square: no 90-degree turns
    assert x2.shape == (3, 2, 12, 10) and none is None


def test_left_right_flips_without_turns_keep_up_and_down() -> None:
    """Ultrasound setting: a bright top edge (the skin) stays at the top of every sample."""
    images, labels = _pairs(n=32)
    images[:, :, 0] = 1.0  # top row
    x, y = augment_batch(images, labels, 4, strength=1e-6, flip="left-right", rot90=False)
    assert torch.allclose(x[:, :, 0], torch.ones_like(x[:, :, 0]), atol=1e-3)
    mirrored = labels.flip(-1)
    same = (y == labels).flatten(1).all(dim=1)
    flipped = (y == mirrored).flatten(1).all(dim=1)
    assert bool((same | flipped).all()) and 0 < int(flipped.sum()) < len(y)
    # the default turns some samples so the bright row leaves the top
    x_all, _ = augment_batch(images, labels, 4, strength=1e-6)
    assert not torch.allclose(x_all[:, :, 0], torch.ones_like(x_all[:, :, 0]), atol=1e-3)
    none, _ = random_flip(images, labels, torch.Generator().manual_seed(0), axes="none")
    assert torch.equal(none, images)
    with pytest.raises(ValueError, match="flip axes"):
        random_flip(images, labels, torch.Generator(), axes="up-down")
