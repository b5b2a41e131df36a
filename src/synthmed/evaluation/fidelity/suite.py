"""The fidelity section of metrics.json: feature- and image-space metrics with a real reference.

Every synthetic-vs-real number comes with the same number for HELD-OUT real images vs the same
real training images. At small n, FD and PRDC are biased and KID is noisy; the held-out row shows
what "as good as real data" scores at this sample size, so a reader can judge the synthetic row.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from synthmed.evaluation.fidelity.diversity import (
    intensity_histogram_distance,
    ms_ssim_diversity,
    sliced_wasserstein_distance,
)
from synthmed.evaluation.fidelity.extractors import (
    FeatureExtractor,
    ImageArray,
    PixelExtractor,
    as_image_tensor,
)
from synthmed.evaluation.fidelity.metrics import (
    frechet_distance,
    kernel_inception_distance,
    precision_recall_density_coverage,
)

log = logging.getLogger(__name__)

_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_SET_NAMES = {"t": "train", "h": "holdout", "s": "synthetic"}


def to_jsonable(obj: Any) -> Any:
    """Recursively turn NumPy/torch values into JSON types; NaN and +-inf become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def summarize(values: Any) -> dict[str, float | int | None]:
    """n, mean, std, min, 5/25/50/75/95 % quantiles and max of the finite values (None if none)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    out: dict[str, float | int | None] = {
        "n": int(v.size),
        "n_nonfinite": int(v.size - finite.size),
    }
    if finite.size == 0:
        return out | dict.fromkeys(
            ("mean", "std", "min", "q05", "q25", "median", "q75", "q95", "max")
        )
    qs = np.quantile(finite, _QUANTILES)
    return out | {
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite.min()),
        **{k: float(q) for k, q in zip(("q05", "q25", "median", "q75", "q95"), qs, strict=True)},
        "max": float(finite.max()),
    }


def subsample_indices(n: int, max_n: int, seed: int) -> np.ndarray:
    """Sorted seeded draw of ``min(n, max_n)`` row indices (all rows, in order, if n <= max_n)."""
    if n <= max_n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:max_n])


def feature_metrics(
    real: Tensor, other: Tensor, k: int = 5, kid_subset: int = 100, seed: int = 0
) -> dict[str, float | None]:
    """FD, KID (mean/std) and PRDC of ``other`` against ``real``; None where n is too small.

    FD and KID need 2 rows per set, PRDC needs more than ``k``; per-class sets are often tiny.
    """
    n = min(real.shape[0], other.shape[0])
    out: dict[str, float | None] = {"fd": None, "kid_mean": None, "kid_std": None}
    out |= dict.fromkeys(("precision", "recall", "density", "coverage"))
    if n >= 2:
        out["fd"] = frechet_distance(real, other)
        out |= kernel_inception_distance(real, other, subset_size=kid_subset, seed=seed)
    if n > k:
        out |= precision_recall_density_coverage(real, other, k=k)
    return out


def _diversity(images: Tensor, n_pairs: int, seed: int) -> float | None:
    """MS-SSIM diversity, or None when there are < 2 images or they are smaller than the window."""
    if images.shape[0] < 2 or min(images.shape[2:]) < 11:
        return None
    return ms_ssim_diversity(images, n_pairs=n_pairs, seed=seed)


def image_metrics(
    train: Tensor, holdout: Tensor, synthetic: Tensor, n_pairs: int = 100, seed: int = 0
) -> dict[str, Any]:
    """Image-space block: MS-SSIM diversity per set, histogram distance, SWD on pooled pixels."""
    pixels = PixelExtractor()
    px = {name: pixels.embed(x) for name, x in (("t", train), ("h", holdout), ("s", synthetic))}
    return {
        "ms_ssim_diversity": {
            "synthetic": _diversity(synthetic, n_pairs, seed),
            "real_train": _diversity(train, n_pairs, seed),
            "real_holdout": _diversity(holdout, n_pairs, seed),
        },
        "histogram_distance": {
            "synthetic_vs_train": intensity_histogram_distance(train, synthetic),
            "holdout_vs_train": intensity_histogram_distance(train, holdout),
        },
        "swd_pixels": {
            "synthetic_vs_train": sliced_wasserstein_distance(px["t"], px["s"], seed=seed),
            "holdout_vs_train": sliced_wasserstein_distance(px["t"], px["h"], seed=seed),
            "pooled_to": 16 if train.ndim == 4 else 8,
        },
    }


def _feature_block(
    f_train: Tensor, f_hold: Tensor, f_syn: Tensor, k: int, kid_subset: int, seed: int
) -> dict[str, Any]:
    """Synthetic vs train, held-out vs train, and synthetic at the held-out n (same FD bias)."""
    block = {
        "synthetic_vs_train": feature_metrics(f_train, f_syn, k, kid_subset, seed),
        "holdout_vs_train": feature_metrics(f_train, f_hold, k, kid_subset, seed),
    }
    if f_syn.shape[0] > f_hold.shape[0] >= 2:
        idx = torch.as_tensor(subsample_indices(f_syn.shape[0], f_hold.shape[0], seed + 1))
        matched = feature_metrics(f_train, f_syn[idx], k, kid_subset, seed)
        block["synthetic_vs_train_at_holdout_n"] = matched
    return block


def _per_class(
    feats: dict[str, Tensor],
    images: dict[str, Tensor],
    classes: dict[str, np.ndarray | None],
    settings: dict[str, int],
) -> dict[str, Any]:
    """Feature metrics and intra-class MS-SSIM diversity for each class in train and synthetic."""
    shared = sorted(set(classes["t"].tolist()) & set(classes["s"].tolist()))
    out = {}
    for c in shared:
        sel = {key: torch.as_tensor(cl == c) for key, cl in classes.items() if cl is not None}
        f = {key: feats[key][m] for key, m in sel.items()}
        row: dict[str, Any] = {"n": {_SET_NAMES[key]: int(m.sum()) for key, m in sel.items()}}
        row["synthetic_vs_train"] = feature_metrics(
            f["t"], f["s"], settings["k"], settings["kid_subset"], settings["seed"]
        )
        if "h" in f:
            row["holdout_vs_train"] = feature_metrics(
                f["t"], f["h"], settings["k"], settings["kid_subset"], settings["seed"]
            )
        row["ms_ssim_diversity"] = {
            "synthetic": _diversity(images["s"][sel["s"]], settings["n_pairs"], settings["seed"]),
            "real_train": _diversity(images["t"][sel["t"]], settings["n_pairs"], settings["seed"]),
        }
        out[str(int(c))] = row
    return out


def _subsample(x: Tensor, classes: Any, max_n: int, seed: int) -> tuple[Tensor, np.ndarray | None]:
    idx = subsample_indices(x.shape[0], max_n, seed)
    if isinstance(classes, Tensor):
        classes = classes.detach().cpu().numpy()
    cls = None if classes is None else np.asarray(classes).reshape(-1)[idx]
    return x[torch.as_tensor(idx)], cls


def fidelity_report(
    real_train: ImageArray,
    real_holdout: ImageArray,
    synthetic: ImageArray,
    extractor: FeatureExtractor,
    classes_real: Any = None,
    classes_synth: Any = None,
    classes_holdout: Any = None,
    seed: int = 0,
    max_n: int = 2000,
    k: int = 5,
    kid_subset: int = 100,
    n_pairs: int = 100,
) -> dict[str, Any]:
    """Fidelity of a synthetic image set, with held-out real data as the "as good as real" row.

    Args:
        real_train: (N, C, *S) real training images in [0, 1] (the generator's training data,
            also what a learned extractor was fitted on).
        real_holdout: (H, C, *S) real images neither the generator nor the extractor saw.
        synthetic: (M, C, *S) synthetic images in [0, 1].
        extractor: A FITTED feature extractor (e.g. :func:`load_or_fit_encoder` on real_train).
        classes_real, classes_synth, classes_holdout: Optional (N,), (M,), (H,) integer image
            classes; with the first two, per-class metrics are added (held-out reference too
            when ``classes_holdout`` is given).
        seed: Seed of subsampling, KID subsets, MS-SSIM pairs and SWD directions.
        max_n: Each set is subsampled (seeded, without replacement) to at most this many images.
        k: PRDC neighbour rank.
        kid_subset: KID subset size.
        n_pairs: MS-SSIM image pairs per set.

    Returns:
        JSON-ready dict: ``n``, ``extractor`` (its description), ``feature_space`` (FD, KID,
        PRDC for synthetic_vs_train, holdout_vs_train and, when M > H, synthetic subsampled to
        H), ``image_space`` (MS-SSIM diversity per set, histogram distance, pixel SWD) and
        ``per_class`` (or None).
    """
    train, cls_t = _subsample(as_image_tensor(real_train), classes_real, max_n, seed)
    hold, cls_h = _subsample(as_image_tensor(real_holdout), classes_holdout, max_n, seed + 1)
    syn, cls_s = _subsample(as_image_tensor(synthetic), classes_synth, max_n, seed + 2)
    feats = {"t": extractor.embed(train), "h": extractor.embed(hold), "s": extractor.embed(syn)}
    report: dict[str, Any] = {
        "n": {"train": train.shape[0], "holdout": hold.shape[0], "synthetic": syn.shape[0]},
        "extractor": extractor.describe(),
        "feature_dim": int(feats["t"].shape[1]),
        "feature_space": _feature_block(feats["t"], feats["h"], feats["s"], k, kid_subset, seed),
        "image_space": image_metrics(train, hold, syn, n_pairs, seed),
        "per_class": None,
    }
    if cls_t is not None and cls_s is not None:
        settings = {"k": k, "kid_subset": kid_subset, "seed": seed, "n_pairs": n_pairs}
        images = {"t": train, "h": hold, "s": syn}
        classes = {"t": cls_t, "h": cls_h, "s": cls_s}
        report["per_class"] = _per_class(feats, images, classes, settings)
    return to_jsonable(report)
