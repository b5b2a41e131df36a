"""Memorization-aware checkpoint selection: the best-looking checkpoint that does not copy.

A GAN's last checkpoint is rarely its best, and on a small data set the checkpoint with the
best fidelity may be the one that has started to reproduce training images. Every
``train.select.every`` steps the generator (its EMA weights, what sampling uses) draws a fixed
set of seeds; the sample is scored in the domain encoder (the one the evaluation uses, fitted
on the real training rows and cached in the run) by KID/FD against the real *validation*
split, and by its near-copy rate against the training rows: the fraction closer to a
training row than the ``quantile`` of validation rows are. A generator that generalises like
real data has a near-copy rate of about ``quantile``; a checkpoint whose rate is above it
with a one-sided binomial p-value below ``alpha`` is refused. ``checkpoints/best.pt`` is the
eligible checkpoint with the best fidelity; sampling and evaluation use it when it exists.
The test split is never looked at, so it stays an unbiased judge of the selected model.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthmed.atomic import write_json
from synthmed.config.schema import RunConfig
from synthmed.data.pairs import decode_pairs
from synthmed.evaluation.privacy.memorization import near_copy_p_value
from synthmed.models.base import synthesize_with

log = logging.getLogger(__name__)

BEST = "best.pt"
CURVE = "selection.csv"
SUMMARY = "selection.json"
FIELDS = ["step", "kid", "fd", "near_copy_rate", "near_copy_p", "eligible", "best"]


__all__ = ["CheckpointSelector", "Reference", "build_reference", "near_copy_p_value"]


@dataclass
class Reference:
    """Features of the real rows the selection compares against (fixed for a run)."""

    extractor: Any
    val_feats: torch.Tensor
    train_feats: np.ndarray
    threshold: float


def build_reference(cfg: RunConfig, splits: dict, run_dir: Path, device: str) -> Reference | None:
    """Encoder, validation and training features and the near-copy threshold; None (with a
    warning) when the run has too few validation rows to judge a checkpoint."""
    from synthmed.evaluation.fidelity_eval import build_extractor
    from synthmed.evaluation.inputs import detect_task, real_rows
    from synthmed.evaluation.privacy.memorization import calibrate_copy_threshold

    if not splits.get("val"):
        log.warning("train.select needs a validation split (data.split.val_fraction > 0): off")
        return None
    task = detect_task(splits["train"])
    real = real_rows(splits["train"], cfg, task)
    val = real_rows(splits["val"], cfg, task)
    if len(val) < 10:
        log.warning("train.select: %d validation rows are too few to judge checkpoints", len(val))
        return None
    extractor = build_extractor(cfg.evaluate, run_dir, real.images, device)
    train_feats = extractor.embed(real.images).cpu().numpy()
    val_feats = extractor.embed(val.images)
    quantile = cfg.train.select.quantile
    threshold = calibrate_copy_threshold(train_feats, val_feats.cpu().numpy(), quantile)
    return Reference(extractor, val_feats, train_feats, threshold)


def score_images(images: np.ndarray, ref: Reference, quantile: float) -> dict[str, float]:
    """KID/FD against validation and near-copy rate against training of one sample (images
    in [0, 1], (N, C, *S))."""
    from synthmed.evaluation.fidelity.metrics import frechet_distance, kernel_inception_distance
    from synthmed.evaluation.privacy.neighbours import nearest_neighbours

    feats = ref.extractor.embed(images)
    kid = kernel_inception_distance(ref.val_feats.cpu(), feats.cpu())["kid_mean"]
    fd = frechet_distance(ref.val_feats.cpu(), feats.cpu())
    d_train, _ = nearest_neighbours(feats.cpu().numpy(), ref.train_feats, k=1)
    flagged = int((d_train[:, 0] <= ref.threshold).sum())
    n = len(images)
    return {
        "kid": float(kid),
        "fd": float(fd),
        "near_copy_rate": flagged / n,
        "near_copy_p": near_copy_p_value(flagged, n, quantile),
    }


class CheckpointSelector:
    """Scores the generator every ``every`` steps and keeps ``best.pt`` up to date."""

    def __init__(self, cfg: RunConfig, ref: Reference, inputs, run_dir: Path, start_rows=()):
        self.scfg = cfg.train.select
        self.ref, self.inputs, self.run_dir = ref, inputs, run_dir
        self.rows: list[dict] = [dict(r) for r in start_rows]
        best = [r for r in self.rows if r.get("best") in (True, "True", "1", 1)]
        self.best = dict(best[-1]) if best else None

    def due(self, step: int, done: bool) -> bool:
        return done or step % self.scfg.every == 0

    def consider(self, model, generator: torch.nn.Module, image_channels: int, step: int, save):
        """Score ``generator`` (driving ``model``), log the row, and call ``save(path)`` to
        write the checkpoint when it is the new best eligible one."""
        pairs = synthesize_with(model, generator, *vars(self.inputs).values())
        images, _ = decode_pairs(pairs, image_channels)
        row = {"step": step, **score_images(images.numpy(), self.ref, self.scfg.quantile)}
        row["eligible"] = row["near_copy_p"] >= self.scfg.alpha
        metric = self.scfg.metric
        better = self.best is None or row[metric] < float(self.best[metric])
        row["best"] = bool(row["eligible"] and better)
        if row["best"]:
            save(self.run_dir / "checkpoints" / BEST)
            self.best = dict(row)
        self.rows.append(row)
        self._write()
        return row

    def _write(self) -> None:
        path = self.run_dir / CURVE
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows({k: r.get(k) for k in FIELDS} for r in self.rows)
        tmp.replace(path)
        write_json(
            self.run_dir / SUMMARY,
            {
                "metric": self.scfg.metric,
                "quantile": self.scfg.quantile,
                "alpha": self.scfg.alpha,
                "n_samples": self.scfg.n,
                "threshold": self.ref.threshold,
                "best_step": None if self.best is None else int(self.best["step"]),
                "best": self.best,
                "n_checked": len(self.rows),
                "n_refused": sum(1 for r in self.rows if not _truthy(r["eligible"])),
            },
        )


def _truthy(value) -> bool:
    return value in (True, "True", "true", "1", 1)


def read_curve(run_dir: Path, upto_step: int) -> list[dict]:
    """Rows of an earlier ``selection.csv`` up to ``upto_step`` (resume keeps the curve)."""
    path = Path(run_dir) / CURVE
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= upto_step]
    for r in rows:
        for key in ("kid", "fd", "near_copy_rate", "near_copy_p"):
            r[key] = float(r[key]) if r[key] not in ("", None) else math.nan
        r["step"] = int(r["step"])
        r["eligible"], r["best"] = _truthy(r["eligible"]), _truthy(r["best"])
    return rows
