"""Whole-image Dice/HD95 per class on known predictions; U-Net training with early stopping."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from synthmed.config.schema import UtilityConfig
from synthmed.data.types import Item
from synthmed.evaluation.utility.segmentation import (
    SegmentationData,
    score_items,
    train_segmenter,
)
from synthmed.evaluation.utility.sets import items_from_set


class _Oracle(nn.Module):
    """Reads the label back from an image that stores it as ``label / 2`` (logits for 3 classes);
    ``drop`` turns one class into background."""

    def __init__(self, drop: int | None = None) -> None:
        super().__init__()
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        label = (x[:, 0] * 2).round().long()
        if self.drop is not None:
            label[label == self.drop] = 0
        return nn.functional.one_hot(label, 3).movedim(-1, 1).float() * 10


def _items() -> list[Item]:
    items = []
    for shift in (2, 6):
        label = np.zeros((16, 16), np.int64)
        label[shift : shift + 5, 3:9] = 1
        label[10:14, shift : shift + 4] = 2
        items.append(Item(image=label[None].astype(np.float32) / 2, label=label))
    return items


def test_score_items_perfect_and_missing_class() -> None:
    perfect = score_items(_Oracle(), _items(), 3, (16, 16), "cpu")
    assert perfect["dice_mean"] == 1.0 and perfect["hd95_mean"] == 0.0
    assert perfect["dice_per_class"] == {1: 1.0, 2: 1.0}
    assert perfect["hd95_per_class"] == {1: 0.0, 2: 0.0} and perfect["hd95_undefined"] == 0
    missing = score_items(_Oracle(drop=2), _items(), 3, (8, 8), "cpu")
    assert missing["dice_per_class"] == {1: 1.0, 2: 0.0}
    assert missing["dice_mean"] == 0.5 and missing["dice_per_image"] == [0.5, 0.5]
    assert math.isnan(missing["hd95_per_class"][2]) and missing["hd95_per_class"][1] == 0.0


def test_score_items_respects_the_fov() -> None:
    item = _items()[0]
    fov = np.zeros((16, 16), bool)
    fov[:9] = True  # hides class 2 and the model's miss of it
    scores = score_items(_Oracle(drop=2), [item.with_(meta={"fov": fov})], 3, (16, 16), "cpu")
    assert scores["dice_per_class"][1] == 1.0 and math.isnan(scores["dice_per_class"][2])


def test_train_segmenter_keeps_its_api_and_stops_early(discs) -> None:
    train, val = discs(4, 0), items_from_set(discs(2, 1))
    cfg = UtilityConfig(channels=[4, 8], steps=50, batch_size=2, lr=1e-9, val_every=1)
    model, hist = train_segmenter(
        SegmentationData(train.images, train.labels), val, cfg, 2, 0, "cpu", "u", True, patience=2
    )
    # an lr of 1e-9 leaves validation Dice unchanged: best at step 1, two more, stop at 3
    assert hist["steps_run"] == 3 and hist["stopped_early"] and hist["best_step"] == 1
    assert hist["best_val_dice"] == hist["best_val"] and len(hist["val_curve"]) == 3
    scores = score_items(model, val, 2, (16, 16), "cpu")
    assert scores["dice_mean"] == hist["best_val_dice"]


def test_foreground_fraction_reaches_the_batches(discs, monkeypatch) -> None:
    """evaluate.utility.foreground_fraction: train_segmenter tells fit which rows hold a
    label, and fit puts that share of each batch on them."""
    from synthmed.evaluation.utility import segmentation

    train = discs(6, 0)
    train.labels[:4] = 0  # only rows 4 and 5 keep their disc
    seen = []
    real_fit = segmentation.fit

    def spy(*args, **kwargs):
        seen.append(args[11] if len(args) > 11 else kwargs.get("foreground"))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(segmentation, "fit", spy)
    cfg = UtilityConfig(channels=[4, 8], steps=2, batch_size=4, foreground_fraction=0.5)
    train_segmenter(SegmentationData(train.images, train.labels), [], cfg, 2, 0, "cpu", "u", True)
    assert seen[0].tolist() == [False] * 4 + [True] * 2
    train_segmenter(
        SegmentationData(train.images, train.labels), [], UtilityConfig(channels=[4, 8], steps=2),
        2, 0, "cpu", "u", True,
    )  # fmt: skip
    assert seen[1] is None  # fraction 0: no flags, the uniform draws of before
