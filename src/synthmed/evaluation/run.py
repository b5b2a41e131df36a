"""Evaluate one run folder: which data trains the better U-Net on the real test split.

Arms (same U-Net, steps, seeds and validation split; only the training data differ):
``real`` (the generator's own real training pairs) and ``synthetic`` (the exported set).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from synthmed.config.schema import RunConfig
from synthmed.data.pipeline import describe, load_splits
from synthmed.data.synthetic import read_manifest, read_synthetic_arrays
from synthmed.evaluation.utility.segmentation import (
    SegmentationData,
    score_items,
    train_segmenter,
)
from synthmed.training.checkpoint import latest_checkpoint, load_checkpoint
from synthmed.training.data import training_arrays
from synthmed.training.loop import resolve_device


def _aggregate(per_seed: list[dict], n_train: int) -> dict:
    dice = np.array([r["dice_mean"] for r in per_seed], dtype=float)
    hd = np.array([r["hd95_mean"] for r in per_seed], dtype=float)
    return {
        "n_train": n_train,
        "dice_mean": float(np.nanmean(dice)),
        "dice_std": float(np.nanstd(dice)) if len(dice) > 1 else float(per_seed[0]["dice_std"]),
        "dice_std_over": "seeds" if len(dice) > 1 else "test images",
        "hd95_mean": float(np.nanmean(hd)) if np.isfinite(hd).any() else float("nan"),
        "hd95_undefined": int(sum(r["hd95_undefined"] for r in per_seed)),
        "n_images": per_seed[0]["n_images"],
        "seeds": len(per_seed),
        "per_seed": per_seed,
    }


def _run_arm(name, train_data, splits, cfg: RunConfig, num_classes, device, quiet) -> dict:
    ucfg = cfg.evaluate.utility
    roi = tuple(train_data.images.shape[2:])
    per_seed = []
    for seed in ucfg.seeds:
        model, hist = train_segmenter(
            train_data,
            splits["val"],
            ucfg,
            num_classes,
            seed,
            device,
            f"u-net on {name} (seed {seed})",
            quiet,
        )
        scores = score_items(model, splits["test"], num_classes, roi, device)
        per_seed.append({"seed": seed, **hist, **scores})
    return _aggregate(per_seed, len(train_data.images))


def evaluate_run(
    config: RunConfig, run_dir: Path, synth_dir: Path, device: str = "auto", quiet: bool = False
) -> dict:
    """Train U-Nets on real and on synthetic pairs, score both on the real test split."""
    t0 = time.perf_counter()
    dev = resolve_device(device)
    ckpt_path = latest_checkpoint(run_dir)
    ckpt = load_checkpoint(ckpt_path)
    num_classes = int(ckpt["num_classes"])
    splits = load_splits(config.data)
    real_images, real_labels, _ = training_arrays(splits["train"], config.data)
    synth_images, synth_labels = read_synthetic_arrays(synth_dir, config.evaluate.n_synthetic)
    arms = {}
    for name, (x, y) in {
        "real": (real_images, real_labels),
        "synthetic": (synth_images, synth_labels),
    }.items():
        arms[name] = _run_arm(name, SegmentationData(x, y), splits, config, num_classes, dev, quiet)
    manifest = read_manifest(synth_dir)
    seeds = [int(r["seed"]) for r in manifest]
    return {
        "run": run_dir.name,
        "model": ckpt["model_name"],
        "preset": config.preset,
        "synthetic_dir": str(synth_dir),
        "n_training_pairs": int(len(real_images)),
        "pair_shape": list(real_images.shape[1:]),
        "data": {name: describe(items) for name, items in splits.items()},
        "utility": {
            "segmentation": {
                "arms": arms,
                "note": (
                    f"U-Net {list(config.evaluate.utility.channels)}, "
                    f"{config.evaluate.utility.steps} steps, seeds {list(config.evaluate.utility.seeds)}; "
                    "best checkpoint chosen on the real validation split."
                ),
            }
        },
        "provenance": {
            "checkpoint": str(ckpt_path.relative_to(run_dir)),
            "checkpoint_sha256": manifest[0]["checkpoint_sha256"] if manifest else "",
            "config_hash": ckpt["config_hash"],
            "n_synthetic": len(manifest),
            "seeds": f"{min(seeds)}..{max(seeds)}" if seeds else "",
            "generator_steps": int(ckpt["step"]),
            "evaluate_seconds": round(time.perf_counter() - t0, 1),
        },
    }


def load_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())
