"""The privacy section of metrics.json: near-copies, reproduced patients, membership, data copying.

Each synthetic image is compared with its nearest REAL TRAINING image and its nearest REAL
HELD-OUT image, in pixel space (1 - NCC after per-image standardisation, so brightness and
contrast changes do not hide a copy) and, when an extractor is given, in its embedding space
(L2). Held-out images calibrate everything: the copy threshold is the ``quantile`` of held-out-
to-training distances, membership attacks must tell training images from held-out ones, and the
Meehan et al. 2020 test compares synthetic-to-training with held-out-to-training distances.

The held-out set must be real images the generator never saw AND that are not themselves among
the synthetic outputs; the validation or test split of the real data is what to pass.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from synthmed.determinism import seed_everything
from synthmed.evaluation.fidelity.extractors import (
    FeatureExtractor,
    ImageArray,
    as_image_tensor,
    resize,
)
from synthmed.evaluation.fidelity.suite import summarize, to_jsonable
from synthmed.evaluation.privacy.data_copying import data_copying_statistic
from synthmed.evaluation.privacy.membership import (
    discriminator_membership_scores,
    distance_membership_scores,
    membership_attack_metrics,
)
from synthmed.evaluation.privacy.memorization import (
    calibrate_copy_threshold,
    flag_near_copies,
    nearest_real_distances,
    per_patient_reproduction,
)
from synthmed.evaluation.privacy.neighbours import Backend, Metric, nearest_neighbours
from synthmed.evaluation.privacy.similarity import standardize_images

log = logging.getLogger(__name__)

# A feature space: (synthetic, train, holdout) matrices and the distance they are compared with.
Space = tuple[np.ndarray, np.ndarray, np.ndarray, Metric]


def _pixel_rows(images: ImageArray, pixel_size: int | None) -> np.ndarray:
    """Standardised (zero-mean, unit-norm) pixel rows; cosine distance between them = 1 - NCC."""
    x = as_image_tensor(images).cpu()
    if pixel_size is not None:
        x = resize(x, (pixel_size,) * (x.ndim - 2))
    return standardize_images(x)


def pixel_space(
    synthetic: ImageArray, train: ImageArray, holdout: ImageArray, pixel_size: int | None = None
) -> Space:
    """NCC space: cosine distance of standardised images, exactly ``1 - NCC``.

    Args:
        pixel_size: Optional side to area-downsample to first; full resolution by default
            (the rows are float64, so N x pixels x 8 bytes per set).
    """
    rows = [_pixel_rows(x, pixel_size) for x in (synthetic, train, holdout)]
    return rows[0], rows[1], rows[2], "cosine"


def near_copy_mask(
    synthetic_images: ImageArray,
    train_images: ImageArray,
    holdout_images: ImageArray,
    quantile: float = 0.01,
    backend: Backend = "auto",
    pixel_size: int | None = None,
) -> tuple[np.ndarray, float]:
    """Which synthetic images are near-copies of a training image (for ``--exclude-near-copies``).

    Args:
        synthetic_images: (M, C, *S) in [0, 1].
        train_images: (N, C, *S) the generator's real training images.
        holdout_images: (H, C, *S) real images it never saw (calibrate the threshold).
        quantile: Share of held-out images that the threshold would flag (false-flag rate).
        backend: Nearest-neighbour backend.
        pixel_size: Optional downsampling side (see :func:`pixel_space`).

    Returns:
        (M,) bool mask (True = near-copy, drop it) and the 1 - NCC threshold used.
    """
    syn, train, hold, metric = pixel_space(
        synthetic_images, train_images, holdout_images, pixel_size
    )
    threshold = calibrate_copy_threshold(train, hold, quantile, metric, backend)
    d = nearest_real_distances(syn, train, hold, metric, backend)["d_train"]
    return flag_near_copies(d, threshold), threshold


def _split_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def _log_distance(queries: np.ndarray, refs: np.ndarray, metric: Metric, backend: Backend):
    d, _ = nearest_neighbours(queries, refs, 1, metric, backend)
    return np.log(d[:, 0] + 1e-12)  # the floor keeps exact copies finite (and ranked first)


def distance_membership(space: Space, seed: int = 0, backend: Backend = "auto") -> dict[str, Any]:
    """GAN-Leaks black-box attack: training images (members) vs held-out images (non-members).

    ``gan_leaks``: score = -distance to the nearest synthetic image (Chen et al. 2020), all
    held-out images as non-members. ``gan_leaks_calibrated``: the held-out set is split in half
    (seeded); one half are the non-member candidates, the other a reference set of known
    non-members, and score = log(d_ref / d_syn): "closer to the synthetic data than to real data
    it was not trained on". This removes "the candidate sits in a dense region" from the score.
    A ratio rather than GAN-Leaks' difference d_ref - d_syn because the difference is in
    distance units, so candidates in sparse regions dominate it (a verbatim copier then scores
    only ~0.8 AUC instead of 1). The reference half must not contain the candidates.
    """
    syn, train, hold, metric = space
    kw = {"metric": metric, "backend": backend}
    out = {
        "gan_leaks": membership_attack_metrics(
            distance_membership_scores(train, syn, **kw),
            distance_membership_scores(hold, syn, **kw),
        ),
        "gan_leaks_calibrated": None,
    }
    if hold.shape[0] >= 4:
        cand, ref = _split_halves(hold.shape[0], seed)

        def score(x: np.ndarray) -> np.ndarray:
            return _log_distance(x, hold[ref], metric, backend) - _log_distance(
                x, syn, metric, backend
            )

        out["gan_leaks_calibrated"] = membership_attack_metrics(score(train), score(hold[cand]))
        out["gan_leaks_calibrated"]["n_reference"] = int(ref.size)
    return out


def _closest_pairs(d: dict[str, np.ndarray], ids: np.ndarray, n_pairs: int) -> list[dict]:
    order = np.argsort(d["d_train"], kind="stable")[:n_pairs]
    return [
        {
            "synthetic_index": int(i),
            "train_index": int(d["idx_train"][i]),
            "patient_id": ids[d["idx_train"][i]],
            "distance": float(d["d_train"][i]),
        }
        for i in order
    ]


def memorization_block(
    space: Space,
    patient_ids: np.ndarray,
    quantile: float,
    top_patients: int = 20,
    n_pairs: int = 16,
    backend: Backend = "auto",
) -> dict[str, Any]:
    """Nearest train/held-out distances, calibrated near-copy flags and reproduced patients."""
    syn, train, hold, metric = space
    d = nearest_real_distances(syn, train, hold, metric, backend)
    threshold = calibrate_copy_threshold(train, hold, quantile, metric, backend)
    flags = flag_near_copies(d["d_train"], threshold)
    patients = per_patient_reproduction(d["idx_train"], flags, patient_ids, d["d_train"])
    return {
        "distance": "1 - NCC" if metric == "cosine" else metric,
        "d_train": summarize(d["d_train"]),
        "d_holdout": summarize(d["d_holdout"]),
        "ratio": summarize(d["ratio"]),
        "fraction_closer_to_train": float((d["d_train"] < d["d_holdout"]).mean()),
        "threshold": threshold,
        "n_flagged": int(flags.sum()),
        "fraction_flagged": float(flags.mean()),
        "n_patients_reproduced": int(sum(p["n_flagged"] > 0 for p in patients)),
        "patients": patients[:top_patients],
        "closest_pairs": _closest_pairs(d, patient_ids, n_pairs),
        "per_image": {
            "d_train": d["d_train"],
            "d_holdout": d["d_holdout"],
            "ratio": d["ratio"],
            "train_index": d["idx_train"],
            "flagged": flags,
        },
    }


def _pca(train: np.ndarray, others: Sequence[np.ndarray], dim: int, seed: int) -> list[np.ndarray]:
    """Project onto the top ``dim`` principal axes of ``train`` (randomised SVD, seeded)."""
    if train.shape[1] <= dim:
        return [train, *others]
    t = torch.from_numpy(train).double()
    mean = t.mean(0, keepdim=True)
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed)
        _, _, v = torch.svd_lowrank(t - mean, q=min(dim, *t.shape), niter=4)
    return [((torch.from_numpy(x).double() - mean) @ v).numpy() for x in (train, *others)]


def data_copying_block(
    space: Space, n_cells: int, seed: int, min_generated: int = 20, pca_dim: int = 64
) -> dict[str, Any]:
    """Meehan et al. 2020 C_T on ``pca_dim`` principal components (as the authors reduce).

    The number of cells is lowered so that each can hold ``min_generated`` synthetic samples on
    average (the test skips emptier cells); the count used is reported.
    """
    syn, train, hold, _ = space
    cells = int(max(1, min(n_cells, syn.shape[0] // min_generated, train.shape[0])))
    tr, ho, sy = _pca(train, (hold, syn), pca_dim, seed)
    stat = data_copying_statistic(tr, ho, sy, n_cells=cells, seed=seed, min_generated=min_generated)
    return {**stat, "n_cells": cells, "pca_dim": int(tr.shape[1])}


def _logan(critic_scores: dict[str, Any] | None) -> dict[str, Any] | None:
    if critic_scores is None:
        return None
    members = discriminator_membership_scores(critic_scores["members"])
    nonmembers = discriminator_membership_scores(critic_scores["nonmembers"])
    return membership_attack_metrics(members, nonmembers)


def privacy_audit(
    synthetic_images: ImageArray,
    train_images: ImageArray,
    train_patient_ids: Sequence[Any] | np.ndarray,
    holdout_images: ImageArray,
    extractor: FeatureExtractor | None = None,
    critic_scores: dict[str, Any] | None = None,
    quantile: float = 0.01,
    n_cells: int = 10,
    seed: int = 0,
    pixel_size: int | None = None,
    backend: Backend = "auto",
) -> dict[str, Any]:
    """Full privacy audit of a synthetic image set against its generator's training data.

    Args:
        synthetic_images: (M, C, *S) synthetic images in [0, 1].
        train_images: (N, C, *S) the generator's REAL TRAINING images (all of them).
        train_patient_ids: (N,) patient of each training image, for "which patients are
            reproduced?".
        holdout_images: (H, C, *S) real images of other patients the generator never saw.
        extractor: Optional FITTED feature extractor (fitted on train only) for embedding space.
        critic_scores: Optional ``{"members": (A,), "nonmembers": (B,)}`` raw discriminator
            outputs on training and held-out images (LOGAN attack).
        quantile: False-flag rate of the copy threshold, calibrated on held-out-to-train distances.
        n_cells: k-means cells of the data-copying test (lowered for small M).
        seed: Seed of the held-out split, k-means and PCA.
        pixel_size: Optional downsampling side before NCC (memory); full resolution by default.
        backend: Nearest-neighbour backend.

    Returns:
        JSON-ready dict: ``n``, ``quantile``, ``pixel`` and ``embedding`` (None without an
        extractor) each with memorisation results and ``membership``; ``membership_logan``;
        ``data_copying`` (in embedding space if available, else pixel space); ``extractor``.
    """
    ids = np.asarray(train_patient_ids)
    if ids.shape[0] != len(train_images):
        raise ValueError(f"{ids.shape[0]} patient ids for {len(train_images)} training images")
    spaces = {"pixel": pixel_space(synthetic_images, train_images, holdout_images, pixel_size)}
    if extractor is not None:
        feats = [extractor.embed(x).double().numpy() for x in (synthetic_images, train_images)]
        hold = extractor.embed(holdout_images).double().numpy()
        spaces["embedding"] = (feats[0], feats[1], hold, "l2")
    report: dict[str, Any] = {
        "n": {
            "synthetic": len(synthetic_images),
            "train": len(ids),
            "holdout": len(holdout_images),
        },
        "n_train_patients": int(np.unique(ids).size),
        "quantile": quantile,
        "extractor": None if extractor is None else extractor.describe(),
        "embedding": None,
    }
    for name, space in spaces.items():
        block = memorization_block(space, ids, quantile, backend=backend)
        block["membership"] = distance_membership(space, seed, backend)
        report[name] = block
    copy_space = "embedding" if extractor is not None else "pixel"
    report["data_copying"] = {
        "space": copy_space,
        **data_copying_block(spaces[copy_space], n_cells, seed),
    }
    report["membership_logan"] = _logan(critic_scores)
    return to_jsonable(report)
