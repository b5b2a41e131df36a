"""Does each synthetic label describe its synthetic image? And do synthetic labels look real?

Paired generators output (image, label). A pair is only useful for training a segmenter if the
label matches the image: :func:`image_label_agreement` segments each synthetic image with a
segmenter trained on REAL pairs and scores the prediction against the synthetic label (Dice).
:func:`compare_label_statistics` checks the labels alone: foreground fraction (e.g. vessel
density), lesion counts and lesion sizes, real vs synthetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from scipy.stats import wasserstein_distance
from torch import Tensor, nn

from synthmed.evaluation.fidelity.extractors import ImageArray, as_image_tensor
from synthmed.evaluation.fidelity.suite import summarize, to_jsonable


def _as_labels(labels: ImageArray, allow_channel: bool = False) -> np.ndarray:
    arr = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if arr.ndim not in (3, 4, 5 if allow_channel else 4) or arr.shape[0] == 0:
        raise ValueError(f"labels must be (N, H, W) or (N, D, H, W), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _predict(
    segmenter: nn.Module, batch: Tensor, roi: Sequence[int] | None, sw_batch_size: int
) -> Tensor:
    """Label map (B, *S): sliding windows of ``roi`` if the image is larger, else one forward."""
    if roi is not None and any(s > r for s, r in zip(batch.shape[2:], roi, strict=True)):
        from monai.inferers import sliding_window_inference

        logits = sliding_window_inference(
            batch, tuple(roi), sw_batch_size=sw_batch_size, predictor=segmenter, overlap=0.25
        )
    else:
        logits = segmenter(batch)
    return logits.argmax(dim=1)


def _dice_per_class(pred: Tensor, ref: Tensor, num_classes: int) -> Tensor:
    """(B, K-1) Dice of each foreground class; 1 where both maps lack the class (they agree)."""
    dims = tuple(range(1, pred.ndim))
    out = []
    for c in range(1, num_classes):
        p, r = pred == c, ref == c
        inter = (p & r).sum(dims).double()
        total = (p.sum(dims) + r.sum(dims)).double()
        out.append(torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total)))
    return torch.stack(out, dim=1)


def image_label_agreement(
    segmenter: nn.Module,
    images: ImageArray,
    labels: ImageArray,
    num_classes: int,
    roi: Sequence[int] | None = None,
    device: str = "cpu",
    batch_size: int = 16,
    low_dice: float = 0.5,
) -> dict[str, Any]:
    """Dice of a REAL-trained segmenter's prediction on each synthetic image vs its synthetic label.

    A low score means the label does not describe the image (or the image is unlike real data).
    Compare with the same segmenter on the real test split (its Dice there is the ceiling).
    Per image, Dice is averaged over the foreground classes 1..K-1; a class absent from both
    the prediction and the label counts as agreement (Dice 1).

    Args:
        segmenter: Module mapping (B, C, *S) images to (B, K, *S) logits; put in eval mode.
        images: (N, C, *S) synthetic images in [0, 1].
        labels: (N, *S) or (N, 1, *S) synthetic label maps with values 0..K-1.
        num_classes: K, background included (>= 2).
        roi: Patch size the segmenter was trained on; larger images use MONAI sliding windows.
        device: Torch device for inference.
        batch_size: Images per forward pass.
        low_dice: Images below this Dice are counted in ``fraction_below``.

    Returns:
        ``dice_mean``, ``dice_std``, ``dice_median``, ``fraction_below`` (with ``low_dice``),
        ``dice_per_class`` (mean per foreground class), ``dice_per_image`` and ``n_images``.
    """
    x = as_image_tensor(images)
    y = torch.as_tensor(_as_labels(labels, allow_channel=True)).long()
    if y.ndim == x.ndim:
        y = y[:, 0]
    if y.shape != (x.shape[0], *x.shape[2:]) or num_classes < 2:
        raise ValueError(f"labels {tuple(y.shape)} do not match images {tuple(x.shape)}")
    was_training = segmenter.training
    segmenter.eval()
    scores = []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            pred = _predict(segmenter, x[s : s + batch_size].to(device), roi, batch_size).cpu()
            scores.append(_dice_per_class(pred, y[s : s + batch_size], num_classes))
    segmenter.train(was_training)
    per_class = torch.cat(scores).numpy()
    dice = per_class.mean(axis=1)
    return to_jsonable(
        {
            "dice_mean": float(dice.mean()),
            "dice_std": float(dice.std()),
            "dice_median": float(np.median(dice)),
            "fraction_below": float((dice < low_dice).mean()),
            "low_dice": low_dice,
            "dice_per_class": {str(c + 1): float(v) for c, v in enumerate(per_class.mean(0))},
            "dice_per_image": np.round(dice, 5),
            "n_images": int(dice.size),
        }
    )


def _class_measurements(labels: np.ndarray, c: int) -> dict[str, np.ndarray]:
    """Per image: foreground fraction and component count of class ``c``; all component areas.

    Components use face connectivity (scipy's default structure: 4-neighbours in 2D, 6 in 3D).
    """
    fractions, counts, areas = [], [], []
    for label in labels:
        mask = label == c
        fractions.append(mask.mean())
        comp, n = ndimage.label(mask)
        counts.append(n)
        if n:
            areas.append(np.bincount(comp.reshape(-1))[1:])
    return {
        "foreground_fraction": np.asarray(fractions, dtype=np.float64),
        "component_count": np.asarray(counts, dtype=np.float64),
        "component_area": np.concatenate(areas).astype(np.float64) if areas else np.zeros(0),
    }


def _stats(m: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "foreground_fraction": summarize(m["foreground_fraction"]),
        "fraction_of_images_with_class": float((m["component_count"] > 0).mean()),
        "component_count": summarize(m["component_count"]),
        "component_area": summarize(m["component_area"]),
    }


def label_statistics(labels: ImageArray, num_classes: int) -> dict[str, Any]:
    """Per foreground class: foreground fraction, component counts and component areas.

    Foreground fraction is e.g. vessel density; component count and area are lesion count and
    lesion size (in pixels/voxels).

    Args:
        labels: (N, *S) integer label maps with values 0..K-1.
        num_classes: K, background included.

    Returns:
        ``{"n_images": N, "classes": {"1": {...}, ...}}``, each class with summaries
        (:func:`summarize`) of ``foreground_fraction``, ``component_count``, ``component_area``
        and the ``fraction_of_images_with_class``.
    """
    arr = _as_labels(labels)
    classes = {str(c): _stats(_class_measurements(arr, c)) for c in range(1, num_classes)}
    return to_jsonable({"n_images": int(arr.shape[0]), "classes": classes})


def _w1(a: np.ndarray, b: np.ndarray) -> float | None:
    return float(wasserstein_distance(a, b)) if a.size and b.size else None


def compare_label_statistics(
    real_labels: ImageArray, synth_labels: ImageArray, num_classes: int
) -> dict[str, Any]:
    """Label statistics real vs synthetic, with 1D Wasserstein distances between them.

    Args:
        real_labels: (N, *S) real label maps (e.g. the real training split).
        synth_labels: (M, *S) synthetic label maps of the same spatial size.
        num_classes: K, background included.

    Returns:
        ``{"n_real", "n_synthetic", "classes": {"1": {"real": stats, "synthetic": stats,
        "wasserstein_foreground_fraction", "wasserstein_component_count",
        "wasserstein_component_area"}}}``; a distance is None when a set has no component.
    """
    real, synth = _as_labels(real_labels), _as_labels(synth_labels)
    classes = {}
    for c in range(1, num_classes):
        r, s = _class_measurements(real, c), _class_measurements(synth, c)
        classes[str(c)] = {
            "real": _stats(r),
            "synthetic": _stats(s),
            **{f"wasserstein_{key}": _w1(r[key], s[key]) for key in r},
        }
    return to_jsonable({"n_real": len(real), "n_synthetic": len(synth), "classes": classes})
