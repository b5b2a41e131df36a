"""Downstream segmentation: train a MONAI U-Net on some data, test it on REAL test images.

This is the primary endpoint for a labelled synthetic dataset: a U-Net trained on synthetic
pairs (or real + synthetic) is tested on the same held-out real images as one trained on real
data. Model selection uses the real validation split; the test split is touched once.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import compute_dice, compute_hausdorff_distance

from synthmed.config.schema import UtilityConfig
from synthmed.data.types import Item
from synthmed.models.segmentation import build_unet
from synthmed.progress import stage

log = logging.getLogger(__name__)


@dataclass
class SegmentationData:
    """Training pairs as arrays: images (N, C, *spatial) in [0, 1], labels (N, *spatial)."""

    images: np.ndarray
    labels: np.ndarray


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels.long(), num_classes).movedim(-1, 1).float()


def _predict(model: torch.nn.Module, image: torch.Tensor, roi: tuple[int, ...]) -> torch.Tensor:
    """Whole-image label map by sliding-window inference (patch-trained U-Nets)."""
    logits = sliding_window_inference(
        image[None], roi, sw_batch_size=8, predictor=model, overlap=0.25
    )
    return logits.argmax(dim=1)[0]


def score_items(
    model: torch.nn.Module, items: list[Item], num_classes: int, roi: tuple[int, ...], device
) -> dict[str, object]:
    """Dice and HD95 per image (foreground classes), restricted to the FOV when present.

    HD95 is undefined when the prediction or the reference is empty: such images are counted
    in ``hd95_undefined`` and left out of the HD95 mean rather than given an invented value.
    """
    model.eval()
    dice, hd95 = [], []
    with torch.no_grad():
        for item in items:
            image = torch.as_tensor(item.image, dtype=torch.float32, device=device)
            pred = _predict(model, image, roi).cpu()
            ref = torch.as_tensor(item.label).long()
            fov = item.meta.get("fov")
            if fov is not None:
                keep = torch.as_tensor(np.asarray(fov, dtype=bool))
                pred, ref = pred * keep, ref * keep
            p1, r1 = _one_hot(pred[None], num_classes), _one_hot(ref[None], num_classes)
            dice.append(compute_dice(p1, r1, include_background=False).nanmean().item())
            hd = compute_hausdorff_distance(p1, r1, include_background=False, percentile=95)
            hd95.append(hd.nanmean().item())
    dice_arr = np.array(dice, dtype=np.float64)
    hd_arr = np.array(hd95, dtype=np.float64)
    finite = np.isfinite(hd_arr)
    return {
        "dice_mean": float(np.nanmean(dice_arr)) if len(dice_arr) else math.nan,
        "dice_std": float(np.nanstd(dice_arr)) if len(dice_arr) else math.nan,
        "hd95_mean": float(hd_arr[finite].mean()) if finite.any() else math.nan,
        "hd95_undefined": int((~finite).sum()),
        "n_images": len(items),
        "dice_per_image": [round(float(d), 5) for d in dice_arr],
    }


def train_segmenter(
    train: SegmentationData,
    val_items: list[Item],
    cfg: UtilityConfig,
    num_classes: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    desc: str = "u-net",
    quiet: bool = False,
) -> tuple[torch.nn.Module, dict[str, float]]:
    """Train a U-Net with Dice+CE on random batches; keep the weights best on real validation.

    Returns:
        The model (best validation Dice) and a small history dict.
    """
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    spatial_dims = train.images.ndim - 2
    model = build_unet(spatial_dims, train.images.shape[1], num_classes, tuple(cfg.channels))
    model = model.to(device)
    opt = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, fused=torch.device(device).type in ("cpu", "cuda")
    )
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    images = torch.as_tensor(train.images, dtype=torch.float32)
    labels = torch.as_tensor(train.labels).long()
    roi = tuple(train.images.shape[2:])
    best, best_state, last_loss = -1.0, None, math.nan
    with stage(desc, cfg.steps, quiet) as bar:
        for step in range(1, cfg.steps + 1):
            model.train()
            idx = torch.randint(len(images), (cfg.batch_size,), generator=rng)
            x, y = _flip_batch(images[idx], labels[idx], rng)
            loss = loss_fn(model(x.to(device)), y[:, None].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % cfg.val_every == 0 or step == cfg.steps:
                last_loss = float(loss.detach())
                score = _val_dice(model, val_items, num_classes, roi, device)
                if score > best or best_state is None:
                    best, best_state = score, copy.deepcopy(model.state_dict())
                bar.advance(0, f"val dice {score:.3f}")
            bar.advance(1)
    model.load_state_dict(best_state)
    return model, {"best_val_dice": best, "final_train_loss": last_loss}


def _val_dice(model, val_items, num_classes, roi, device) -> float:
    if not val_items:
        return 0.0
    return float(score_items(model, val_items, num_classes, roi, device)["dice_mean"])


def _flip_batch(x: torch.Tensor, y: torch.Tensor, rng: torch.Generator):
    """Random flips along each spatial axis: cheap augmentation identical for all arms."""
    for axis in range(2, x.ndim):
        flip = torch.rand(x.shape[0], generator=rng) < 0.5
        x[flip] = x[flip].flip(axis)
        y[flip] = y[flip].flip(axis - 1)
    return x, y
