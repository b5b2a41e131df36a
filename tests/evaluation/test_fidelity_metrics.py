"""Known-answer tests for the pure fidelity metrics."""

from __future__ import annotations

import math

import monai.metrics  # noqa: F401  (diversity imports it lazily; pay the ~2 s at collection)
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from synthmed.evaluation.fidelity import (
    METRICS,
    frechet_distance,
    frechet_distance_from_stats,
    intensity_histogram_distance,
    kernel_inception_distance,
    mmd2_unbiased,
    ms_ssim_diversity,
    ms_ssim_weights,
    per_class,
    precision_recall_density_coverage,
    sliced_wasserstein_distance,
)
from synthmed.evaluation.fidelity import metrics as metrics_module


def gaussian(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=torch.float64) + shift


def whitened(n: int, d: int, seed: int) -> torch.Tensor:
    """Samples whose sample mean is exactly 0 and unbiased sample covariance exactly I."""
    x = gaussian(n, d, seed)
    x = x - x.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov(x.T))
    return x @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T


# ---------------------------------------------------------------- Frechet distance


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = gaussian(200, 16, seed=0)
    assert abs(frechet_distance(x, x)) < 1e-6


def test_frechet_distance_matches_closed_form_for_exact_sample_statistics():
    # Real: mean 0, cov I. Fake: mean m, cov diag(s). FD = ||m||^2 + sum (1 - sqrt(s))^2.
    d = 8
    mean = torch.linspace(-1.0, 2.0, d, dtype=torch.float64)
    scale = torch.linspace(0.25, 4.0, d, dtype=torch.float64)
    real = whitened(200, d, seed=1)
    fake = whitened(300, d, seed=2) * scale.sqrt() + mean
    expected = float(mean @ mean + ((1 - scale.sqrt()) ** 2).sum())
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_identity_covariances_mean_shift_is_squared_norm():
    real = whitened(200, 16, seed=3)
    shift = torch.full((16,), 0.5, dtype=torch.float64)
    assert frechet_distance(real, real + shift) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_frechet_distance_from_stats_matches_scipy_sqrtm_formula():
    gen = torch.Generator().manual_seed(4)
    a, b = (torch.randn(6, 6, generator=gen, dtype=torch.float64) for _ in range(2))
    s1, s2 = a @ a.T + 0.1 * torch.eye(6), b @ b.T + 0.1 * torch.eye(6)
    mu1, mu2 = torch.randn(6, generator=gen, dtype=torch.float64), torch.zeros(6)
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    diff = (mu1 - mu2).numpy()
    expected = diff @ diff + np.trace(s1.numpy() + s2.numpy() - 2 * covmean)
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_one_dimensional_is_mean_and_std_gap():
    real, fake = gaussian(50, 1, seed=5), gaussian(70, 1, seed=6, shift=1.0) * 2
    expected = (real.mean() - fake.mean()) ** 2 + (real.std() - fake.std()) ** 2
    assert frechet_distance(real, fake) == pytest.approx(float(expected), rel=1e-9)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(2, 40),
    m=st.integers(2, 40),
    d=st.integers(1, 8),
    seed=st.integers(0, 10_000),
    shift=st.floats(-3, 3),
)
def test_frechet_distance_is_nonnegative_and_symmetric(n, m, d, seed, shift):
    real, fake = gaussian(n, d, seed), gaussian(m, d, seed + 1, shift)
    forward, backward = frechet_distance(real, fake), frechet_distance(fake, real)
    assert forward >= 0
    # rank-deficient covariances (n <= d) leave ~1e-7 relative round-off in the matrix sqrt
    assert forward == pytest.approx(backward, rel=1e-5, abs=1e-7)


def test_frechet_distance_rejects_bad_shapes():
    with pytest.raises(ValueError):
        frechet_distance(gaussian(1, 4, 0), gaussian(5, 4, 0))
    with pytest.raises(ValueError):
        frechet_distance(gaussian(5, 4, 0), gaussian(5, 3, 0))


# ---------------------------------------------------------------- MMD / KID


def test_mmd2_unbiased_with_linear_kernel_has_closed_form():
    # Linear kernel: MMD_u^2 = ||mean_x - mean_y||^2 - tr(cov_x)/n - tr(cov_y)/m.
    x, y = gaussian(30, 5, seed=7), gaussian(40, 5, seed=8, shift=0.3)
    expected = (x.mean(0) - y.mean(0)).pow(2).sum()
    expected -= torch.trace(torch.cov(x.T)) / 30 + torch.trace(torch.cov(y.T)) / 40
    value = mmd2_unbiased(x, y, kernel=lambda a, b: a @ b.T)
    assert value == pytest.approx(float(expected), rel=1e-9)


