"""Known-answer tests for privacy_audit and near_copy_mask on smooth-blob "images".

Stand-in generators: ``verbatim`` returns the training images (shuffled), ``unseen`` returns
real images from the same population that neither the generator nor the audit's held-out set
contains. Train 200 images of 100 patients, held-out 200, 16x16.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthmed.evaluation.fidelity.extractors import EncoderExtractor
from synthmed.evaluation.privacy.audit import near_copy_mask, privacy_audit
from tests.evaluation.images import blobs

N = 200


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    train = blobs(N, 10)
    return {
        "train": train,
        "ids": np.array([f"p{i // 2:03d}" for i in range(N)]),
        "holdout": blobs(N, 11),
        "verbatim": train[np.random.default_rng(0).permutation(N)],
        "unseen": blobs(N, 12),
    }


@pytest.fixture(scope="module")
def audits(data) -> dict[str, dict]:
    encoder = EncoderExtractor(steps=50, seed=0).fit(data["train"])
    return {
        name: privacy_audit(data[name], data["train"], data["ids"], data["holdout"], encoder)
        for name in ("verbatim", "unseen")
    }


@pytest.mark.parametrize("space", ["pixel", "embedding"])
def test_verbatim_generator_is_flagged_and_attackable(audits, space: str) -> None:
    block = audits["verbatim"][space]
    assert block["fraction_flagged"] == 1.0 and block["n_flagged"] == N
    assert block["d_train"]["max"] == pytest.approx(0.0, abs=1e-6)
    assert block["n_patients_reproduced"] == N // 2
    assert block["patients"][0]["n_flagged"] == 2 and block["patients"][0]["min_distance"] < 1e-6
    assert block["membership"]["gan_leaks"]["auc"] > 0.95
    assert block["membership"]["gan_leaks_calibrated"]["auc"] > 0.95
    assert block["membership"]["gan_leaks"]["tpr_at_1pct_fpr"] > 0.9


@pytest.mark.parametrize("space", ["pixel", "embedding"])
def test_unseen_generator_is_not_flagged(audits, space: str) -> None:
    block = audits["unseen"][space]
    assert block["fraction_flagged"] <= 0.10
    assert abs(block["membership"]["gan_leaks"]["auc"] - 0.5) < 0.2
    assert abs(block["membership"]["gan_leaks_calibrated"]["auc"] - 0.5) < 0.2
    assert 0.3 < block["fraction_closer_to_train"] < 0.7


def test_data_copying_statistic_sign(audits) -> None:
    assert audits["verbatim"]["data_copying"]["c_t"] < -3
    assert abs(audits["unseen"]["data_copying"]["c_t"]) < 3
    assert audits["unseen"]["data_copying"]["space"] == "embedding"


def test_report_layout_is_json_ready(audits) -> None:
    rep = audits["unseen"]
    json.dumps(rep, allow_nan=False)
    assert rep["n"] == {"synthetic": N, "train": N, "holdout": N} and rep["n_train_patients"] == 100
    pixel = rep["pixel"]
    assert pixel["distance"] == "1 - NCC" and rep["embedding"]["distance"] == "l2"
    assert len(pixel["closest_pairs"]) == 16 and len(pixel["patients"]) == 20
    pairs = [p["distance"] for p in pixel["closest_pairs"]]
    assert pairs == sorted(pairs) and pairs[0] == pixel["d_train"]["min"]
    assert set(pixel["per_image"]) == {"d_train", "d_holdout", "ratio", "train_index", "flagged"}
    assert len(pixel["per_image"]["flagged"]) == N
    assert rep["membership_logan"] is None and rep["extractor"]["name"] == "encoder"


def test_logan_and_pixel_only(data) -> None:
    critic = {"members": np.linspace(1, 2, 50), "nonmembers": np.linspace(0, 1.01, 50)}
    rep = privacy_audit(
        data["unseen"][:40], data["train"][:60], data["ids"][:60], data["holdout"][:60],
        critic_scores=critic, pixel_size=8,
    )  # fmt: skip
    assert rep["membership_logan"]["auc"] > 0.99 and rep["embedding"] is None
    assert rep["data_copying"]["space"] == "pixel" and rep["data_copying"]["n_cells"] == 2
    with pytest.raises(ValueError, match="patient ids"):
        privacy_audit(data["unseen"], data["train"], data["ids"][:5], data["holdout"])


def test_near_copy_mask_catches_intensity_changed_copies(data) -> None:
    synthetic = np.concatenate([0.5 * data["train"][:10] + 0.2, data["unseen"][:30]])
    mask, threshold = near_copy_mask(synthetic, data["train"], data["holdout"], quantile=0.01)
    assert mask.dtype == bool and mask.shape == (40,)
    assert mask[:10].all() and mask[10:].mean() <= 0.1
    assert 0.0 <= threshold < 0.1
