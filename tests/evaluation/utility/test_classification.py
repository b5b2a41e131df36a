"""Classification metrics on hand-made predictions, the two networks, and a learning check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synthmed.evaluation.utility.classification import (
    CLASSIFIERS,
    build_classifier,
    classification_metrics,
    roc_auc,
    score_classifier,
    train_classifier,
)


def _one_hot(pred: list[int], k: int) -> np.ndarray:
    return np.eye(k)[pred] * 0.8 + 0.2 / k


def test_perfect_predictions() -> None:
    y = [0, 0, 1, 1, 2, 2]
    m = classification_metrics(y, _one_hot(y, 3))
    assert m["accuracy"] == m["balanced_accuracy"] == m["auc_macro"] == 1.0
    assert set(m["sensitivity_per_class"].values()) == {1.0}
    assert set(m["specificity_per_class"].values()) == {1.0}
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert "sensitivity" not in m  # binary-only keys


def test_hand_computed_three_class_confusion() -> None:
    y, pred = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    m = classification_metrics(y, _one_hot(pred, 3))
    assert m["sensitivity_per_class"] == {0: 0.5, 1: 1.0, 2: 0.5}
    assert m["specificity_per_class"] == {0: 0.75, 1: 0.75, 2: 1.0}
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)


def test_all_wrong_binary() -> None:
    probs = np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.9, 0.1]])
    m = classification_metrics([0, 0, 1, 1], probs)
    assert m["accuracy"] == m["balanced_accuracy"] == m["auc"] == m["auc_macro"] == 0.0
    assert m["sensitivity"] == m["specificity"] == 0.0
    swapped = classification_metrics([0, 0, 1, 1], probs, positive_class=0)
    assert swapped["sensitivity"] == 0.0 and swapped["auc"] == 0.0


def test_one_class_present() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6]])
    m = classification_metrics([0, 0, 0], probs)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)  # recall of the only class present
    assert math.isnan(m["sensitivity"])  # no positives at all
    assert m["specificity"] == pytest.approx(2 / 3)
    assert math.isnan(m["auc"]) and math.isnan(m["auc_macro"])


def test_auc_known_values_and_ties() -> None:
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert roc_auc([0.5] * 6, [0, 1, 0, 1, 1, 0]) == 0.5
    assert roc_auc([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == pytest.approx(0.875)  # one tie = 1/2
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))


@pytest.mark.parametrize("name", ["fridadar_cnn", "resnet_small"])
def test_classifiers_map_images_to_logits(name: str) -> None:
    kw = {"widths": (4, 8, 8)} | ({"dense": 16} if name == "fridadar_cnn" else {})
    net = build_classifier(name, 2, 3, 2, image_size=16, **kw)
    assert net(torch.rand(2, 2, 16, 16)).shape == (2, 3)
    net3d = build_classifier(
        name,
        1,
        2,
        3,
        image_size=8,
        widths=(4, 4),
        **({"dense": 8} if name == "fridadar_cnn" else {}),
    )
    assert net3d(torch.rand(2, 1, 8, 8, 8)).shape == (2, 2)
    assert CLASSIFIERS.names() == ["fridadar_cnn", "resnet_small"]
    with pytest.raises(KeyError, match="fridadar_cnn"):
        build_classifier("vgg", 1, 2)


def test_small_cnn_learns_bright_vs_dark_squares(squares) -> None:
    kw = {"widths": (8, 16, 16), "dense": 32}
    model, hist = train_classifier(
        squares(32, 0), squares(12, 1), steps=40, batch_size=16, lr=3e-3, val_every=10,
        patience=None, seed=0, model_kwargs=kw,
    )  # fmt: skip
    scores = score_classifier(model, squares(16, 2))
    assert scores["balanced_accuracy"] > 0.9 and scores["auc"] > 0.9
    assert hist["steps_run"] == 40 and hist["best_val"] > 0.9


def test_early_stopping_when_validation_stalls(squares) -> None:
    _, hist = train_classifier(
        squares(8, 0), squares(4, 1), steps=100, batch_size=4, lr=0.0, val_every=2,
        patience=2, seed=0, model_kwargs={"widths": (4, 4, 4), "dense": 8},
    )  # fmt: skip
    # lr 0: the first validation is the best, then two without improvement -> stop at step 6
    assert hist["stopped_early"] and hist["steps_run"] == 6 and hist["best_step"] == 2
    assert [s for s, _ in hist["val_curve"]] == [2, 4, 6]
