"""Downstream segmentation: train a MONAI U-Net on some data, test it on REAL test images.

This is the primary endpoint for a labelled synthetic dataset: a U-Net trained on synthetic
pairs (or real + synthetic) is tested on the same held-out real images as one trained on real
data. Model selection and early stopping use the real validation split; the test split is
touched once. Scores are whole-image (sliding-window) Dice and HD95 per foreground class, as in
Kossen et al. 2021.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import compute_dice, compute_hausdorff_distance

from synthmed.config.schema import ClassicAugConfig, UtilityConfig
from synthmed.data.types import Item
from synthmed.determinism import seed_everything
from synthmed.evaluation.utility.augment import batch_augmenter, random_flip
from synthmed.evaluation.utility.loop import DEFAULT_PATIENCE, FitOptions, fit
from synthmed.evaluation.utility.sets import TrainingSet
from synthmed.models.segmentation import build_unet

log = logging.getLogger(__name__)

# Kept for callers that build training pairs by position: ``SegmentationData(images, labels)``.
SegmentationData = TrainingSet

AugmentMode = Literal["none", "flip", "classic"]


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels.long(), num_classes).movedim(-1, 1).float()


def _predict(model: torch.nn.Module, image: torch.Tensor, roi: tuple[int, ...]) -> torch.Tensor:
    """Whole-image label map by sliding-window inference (patch-trained U-Nets)."""
    logits = sliding_window_inference(
        image[None], roi, sw_batch_size=8, predictor=model, overlap=0.25
    )
    return logits.argmax(dim=1)[0]


def _image_scores(
    model: torch.nn.Module, item: Item, num_classes: int, roi: tuple[int, ...], device
) -> tuple[np.ndarray, np.ndarray]:
    """Dice and HD95 of one image, one value per foreground class (NaN where undefined)."""
    image = torch.as_tensor(item.image, dtype=torch.float32, device=device)
    pred = _predict(model, image, roi).cpu()
    ref = torch.as_tensor(np.asarray(item.label)).long()
    fov = item.meta.get("fov")
    if fov is not None:
        keep = torch.as_tensor(np.asarray(fov, dtype=bool))
        pred, ref = pred * keep, ref * keep
    p1, r1 = _one_hot(pred[None], num_classes), _one_hot(ref[None], num_classes)
    dice = compute_dice(p1, r1, include_background=False)[0]
    with warnings.catch_warnings():  # empty classes are expected; counted as hd95_undefined
        warnings.filterwarnings("ignore", message=".*is all 0, this may result in nan/inf")
        # MONAI 1.5-1.6 deprecation notice raised inside its own metric: not actionable here
        warnings.filterwarnings(
            "ignore", message=".*always_return_as_numpy.*", category=FutureWarning
        )
        hd = compute_hausdorff_distance(p1, r1, include_background=False, percentile=95)[0]
    return dice.double().numpy(), hd.double().numpy()


def _per_class(values: np.ndarray) -> dict[int, float]:
    """Mean over images of each class column, finite values only (NaN when none)."""
    out = {}
    for k in range(values.shape[1]):
        col = values[:, k][np.isfinite(values[:, k])]
        out[k + 1] = float(col.mean()) if len(col) else math.nan
    return out


def score_items(
    model: torch.nn.Module, items: list[Item], num_classes: int, roi: tuple[int, ...], device
) -> dict[str, object]:
    """Dice and HD95 per image and per foreground class, restricted to the FOV when present.

    An image's Dice is the mean over its classes with a reference (MONAI gives NaN for an
    empty reference). HD95 is undefined when the prediction or the reference is empty: such
    images are counted in ``hd95_undefined`` and left out of the HD95 means rather than given
    an invented value.

    Returns:
        ``dice_mean``, ``dice_std`` (over images), ``hd95_mean``, ``hd95_undefined``,
        ``n_images``, ``dice_per_image`` and ``dice_per_class`` / ``hd95_per_class``
        ({class: mean over images}).
    """
    model.eval()
    dice_rows, hd_rows = [], []
    with torch.no_grad():
        for item in items:
            dice, hd = _image_scores(model, item, num_classes, roi, device)
            dice_rows.append(dice)
            hd_rows.append(hd)
    width = max(num_classes - 1, 1)
    dice_all = np.array(dice_rows, dtype=np.float64).reshape(-1, width)
    hd_all = np.array(hd_rows, dtype=np.float64).reshape(-1, width)
    hd_all[~np.isfinite(hd_all)] = np.nan
    dice_img = _row_nanmean(dice_all)
    hd_img = _row_nanmean(hd_all)
    finite = np.isfinite(hd_img)
    return {
        "dice_mean": float(np.nanmean(dice_img)) if np.isfinite(dice_img).any() else math.nan,
        "dice_std": float(np.nanstd(dice_img)) if np.isfinite(dice_img).any() else math.nan,
        "hd95_mean": float(hd_img[finite].mean()) if finite.any() else math.nan,
        "hd95_undefined": int((~finite).sum()),
        "n_images": len(items),
        "dice_per_image": [round(float(d), 5) for d in dice_img],
        "dice_per_class": _per_class(dice_all),
        "hd95_per_class": _per_class(hd_all),
    }


def _row_nanmean(values: np.ndarray) -> np.ndarray:
    """Mean of each row over its finite entries; NaN for rows with none (no warning)."""
    ok = np.isfinite(values)
    total = np.where(ok, values, 0.0).sum(axis=1)
    count = ok.sum(axis=1)
    return np.divide(total, count, out=np.full(len(values), np.nan), where=count > 0)


def _augmenter(mode: AugmentMode, opts: ClassicAugConfig):
    """The on-the-fly augmentation of a training arm; labels come in as (B, *spatial)."""
    if mode == "none":
        return None
    if mode == "flip":
        return lambda x, y, gen: random_flip(x, y, gen)
    if mode == "classic":
        return batch_augmenter(opts)
    raise ValueError(f"unknown augment mode {mode!r}; valid: none, flip, classic")


def train_segmenter(
    train: TrainingSet,
    val_items: list[Item],
    cfg: UtilityConfig,
    num_classes: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    desc: str = "u-net",
    quiet: bool = False,
    patience: int | None = DEFAULT_PATIENCE,
    augment: AugmentMode = "flip",
    min_steps: int | None = None,
    model: torch.nn.Module | None = None,
) -> tuple[torch.nn.Module, dict[str, object]]:
    """Train a U-Net with Dice+CE on random batches; keep the weights best on real validation.

    Args:
        train: rows with ``images`` (N, C, *spatial) in [0, 1] and ``labels`` (N, *spatial).
        val_items: real validation images, scored whole (sliding window); empty means no
            model selection (the last weights are kept).
        cfg: ``channels``, ``steps``, ``batch_size``, ``lr``, ``val_every`` and optionally
            ``augment`` (the classic-aug options) and ``foreground_fraction`` (share of each
            batch from slices with a label, see ``loop.draw_batch``) of any object with
            these attributes, e.g.
            :class:`~synthmed.evaluation.utility.protocols.Settings`.
        patience: validations without a better Dice before stopping; None trains all steps.
        min_steps: no early stop before this step.
        augment: ``flip`` (the historical default, cheap), ``classic`` (augment.py) or ``none``.
        model: start from this network (fine-tuning) instead of a fresh U-Net.

    Returns:
        The model (best validation Dice) and its history (``best_val_dice`` plus the
        :func:`~synthmed.evaluation.utility.loop.fit` history).
    """
    seed_everything(seed)
    rng = torch.Generator().manual_seed(seed)
    if model is None:
        spatial_dims = train.images.ndim - 2
        model = build_unet(spatial_dims, train.images.shape[1], num_classes, tuple(cfg.channels))
    model = model.to(device)
    roi = tuple(train.images.shape[2:])
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)

    def validate(net: torch.nn.Module) -> float:
        return float(score_items(net, val_items, num_classes, roi, device)["dice_mean"])

    fraction = float(getattr(cfg, "foreground_fraction", 0.0) or 0.0)
    opts = FitOptions(
        cfg.steps, cfg.batch_size, cfg.lr, cfg.val_every, patience, min_steps, fraction
    )
    labels = torch.as_tensor(train.labels).long()
    history = fit(
        model,
        torch.as_tensor(train.images, dtype=torch.float32),
        labels,
        lambda logits, y: dice_ce(logits, y[:, None]),
        validate if val_items else None,
        opts,
        rng,
        device,
        _augmenter(augment, getattr(cfg, "augment", None) or ClassicAugConfig()),
        desc,
        quiet,
        labels.flatten(1).gt(0).any(1) if fraction else None,
    )
    return model, {"best_val_dice": history["best_val"], **history}
