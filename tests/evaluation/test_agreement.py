"""Image-label agreement with a known "segmenter", and label statistics of known shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from synthmed.evaluation.fidelity.agreement import (
    compare_label_statistics,
    image_label_agreement,
    label_statistics,
)


class ThresholdSegmenter(nn.Module):
    """Perfect for images that ARE their label / 2: logits = one-hot of round(2 * image)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        label = (2 * x[:, 0]).round().long().clamp(0, self.num_classes - 1)
        return nn.functional.one_hot(label, self.num_classes).movedim(-1, 1).float()


def disc(shape: tuple[int, ...], centre: tuple[int, ...], radius: float) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


@pytest.fixture
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """Six 32x32 labels with one disc each (class 1 or 2) and images that encode them."""
    labels = np.zeros((6, 32, 32), np.int64)
    for i in range(6):
        labels[i][disc((32, 32), (6 + 4 * i, 26 - 3 * i), 4 + i % 3)] = 1 + i % 2
    return labels[:, None].astype(np.float32) / 2, labels


def test_perfect_segmenter_agrees_and_shuffled_labels_do_not(pairs) -> None:
    images, labels = pairs
    seg = ThresholdSegmenter(3)
    good = image_label_agreement(seg, images, labels, num_classes=3)
    assert good["dice_mean"] == 1.0 and good["fraction_below"] == 0.0
    assert good["dice_per_image"] == [1.0] * 6 and good["dice_per_class"] == {"1": 1.0, "2": 1.0}
    shuffled = image_label_agreement(seg, images, np.roll(labels, 1, axis=0), num_classes=3)
    assert shuffled["dice_mean"] < 0.3 and shuffled["fraction_below"] == 1.0
    json.dumps(shuffled, allow_nan=False)


def test_sliding_window_for_large_images(pairs) -> None:
    images, labels = pairs
    seg = ThresholdSegmenter(3)
    out = image_label_agreement(seg, images, labels[:, None], num_classes=3, roi=(16, 16))
    assert out["dice_mean"] == 1.0
    assert all(call[2:] == (16, 16) for call in seg.calls)  # patches, not whole images
    seg.calls.clear()
    image_label_agreement(seg, images, labels, num_classes=3, roi=(32, 32), batch_size=4)
    assert seg.calls == [(4, 1, 32, 32), (2, 1, 32, 32)]


def test_empty_class_in_both_counts_as_agreement_and_mode_restored() -> None:
    seg = ThresholdSegmenter(2).train()
    out = image_label_agreement(seg, np.zeros((2, 1, 8, 8)), np.zeros((2, 8, 8)), num_classes=2)
    assert out["dice_mean"] == 1.0 and seg.training
    with pytest.raises(ValueError, match="do not match"):
        image_label_agreement(seg, np.zeros((2, 1, 8, 8)), np.zeros((3, 8, 8)), num_classes=2)


def test_label_statistics_of_known_discs() -> None:
    labels = np.zeros((3, 32, 32), np.int64)
    for i in range(2):  # two images with two separate discs of radius 3 (29 pixels each)
        labels[i][disc((32, 32), (8, 8), 3) | disc((32, 32), (22, 22), 3)] = 1
    stats = label_statistics(labels, num_classes=2)
    cls = stats["classes"]["1"]
    assert stats["n_images"] == 3 and cls["fraction_of_images_with_class"] == pytest.approx(2 / 3)
    assert cls["component_count"]["max"] == 2 and cls["component_count"]["min"] == 0
    assert cls["component_area"]["n"] == 4 and cls["component_area"]["mean"] == 29.0
    assert cls["foreground_fraction"]["max"] == pytest.approx(58 / 1024)
    volume = np.zeros((1, 8, 8, 8), np.int64)
    volume[0, 1:3, 1:3, 1:3] = 1
    assert label_statistics(volume, 2)["classes"]["1"]["component_area"]["mean"] == 8.0


def test_compare_label_statistics() -> None:
    real = np.zeros((4, 16, 16), np.int64)
    real[:, 2:6, 2:6] = 1  # one 16-pixel lesion per image
    synth = real.copy()
    synth[:, 10:12, 10:12] = 1  # plus a second 4-pixel lesion
    same = compare_label_statistics(real, real, num_classes=3)
    assert same["classes"]["1"]["wasserstein_foreground_fraction"] == 0.0
    assert same["classes"]["2"]["wasserstein_component_area"] is None  # no class-2 components
    diff = compare_label_statistics(real, synth, num_classes=2)["classes"]["1"]
    assert diff["wasserstein_component_count"] == pytest.approx(1.0)
    assert diff["wasserstein_foreground_fraction"] == pytest.approx(4 / 256)
    assert diff["synthetic"]["component_area"]["min"] == 4.0
    json.dumps(diff, allow_nan=False)
