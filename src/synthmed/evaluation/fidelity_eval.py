"""The fidelity section of metrics.json, wired to a run folder.

The feature space is fitted on (or is fixed independently of) the REAL TRAINING rows only, so
held-out real rows are an unbiased "as good as real data" reference for every number. For
paired segmentation data two label checks follow: does each synthetic label describe its image
(a U-Net trained on real data segments the synthetic image; Dice against the synthetic label,
with the same U-Net on real validation patches as the ceiling), and do synthetic label maps
have real statistics (foreground fraction, component counts and sizes)?
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from synthmed import distributed
from synthmed.config.schema import EvaluateConfig, RunConfig
from synthmed.data.arrays import training_arrays
from synthmed.evaluation.fidelity import (
    FeatureExtractor,
    ModuleExtractor,
    PixelExtractor,
    compare_label_statistics,
    fidelity_report,
    image_label_agreement,
    load_or_fit_encoder,
)
from synthmed.evaluation.fidelity.extractors import cached_encoder
from synthmed.evaluation.fidelity.sharded import sharded
from synthmed.evaluation.inputs import EvalInputs

log = logging.getLogger(__name__)


def build_extractor(
    cfg: EvaluateConfig, run_dir: Path, real_images, device: str | torch.device = "cpu"
) -> FeatureExtractor:
    """The configured feature space; the encoder is fitted on real training rows and cached
    under ``RUN/evaluation/`` with their hash (refitted when the data or settings change).
    Under torchrun its ``embed`` is split over the ranks (fidelity/sharded.py), and rank 0
    alone fits (or loads) and writes the encoder, which the other ranks then load."""
    dev = str(device)
    if cfg.extractor == "pixels":
        return sharded(PixelExtractor(device=dev))
    if cfg.extractor == "module":
        return sharded(ModuleExtractor(cfg.extractor_path, device=dev))
    cache = run_dir / "evaluation"
    if distributed.is_main():  # under torchrun rank 0 alone fits and writes the cache
        cache.mkdir(parents=True, exist_ok=True)
        encoder = load_or_fit_encoder(cache, real_images, steps=cfg.encoder_steps, device=dev)
    distributed.barrier()
    if not distributed.is_main():  # ... and the other ranks load its weights, bit for bit
        encoder = cached_encoder(cache, real_images, steps=cfg.encoder_steps, device=dev)
        if encoder is None:
            raise RuntimeError(f"rank {distributed.rank()}: rank 0's encoder is not in {cache}")
    return sharded(encoder)


def _agreement(
    inputs: EvalInputs, config: RunConfig, segmenter: torch.nn.Module, device
) -> dict[str, Any]:
    """Synthetic labels vs the real-trained U-Net's prediction, with real validation patches
    (never used to train that U-Net, only to select it) as the like-for-like ceiling."""
    roi = tuple(inputs.real.images.shape[2:])
    nc = inputs.num_classes
    out: dict[str, Any] = {
        "segmenter": "utility protocol 'real', all patients, first seed",
        "synthetic": image_label_agreement(
            segmenter, inputs.synthetic.images, inputs.synthetic.labels, nc, roi, str(device)
        ),
        "real_validation": None,
    }
    val_items = inputs.splits.get("val", [])
    if val_items:
        images, labels, _ = training_arrays(val_items, config.data)
        out["real_validation"] = image_label_agreement(
            segmenter, images, labels, nc, roi, str(device)
        )
    return out


def fidelity_section(
    inputs: EvalInputs,
    config: RunConfig,
    extractor: FeatureExtractor,
    segmenter: torch.nn.Module | None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Feature- and image-space metrics (synthetic vs train next to held-out vs train), plus
    image-label agreement and label statistics for segmentation runs."""
    real, hold, syn = inputs.real, inputs.holdout, inputs.synthetic
    out = fidelity_report(
        real.images,
        hold.images,
        syn.images,
        extractor,
        classes_real=real.classes,
        classes_synth=syn.classes,
        classes_holdout=hold.classes,
    )
    out["image_label_agreement"] = None
    out["label_statistics"] = None
    if inputs.task == "segmentation":
        if segmenter is not None:
            out["image_label_agreement"] = _agreement(inputs, config, segmenter, device)
        out["label_statistics"] = compare_label_statistics(
            real.labels, syn.labels, inputs.num_classes
        )
    log.info(
        "fidelity: %s",
        {k: out["feature_space"]["synthetic_vs_train"].get(k) for k in ("fd", "kid_mean")},
    )
    return out
