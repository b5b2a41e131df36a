"""Known-answer tests for synthmed.evaluation.privacy.

The "generators" are stand-ins with a known answer: one returns training images verbatim (plus
1e-6 noise), one returns real images it never trained on, one draws fresh samples from the same
distribution. Train 200, held-out 200, synthetic 100, D = 32 (seeded Gaussian features).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from synthmed.evaluation.privacy import (
    calibrate_copy_threshold,
    data_copying_statistic,
    discriminator_membership_scores,
    distance_membership_scores,
    flag_near_copies,
    kmeans_centroids,
    membership_attack_metrics,
    ncc_distance,
    nearest_ncc_neighbours,
    nearest_neighbours,
    nearest_real_distances,
    normalized_cross_correlation_matrix,
    per_patient_reproduction,
    tpr_at_fpr,
)

D = 32


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    train = rng.standard_normal((200, D))
    holdout = rng.standard_normal((200, D))
    return {
        "train": train,
        "holdout": holdout,
        "copying": train[:100] + 1e-6 * rng.standard_normal((100, D)),
        "fresh": rng.standard_normal((100, D)),
    }


def _brute_force(q: np.ndarray, r: np.ndarray, k: int, metric: str) -> np.ndarray:
    if metric == "cosine":
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        rn = r / np.linalg.norm(r, axis=1, keepdims=True)
        d = 1.0 - qn @ rn.T
    else:
        d = np.linalg.norm(q[:, None] - r[None], axis=2)
    return np.sort(d, axis=1)[:, :k]


# --- nearest neighbours --------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_faiss_and_torch_backends_agree_with_brute_force(metric: str) -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    q, r = rng.standard_normal((50, 16)), rng.standard_normal((300, 16))
    d_f, i_f = nearest_neighbours(q, r, k=5, metric=metric, backend="faiss")
    d_t, i_t = nearest_neighbours(q, r, k=5, metric=metric, backend="torch", chunk_size=7)
    np.testing.assert_array_equal(i_f, i_t)
    np.testing.assert_allclose(d_f, d_t, atol=1e-12)
    np.testing.assert_allclose(d_f, _brute_force(q, r, 5, metric), atol=1e-12)
    assert d_f.dtype == np.float64 and i_f.dtype == np.int64 and d_f.shape == (50, 5)
    assert np.all(np.diff(d_f, axis=1) >= 0)


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_exact_copies_have_distance_zero_and_tensors_are_accepted(backend: str) -> None:
    r = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
    d, i = nearest_neighbours(r[[3, 7]], r, backend=backend)
    np.testing.assert_array_equal(i[:, 0], [3, 7])
    assert np.all(d == 0.0)


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_exclude_self_skips_own_row_but_keeps_duplicates(backend: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 4))
    x[5] = x[9]  # a genuine duplicate at another row
    d, i = nearest_neighbours(x, x, k=2, backend=backend, exclude_self=True)
    assert np.all(i != np.arange(30)[:, None])
    assert i[5, 0] == 9 and i[9, 0] == 5 and d[5, 0] == 0.0
    np.testing.assert_allclose(d[0], np.sort(np.linalg.norm(x[1:] - x[0], axis=1))[:2])


def test_auto_backend_falls_back_to_torch_without_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes "import faiss" raise ImportError
    x = np.random.default_rng(7).standard_normal((20, 5))
    d, i = nearest_neighbours(x[:4] + 1e-9, x, k=2)
    np.testing.assert_array_equal(i[:, 0], np.arange(4))
    with pytest.raises(ImportError, match="faiss-cpu"):
        nearest_neighbours(x, x, backend="faiss")


def test_nearest_neighbours_rejects_bad_input() -> None:
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="feature sizes"):
        nearest_neighbours(x, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="k <="):
        nearest_neighbours(x, x, k=6)
    with pytest.raises(ValueError, match="unknown backend"):
        nearest_neighbours(x, x, backend="annoy")


# --- NCC -----------------------------------------------------------------------------------


def test_ncc_self_is_one_and_invariant_to_affine_intensity() -> None:
    rng = np.random.default_rng(3)
    imgs = rng.random((6, 1, 16, 16))
    ncc = normalized_cross_correlation_matrix(imgs, 2.5 * imgs + 0.3, chunk_size=4)
    np.testing.assert_allclose(np.diag(ncc), 1.0, atol=1e-12)
    assert ncc.shape == (6, 6) and np.all(np.abs(ncc) <= 1.0)
    np.testing.assert_allclose(ncc_distance(imgs, -imgs).diagonal(), 2.0, atol=1e-12)
    np.testing.assert_allclose(ncc[0, 1], np.corrcoef(imgs[0].ravel(), imgs[1].ravel())[0, 1])


def test_nearest_ncc_matches_full_matrix() -> None:
    rng = np.random.default_rng(4)
    refs = rng.random((40, 8, 8))
    queries = 3.0 * refs[[11, 22]] - 1.0 + 1e-3 * rng.standard_normal((2, 8, 8))
    d, i = nearest_ncc_neighbours(queries, refs, k=3)
    full = ncc_distance(queries, refs)
    np.testing.assert_array_equal(i[:, 0], [11, 22])
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :3], atol=1e-9)


# --- memorisation --------------------------------------------------------------------------


def test_copying_generator_is_fully_flagged(data: dict[str, np.ndarray]) -> None:
    thr = calibrate_copy_threshold(data["train"], data["holdout"], quantile=0.01)
    res = nearest_real_distances(data["copying"], data["train"], data["holdout"])
    np.testing.assert_array_equal(res["idx_train"], np.arange(100))
    assert flag_near_copies(res["d_train"], thr).all()
    assert np.all(res["ratio"] < 1e-3)


@pytest.mark.parametrize("source", ["holdout_generator", "fresh"])
def test_generalising_generator_is_almost_never_flagged(
    data: dict[str, np.ndarray], source: str
) -> None:
    # The held-out "generator" uses images not in the calibration half of the held-out set.
    calib = data["holdout"][100:]
    synthetic = data["holdout"][:100] if source == "holdout_generator" else data["fresh"]
    thr = calibrate_copy_threshold(data["train"], calib, quantile=0.01)
    res = nearest_real_distances(synthetic, data["train"], calib)
    assert flag_near_copies(res["d_train"], thr).mean() <= 0.05
    assert 0.8 < np.median(res["ratio"]) < 1.25


def test_per_patient_reproduction_names_the_copied_patient(data: dict[str, np.ndarray]) -> None:
    patient_ids = np.repeat([f"P{p:02d}" for p in range(20)], 10)  # 10 images per patient
    copied = data["train"][70:80] + 1e-6  # all images of patient P07
    synthetic = np.vstack([copied, data["fresh"][:90]])
    thr = calibrate_copy_threshold(data["train"], data["holdout"])
    res = nearest_real_distances(synthetic, data["train"], data["holdout"])
    flags = flag_near_copies(res["d_train"], thr)
    rows = per_patient_reproduction(res["idx_train"], flags, patient_ids, res["d_train"])
    assert len(rows) == 20 and rows[0]["patient_id"] == "P07"
    assert rows[0]["n_flagged"] == 10 and rows[0]["n_train_images"] == 10
    assert rows[0]["min_distance"] < 1e-4
    assert sum(r["n_synthetic_nearest"] for r in rows) == 100
    assert sum(r["n_flagged"] for r in rows[1:]) <= 5  # ~1 % false flags among 90 fresh images


def test_per_patient_reproduction_without_distances() -> None:
    rows = per_patient_reproduction([0, 0, 2], [True, False, False], [7, 7, 9])
    assert [r["patient_id"] for r in rows] == [7, 9]
    assert rows[0] == {
        "patient_id": 7,
        "n_train_images": 2,
        "n_synthetic_nearest": 2,
        "n_flagged": 1,
        "min_distance": None,
    }


# --- membership inference ------------------------------------------------------------------


@pytest.mark.parametrize("calibrated", [False, True])
def test_distance_attack_on_copying_generator_wins(
    data: dict[str, np.ndarray], calibrated: bool
) -> None:
    calib = data["holdout"][100:] if calibrated else None
    members, nonmembers = data["train"][:100], data["holdout"][:100]
    s_in = distance_membership_scores(members, data["copying"], calibration_feats=calib)
    s_out = distance_membership_scores(nonmembers, data["copying"], calibration_feats=calib)
    metrics = membership_attack_metrics(s_in, s_out)
    assert metrics["auc"] > 0.95 and metrics["tpr_at_1pct_fpr"] > 0.9


@pytest.mark.parametrize("calibrated", [False, True])
def test_distance_attack_on_holdout_generator_is_chance(
    data: dict[str, np.ndarray], calibrated: bool
) -> None:
    synthetic, calib = data["holdout"][:100], data["fresh"] if calibrated else None
    members, nonmembers = data["train"][:100], data["holdout"][100:]
    s_in = distance_membership_scores(members, synthetic, k=2, calibration_feats=calib)
    s_out = distance_membership_scores(nonmembers, synthetic, k=2, calibration_feats=calib)
    assert abs(membership_attack_metrics(s_in, s_out)["auc"] - 0.5) < 0.15


def test_attack_metrics_known_answers() -> None:
    lo, hi = np.arange(50.0), np.arange(100.0, 150.0)
    perfect = membership_attack_metrics(hi, lo)
    assert perfect["auc"] == 1.0 and perfect["tpr_at_1pct_fpr"] == 1.0
    assert perfect["balanced_accuracy_best"] == 1.0
    reversed_ = membership_attack_metrics(lo, hi)
    assert reversed_["auc"] == 0.0 and reversed_["tpr_at_10pct_fpr"] == 0.0
    ties = membership_attack_metrics(np.ones(20), np.ones(30))
    assert ties["auc"] == 0.5 and ties["tpr_at_1pct_fpr"] == 0.0
    assert ties["balanced_accuracy_best"] == 0.5
    rng = np.random.default_rng(5)
    same = membership_attack_metrics(rng.standard_normal(2000), rng.standard_normal(2000))
    assert abs(same["auc"] - 0.5) < 0.03 and same["tpr_at_10pct_fpr"] < 0.15


def test_tpr_at_fpr_is_conservative_at_small_n() -> None:
    members = np.array([10.0, 9.0, 5.0, 1.0])
    nonmembers = np.array([8.0, 4.0, 3.0, 2.0, 0.0])  # 5 non-members: FPR steps of 0.2
    assert tpr_at_fpr(members, nonmembers, 0.01) == 0.5  # no false positive allowed
    assert tpr_at_fpr(members, nonmembers, 0.2) == 0.75  # one allowed (score 8)
    assert tpr_at_fpr(members, nonmembers, 0.39) == 0.75
    assert tpr_at_fpr(np.array([8.0, 9.0]), nonmembers, 0.0) == 0.5  # tie at 8 is not counted


def test_discriminator_scores_pass_through() -> None:
    s = discriminator_membership_scores(torch.tensor([[0.5], [2.0]]))
    np.testing.assert_array_equal(s, [0.5, 2.0])
    with pytest.raises(ValueError):
        discriminator_membership_scores(np.array([np.nan]))


# --- data copying (Meehan et al. 2020) -----------------------------------------------------


def test_data_copying_statistic_detects_copying(data: dict[str, np.ndarray]) -> None:
    res = data_copying_statistic(data["train"], data["holdout"], data["copying"], n_cells=5)
    assert res["c_t"] < -3
    kept = np.isfinite(res["z_per_cell"])
    assert kept.any() and np.all(res["z_per_cell"][kept] < 0)
    np.testing.assert_allclose(res["cell_weights"].sum(), 1.0)
    assert np.all(res["cell_weights"][~kept] == 0)
    assert res["n_generated_per_cell"].sum() == 100 and res["n_test_per_cell"].sum() == 200


@pytest.mark.parametrize("source", ["fresh", "holdout_generator"])
def test_data_copying_statistic_near_zero_without_copying(
    data: dict[str, np.ndarray], source: str
) -> None:
    synthetic = data["fresh"] if source == "fresh" else data["holdout"][:100]
    test = data["holdout"][100:] if source == "holdout_generator" else data["holdout"]
    res = data_copying_statistic(data["train"], test, synthetic, n_cells=5)
    assert abs(res["c_t"]) < 2.5


def test_data_copying_without_eligible_cells_is_nan(data: dict[str, np.ndarray]) -> None:
    res = data_copying_statistic(data["train"], data["holdout"], data["fresh"][:5], n_cells=3)
    assert np.isnan(res["c_t"]) and np.all(res["cell_weights"] == 0)


def test_kmeans_is_seeded_and_finds_separated_clusters() -> None:
    rng = np.random.default_rng(6)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.vstack([c + 0.1 * rng.standard_normal((30, 2)) for c in centres])
    c1, c2 = kmeans_centroids(x, 3, seed=1), kmeans_centroids(x, 3, seed=1)
    np.testing.assert_array_equal(c1, c2)
    found = c1[np.argsort(c1[:, 0] * 100 + c1[:, 1])]
    np.testing.assert_allclose(found, centres[[0, 2, 1]], atol=0.1)