def test_kid_of_a_set_with_itself_is_the_known_small_negative_bias():
    # The estimator assumes independent sets; for a set against itself (whole set per subset)
    # it equals -2 (mean diag K - mean off-diag K) / N exactly: small next to any real gap.
    x = gaussian(200, 16, seed=9)
    kernel = (x @ x.T / 16 + 1) ** 3
    diag, off = kernel.diagonal().mean(), (kernel.sum() - kernel.diagonal().sum()) / (200 * 199)
    kid = kernel_inception_distance(x, x, subset_size=200, n_subsets=3)
    assert kid["kid_mean"] == pytest.approx(float(-2 * (diag - off) / 200), rel=1e-9)
    assert kid["kid_std"] == pytest.approx(0.0, abs=1e-12)
    shifted = kernel_inception_distance(x, x + 1.0, n_subsets=10)["kid_mean"]
    assert abs(kernel_inception_distance(x, x, n_subsets=10)["kid_mean"]) < 0.05 * shifted


def test_kid_separates_held_out_real_from_shifted_and_noise():
    real, held_out = gaussian(200, 16, seed=10), gaussian(200, 16, seed=11)
    noise = torch.rand(200, 16, generator=torch.Generator().manual_seed(12)) * 6 - 3
    same = kernel_inception_distance(real, held_out, n_subsets=20)
    shifted = kernel_inception_distance(real, gaussian(200, 16, seed=13, shift=1.0), n_subsets=20)
    uniform = kernel_inception_distance(real, noise, n_subsets=20)
    assert abs(same["kid_mean"]) < 0.05 * shifted["kid_mean"]
    assert abs(same["kid_mean"]) < 0.05 * uniform["kid_mean"]
    assert all(r["kid_std"] >= 0 for r in (same, shifted, uniform))


def test_kid_is_deterministic_given_seed_and_clips_subset_size():
    real, fake = gaussian(60, 8, seed=14), gaussian(50, 8, seed=15, shift=0.2)
    first = kernel_inception_distance(real, fake, subset_size=1000, n_subsets=5, seed=3)
    assert first == kernel_inception_distance(real, fake, subset_size=1000, n_subsets=5, seed=3)
    other = kernel_inception_distance(real, fake, subset_size=20, n_subsets=5, seed=4)
    assert other != kernel_inception_distance(real, fake, subset_size=20, n_subsets=5, seed=5)


# ---------------------------------------------------------------- PRDC


def test_prdc_of_identical_sets():
    # Every real ball holds its own centre plus k neighbours, so density is exactly (k + 1) / k.
    x = gaussian(200, 16, seed=16)
    result = precision_recall_density_coverage(x, x, k=5)
    assert result["precision"] == result["recall"] == result["coverage"] == 1.0
    assert result["density"] == pytest.approx(6 / 5)


def test_prdc_of_collapsed_fakes_has_low_recall_and_coverage():
    real = gaussian(200, 16, seed=17)
    repeated = real[:1].repeat(200, 1)
    near_one = real[:1] + 0.01 * gaussian(200, 16, seed=18)
    for fake in (repeated, near_one):
        result = precision_recall_density_coverage(real, fake, k=5)
        assert result["precision"] > 0.9
        assert result["recall"] <= 0.05
        assert result["coverage"] <= 0.1  # ~k/N on average; 1.0 for a matching set


def test_prdc_of_far_away_fakes_is_zero():
    real = gaussian(200, 16, seed=19)
    result = precision_recall_density_coverage(real, gaussian(200, 16, seed=20, shift=100.0))
    assert result == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_does_not_depend_on_chunk_size(monkeypatch):
    real, fake = gaussian(150, 8, seed=21), gaussian(120, 8, seed=22, shift=0.3)
    whole = precision_recall_density_coverage(real, fake, k=3)
    monkeypatch.setattr(metrics_module, "_CHUNK", 7)
    assert precision_recall_density_coverage(real, fake, k=3) == pytest.approx(whole)
    assert 0 < whole["precision"] < 1 and 0 < whole["coverage"] < 1


# ---------------------------------------------------------------- MS-SSIM diversity


def blob_images(n: int, channels: int, size: int, seed: int) -> torch.Tensor:
    """Smooth images: a bright disc of random centre/radius on a random gradient."""
    gen = torch.Generator().manual_seed(seed)
    coords = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    params = torch.rand(n, 6, generator=gen)
    images = []
    for cy, cx, r, gy, gx, level in params:
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < (0.1 + 0.3 * r) ** 2).float()
        background = 0.3 * (gy * yy + gx * xx) / 2
        images.append(0.5 * disc * (0.5 + level) + background)
    image = torch.stack(images)[:, None].clamp(0, 1)
    return image.repeat(1, channels, 1, 1)


