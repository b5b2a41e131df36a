"""Downstream classification: a small CNN trained on real / synthetic images, tested on real.

Frid-Adar et al. 2018 measured the value of GAN-made liver-lesion ROIs by the sensitivity and
specificity of a small 3-conv CNN; ``fridadar_cnn`` follows that network and ``resnet_small``
is a residual alternative. Metrics are pure functions of labels and probabilities so they can
be tested on hand-made predictions; AUC uses the Mann-Whitney rank form with tied scores
sharing their average rank (no sklearn).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from monai.networks.layers.factories import Conv, Pool
from torch import nn

from synthmed.config.schema import ClassicAugConfig
from synthmed.determinism import seed_everything
from synthmed.evaluation.utility.augment import batch_augmenter
from synthmed.evaluation.utility.loop import DEFAULT_PATIENCE, FitOptions, fit
from synthmed.evaluation.utility.sets import TrainingSet
from synthmed.registry import Registry

CLASSIFIERS = Registry("classifier")


@CLASSIFIERS.register("fridadar_cnn")
class FridAdarCNN(nn.Module):
    """Three 5x5 conv + ReLU + 2x max-pool stages, a dense layer with dropout, class logits.

    After Frid-Adar et al. 2018 (32/64/128 filters, dense 500, dropout 0.5, 64x64 ROIs).
    Maps (N, in_channels, *image_size) in [0, 1] to logits (N, num_classes).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        spatial_dims: int = 2,
        image_size: int | Sequence[int] = 64,
        widths: Sequence[int] = (32, 64, 128),
        dense: int = 500,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        conv, pool = Conv[Conv.CONV, spatial_dims], Pool[Pool.MAX, spatial_dims]
        layers, channels = [], in_channels
        for width in widths:
            layers += [conv(channels, width, 5, padding=2), nn.ReLU(inplace=True), pool(2)]
            channels = width
        sizes = [image_size] * spatial_dims if isinstance(image_size, int) else list(image_size)
        flat = channels * math.prod(s // 2 ** len(widths) for s in sizes)
        if flat == 0:
            raise ValueError(f"image_size {image_size} is too small for {len(widths)} poolings")
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, dense),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dense, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _ResBlock(nn.Module):
    """Two 3x3 convs with GroupNorm and an identity (or strided 1x1) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, spatial_dims: int) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.body = nn.Sequential(
            conv(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.GroupNorm(min(8, c_out), c_out),
            nn.ReLU(inplace=True),
            conv(c_out, c_out, 3, padding=1, bias=False),
            nn.GroupNorm(min(8, c_out), c_out),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else conv(c_in, c_out, 1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


@CLASSIFIERS.register("resnet_small")
class ResNetSmall(nn.Module):
    """A stem conv, one residual block per width (downsampling after the first), global
    average pooling and a linear head; any input size.

    GroupNorm instead of BatchNorm: utility arms train on few images in small batches, where
    batch statistics are noisy and differ between training and evaluation.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        spatial_dims: int = 2,
        image_size: int | Sequence[int] | None = None,
        widths: Sequence[int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        del image_size  # size-agnostic thanks to global pooling
        conv = Conv[Conv.CONV, spatial_dims]
        pool = Pool[Pool.ADAPTIVEAVG, spatial_dims]
        blocks = [conv(in_channels, widths[0], 3, padding=1), nn.ReLU(inplace=True)]
        for k, width in enumerate(widths):
            blocks.append(_ResBlock(widths[max(k - 1, 0)], width, 1 if k == 0 else 2, spatial_dims))
        self.features = nn.Sequential(*blocks, pool(1), nn.Flatten())
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_classifier(
    name: str, in_channels: int, num_classes: int, spatial_dims: int = 2, **kwargs
) -> nn.Module:
    """A registered classifier by name (``fridadar_cnn``, ``resnet_small``); extra keyword
    arguments (``image_size``, ``widths``, ...) go to its constructor."""
    return CLASSIFIERS.build(
        name, in_channels=in_channels, num_classes=num_classes, spatial_dims=spatial_dims, **kwargs
    )


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2.0)[inverse]


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties 1/2.

    NaN when there are no positives or no negatives.
    """
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts; rows are the true class, columns the predicted class."""
    flat = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(len(num), np.nan), where=den > 0)


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean recall over the classes present in ``y_true`` (robust to class imbalance)."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    return _nanmean(_ratio(np.diag(cm).astype(float), cm.sum(axis=1)))


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, positive_class: int = 1
) -> dict[str, object]:
    """Sensitivity, specificity (one-vs-rest per class), balanced accuracy, AUC, accuracy.

    Args:
        y_true: (N,) true classes 0..K-1.
        probs: (N, K) class probabilities (or any per-class scores); the prediction is argmax.
        positive_class: for K == 2, the class whose sensitivity / specificity / AUC are also
            reported as ``sensitivity``, ``specificity`` and ``auc``.

    Returns:
        Scalars (NaN where undefined, e.g. the sensitivity of a class absent from ``y_true``),
        ``*_per_class`` dicts {class: value} and ``confusion_matrix`` (rows = truth).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    k = probs.shape[1]
    cm = confusion_matrix(y_true, probs.argmax(axis=1), k)
    tp = np.diag(cm).astype(float)
    fn, fp = cm.sum(axis=1) - tp, cm.sum(axis=0) - tp
    tn = len(y_true) - tp - fn - fp
    sens, spec = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    auc = np.array([roc_auc(probs[:, c], y_true == c) for c in range(k)])
    out: dict[str, object] = {
        "accuracy": float(tp.sum() / len(y_true)) if len(y_true) else math.nan,
        "balanced_accuracy": _nanmean(sens),
        "sensitivity_macro": _nanmean(sens),
        "specificity_macro": _nanmean(spec),
        "auc_macro": _nanmean(auc),
        "sensitivity_per_class": {c: float(v) for c, v in enumerate(sens)},
        "specificity_per_class": {c: float(v) for c, v in enumerate(spec)},
        "auc_per_class": {c: float(v) for c, v in enumerate(auc)},
        "confusion_matrix": cm.tolist(),
        "n_images": len(y_true),
    }
    if k == 2:
        out.update(
            sensitivity=float(sens[positive_class]),
            specificity=float(spec[positive_class]),
            auc=float(auc[positive_class]),
        )
    return out


def predict_proba(
    model: nn.Module, images: np.ndarray, device: str | torch.device = "cpu", batch: int = 256
) -> np.ndarray:
    """Softmax probabilities (N, K) in evaluation mode, computed in batches."""
    model.eval()
    x = torch.as_tensor(images, dtype=torch.float32)
    with torch.no_grad():
        out = [
            model(x[i : i + batch].to(device)).softmax(dim=1).cpu() for i in range(0, len(x), batch)
        ]
    return torch.cat(out).double().numpy()


def train_classifier(
    train: TrainingSet,
    val: TrainingSet | None,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 1e-3,
    val_every: int = 20,
    patience: int | None = DEFAULT_PATIENCE,
    seed: int = 0,
    device: str | torch.device = "cpu",
    *,
    name: str = "fridadar_cnn",
    num_classes: int | None = None,
    augment: bool = False,
    augment_options: ClassicAugConfig | None = None,
    model: nn.Module | None = None,
    model_kwargs: dict | None = None,
    quiet: bool = True,
    min_steps: int | None = None,
) -> tuple[nn.Module, dict[str, object]]:
    """Train a classifier with cross-entropy; keep the weights best in validation balanced
    accuracy and stop after ``patience`` validations without improvement.

    Args:
        train: rows with ``images`` (N, C, *spatial) in [0, 1] and ``classes`` (N,).
        val: real validation rows with ``classes``; None / empty keeps the last weights.
        num_classes: default: 1 + the largest class in train and val.
        augment: classic augmentation (augment.py) on every batch, as ``augment_options``
            say (default: every flip and quarter turn, strength 1).
        model: start from this network (fine-tuning) instead of building ``name``.
        model_kwargs: extra constructor arguments (``widths``, ``dense``, ...).
        min_steps: no early stop before this step.

    Returns:
        The model (in evaluation mode) and the fit history (``best_val`` = balanced accuracy).
    """
    if train.classes is None:
        raise ValueError("classification needs image classes in the training set")
    has_val = val is not None and len(val) > 0 and val.classes is not None
    if num_classes is None:
        seen = [train.classes] + ([val.classes] if has_val else [])
        num_classes = int(max(int(np.max(c)) for c in seen)) + 1
    seed_everything(seed)
    if model is None:
        kwargs = {"image_size": tuple(train.images.shape[2:]), **(model_kwargs or {})}
        model = build_classifier(
            name, train.images.shape[1], num_classes, train.images.ndim - 2, **kwargs
        )
    model = model.to(device)

    def validate(net: nn.Module) -> float:
        pred = predict_proba(net, val.images, device).argmax(axis=1)
        return balanced_accuracy(val.classes, pred, num_classes)

    classic = batch_augmenter(augment_options or ClassicAugConfig())

    def aug(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator):
        return classic(x, None, gen)[0], y  # y holds classes here, not label maps

    history = fit(
        model,
        torch.as_tensor(train.images, dtype=torch.float32),
        torch.as_tensor(train.classes, dtype=torch.long),
        nn.CrossEntropyLoss(),
        validate if has_val else None,
        FitOptions(steps, batch_size, lr, val_every, patience, min_steps),
        torch.Generator().manual_seed(seed),
        device,
        aug if augment else None,
        f"{name} classifier",
        quiet,
    )
    return model, history


def score_classifier(
    model: nn.Module,
    test: TrainingSet,
    positive_class: int = 1,
    device: str | torch.device = "cpu",
) -> dict[str, object]:
    """:func:`classification_metrics` of ``model`` on ``test`` (one forward pass per image)."""
    if test.classes is None:
        raise ValueError("the test set has no image classes")
    probs = predict_proba(model, test.images, device)
    return classification_metrics(test.classes, probs, positive_class)