@pytest.mark.parametrize(("channels", "size"), [(1, 32), (1, 64), (3, 64), (3, 32)])
def test_ms_ssim_diversity_orders_repeated_natural_and_noise(channels, size):
    natural = blob_images(24, channels, size, seed=23)
    noise = torch.rand(24, channels, size, size, generator=torch.Generator().manual_seed(24))
    repeated = natural[:1].repeat(24, 1, 1, 1)
    high, mid, low = (ms_ssim_diversity(s, n_pairs=40) for s in (repeated, natural, noise))
    assert high > 0.99
    assert low < 0.3
    assert low < mid < high


def test_ms_ssim_diversity_supports_3d_and_is_deterministic():
    volumes = torch.rand(6, 1, 16, 16, 16, generator=torch.Generator().manual_seed(25))
    smooth = F.avg_pool3d(volumes, 3, stride=1, padding=1)
    assert ms_ssim_diversity(smooth, n_pairs=5, seed=1) == ms_ssim_diversity(smooth, 5, seed=1)
    assert ms_ssim_diversity(smooth[:1].repeat(4, 1, 1, 1, 1), n_pairs=5) > 0.99


def test_ms_ssim_weights_per_size():
    assert ms_ssim_weights((16, 16)) == (1.0,)
    assert len(ms_ssim_weights((32, 32))) == 2
    assert len(ms_ssim_weights((64, 48))) == 3
    assert len(ms_ssim_weights((128, 128))) == 4
    assert len(ms_ssim_weights((256, 256))) == 5
    assert math.isclose(sum(ms_ssim_weights((64, 64))), 1.0)
    with pytest.raises(ValueError):
        ms_ssim_weights((8, 8))


# ---------------------------------------------------------------- histogram distance and SWD


def test_histogram_distance_is_zero_for_identical_sets_and_tracks_shift():
    images = blob_images(8, 1, 32, seed=26) * 0.5 + 0.1
    assert intensity_histogram_distance(images, images.clone()) == 0.0
    gaps = [intensity_histogram_distance(images, images + t) for t in (0.0625, 0.125, 0.25)]
    assert gaps == pytest.approx([0.0625, 0.125, 0.25], abs=1 / 64)
    assert gaps[0] < gaps[1] < gaps[2]


def test_sliced_wasserstein_matches_scipy_in_one_dimension():
    # In 1D every projection is +-1 and W1 is sign-invariant, so SWD is the exact W1.
    real, fake = gaussian(40, 1, seed=27), gaussian(55, 1, seed=28, shift=0.7)
    expected = scipy.stats.wasserstein_distance(real[:, 0].numpy(), fake[:, 0].numpy())
    assert sliced_wasserstein_distance(real, fake, n_projections=8) == pytest.approx(expected)


def test_sliced_wasserstein_zero_for_identical_grows_with_shift_and_is_seeded():
    images = blob_images(30, 1, 16, seed=29)
    assert sliced_wasserstein_distance(images, images.clone()) == pytest.approx(0.0, abs=1e-12)
    small = sliced_wasserstein_distance(images, images + 0.05, seed=1)
    large = sliced_wasserstein_distance(images, images + 0.2, seed=1)
    assert 0 < small < large
    assert small == sliced_wasserstein_distance(images, images + 0.05, seed=1)


# ---------------------------------------------------------------- per-class and registry


def test_per_class_returns_one_entry_per_shared_class():
    real, fake = gaussian(90, 4, seed=30), gaussian(60, 4, seed=31)
    real_classes = torch.arange(90) % 3  # classes 0, 1, 2
    fake_classes = torch.arange(60) % 2 + 1  # classes 1, 2
    result = per_class(frechet_distance, real, real_classes, fake, fake_classes)
    assert list(result) == [1, 2]
    assert result[2] == frechet_distance(real[real_classes == 2], fake[fake_classes == 2])
    kid = per_class(kernel_inception_distance, real, real_classes, fake, fake_classes, n_subsets=2)
    assert set(kid[1]) == {"kid_mean", "kid_std"}


def test_metrics_registry_names():
    assert METRICS.names() == [
        "fid",
        "histogram_distance",
        "kid",
        "ms_ssim_diversity",
        "prdc",
        "swd",
    ]
    assert METRICS.get("fid") is frechet_distance
    with pytest.raises(KeyError, match="valid names"):
        METRICS.get("inception_score")
