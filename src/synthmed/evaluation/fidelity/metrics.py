"""Feature-space fidelity metrics: Frechet distance, KID/MMD, precision-recall-density-coverage.

All functions are pure: feature tensors in, float or dict out. They compute in float64 on the
device the inputs already live on. Features come from an extractor elsewhere (an encoder trained
on the real training split, or a user-supplied network); nothing here knows about images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from synthmed.registry import Registry

METRICS = Registry("metric")

# Rows of the distance matrix computed at a time; 1024 x 5000 float64 is ~40 MB.
_CHUNK = 1024


def _as_feats(x: Tensor, name: str, min_rows: int = 2) -> Tensor:
    """Check an (N, D) feature tensor and cast it to float64."""
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {x.shape[0]}")
    return x.detach().to(torch.float64)


def _check_same_dim(x: Tensor, y: Tensor) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sizes differ: {x.shape[1]} vs {y.shape[1]}")


def _sqrt_psd(mat: Tensor) -> Tensor:
    """Symmetric square root of a positive semi-definite matrix (negative eigenvalues clipped)."""
    evals, evecs = torch.linalg.eigh(mat)
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T


def frechet_distance_from_stats(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Frechet distance between two Gaussians given their means and covariances.

    ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})``. The trace of the matrix square root is
    taken from the eigenvalues of the symmetric PSD matrix ``S1^{1/2} S2 S1^{1/2}``, which has
    the same spectrum as ``S1 S2``. We do this instead of ``scipy.linalg.sqrtm(S1 @ S2)`` because
    the symmetric form is real by construction (no imaginary residue to discard) and stays stable
    for the rank-deficient covariances that small N gives.

    Args:
        mu1: Mean, shape (D,).
        sigma1: Covariance, shape (D, D).
        mu2: Mean, shape (D,).
        sigma2: Covariance, shape (D, D).

    Returns:
        The distance (>= 0; tiny negative round-off is clipped to 0).

    References:
        Dowson & Landau 1982; Heusel et al. 2017, "GANs trained by a two time-scale update rule
        converge to a local Nash equilibrium" (FID).
    """
    mu1, mu2 = mu1.to(torch.float64), mu2.to(torch.float64)
    sigma1, sigma2 = sigma1.to(torch.float64), sigma2.to(torch.float64)
    sqrt1 = _sqrt_psd(sigma1)
    cross = sqrt1 @ sigma2 @ sqrt1
    cross = (cross + cross.T) / 2  # symmetrise round-off before eigvalsh
    tr_sqrt = torch.linalg.eigvalsh(cross).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    value = diff @ diff + torch.trace(sigma1) + torch.trace(sigma2) - 2 * tr_sqrt
    return max(float(value), 0.0)


@METRICS.register("fid")
def frechet_distance(real_feats: Tensor, fake_feats: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (the FID formula).

    It is called FID only when the features are Inception-v3 pool features; with another encoder
    the number is comparable only within that encoder. Covariances are unbiased (divide by N-1).

    Args:
        real_feats: Real features, shape (N, D), N >= 2.
        fake_feats: Synthetic features, shape (M, D), M >= 2.

    Returns:
        The Frechet distance (>= 0, 0 for identical sets, symmetric).

    References:
        Heusel et al. 2017, NeurIPS, arXiv:1706.08500.
    """
    x = _as_feats(real_feats, "real_feats")
    y = _as_feats(fake_feats, "fake_feats")
    _check_same_dim(x, y)
    cov_x, cov_y = torch.atleast_2d(torch.cov(x.T)), torch.atleast_2d(torch.cov(y.T))
    return frechet_distance_from_stats(x.mean(0), cov_x, y.mean(0), cov_y)


def polynomial_kernel(x: Tensor, y: Tensor, degree: int = 3, coef0: float = 1.0) -> Tensor:
    """Polynomial kernel ``(x . y / D + coef0) ** degree``, the KID default.

    Args:
        x: Shape (N, D).
        y: Shape (M, D).
        degree: Polynomial degree.
        coef0: Additive constant.

    Returns:
        Kernel matrix, shape (N, M).
    """
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(
    x: Tensor, y: Tensor, kernel: Callable[[Tensor, Tensor], Tensor] = polynomial_kernel
) -> float:
    """Unbiased estimate of the squared maximum mean discrepancy.

    ``mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)``.
    This is the form used by KID (Binkowski et al. 2018, clean-fid, torch-fidelity): unbiased
    for independent samples, so it can be slightly negative. Because the cross term keeps its
    diagonal, a set compared with *itself* gives ``-2 (mean diag K - mean off-diag K) / N``,
    not 0.

    Args:
        x: Shape (N, D), N >= 2.
        y: Shape (M, D), M >= 2.
        kernel: Function (A, B) -> kernel matrix of shape (len(A), len(B)).

    Returns:
        The MMD^2 estimate.

    References:
        Gretton et al. 2012, "A kernel two-sample test", JMLR 13, Lemma 6.
    """
    x, y = _as_feats(x, "x"), _as_feats(y, "y")
    _check_same_dim(x, y)
    n, m = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    term_x = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
    term_y = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(term_x + term_y - 2 * k_xy.mean())


@METRICS.register("kid")
def kernel_inception_distance(
    real_feats: Tensor,
    fake_feats: Tensor,
    subset_size: int = 100,
    n_subsets: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel, over subsets.

    Each subset draws ``subset_size`` real and ``subset_size`` fake rows without replacement
    (independently per subset); ``subset_size`` is clipped to ``min(N, M)``. Unlike FID the
    estimate is unbiased, so prefer it for small sample sizes.

    Args:
        real_feats: Real features, shape (N, D), N >= 2.
        fake_feats: Synthetic features, shape (M, D), M >= 2.
        subset_size: Rows per subset.
        n_subsets: Number of subsets to average.
        seed: Seed of the subset draws; the result is deterministic given it.

    Returns:
        ``{"kid_mean": mean over subsets, "kid_std": population std over subsets (>= 0)}``.

    References:
        Binkowski et al. 2018, "Demystifying MMD GANs", ICLR, arXiv:1801.01401.
    """
    x = _as_feats(real_feats, "real_feats")
    y = _as_feats(fake_feats, "fake_feats")
    _check_same_dim(x, y)
    size = min(subset_size, x.shape[0], y.shape[0])
    if size < 2 or n_subsets < 1:
        raise ValueError(f"need subset_size >= 2 and n_subsets >= 1, got {size}, {n_subsets}")
    gen = torch.Generator().manual_seed(seed)
    values = torch.empty(n_subsets, dtype=torch.float64)
    for i in range(n_subsets):
        idx_x = torch.randperm(x.shape[0], generator=gen)[:size].to(x.device)
        idx_y = torch.randperm(y.shape[0], generator=gen)[:size].to(y.device)
        values[i] = mmd2_unbiased(x[idx_x], y[idx_y])
    return {"kid_mean": float(values.mean()), "kid_std": float(values.std(correction=0))}


def _cdist(a: Tensor, b: Tensor) -> Tensor:
    """Exact Euclidean distances; the matmul shortcut leaves ~1e-8 residue on duplicates."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _kth_nn_radii(feats: Tensor, k: int) -> Tensor:
    """Distance of each row to its k-th nearest neighbour in the same set, excluding itself.

    Args:
        feats: Shape (N, D), float64, N > k.
        k: Neighbour rank.

    Returns:
        Radii, shape (N,).
    """
    radii = []
    for start in range(0, feats.shape[0], _CHUNK):
        dist = _cdist(feats[start : start + _CHUNK], feats)
        # k + 1 smallest: the first is the point itself (distance 0).
        radii.append(dist.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


@METRICS.register("prdc")
def precision_recall_density_coverage(
    real_feats: Tensor, fake_feats: Tensor, k: int = 5
) -> dict[str, float]:
    """Precision, recall, density and coverage from k-NN balls (Naeem et al. 2020).

    With real radii ``r_i`` (k-th NN of real i among the other reals) and fake radii ``s_j``:

    - precision = share of fakes inside at least one real ball ``B(x_i, r_i)``;
    - recall = share of reals inside at least one fake ball ``B(y_j, s_j)``;
    - density = mean over fakes of (number of real balls containing it) / k (~1 when the sets
      match, above 1 for fakes packed in dense real regions, unbounded);
    - coverage = share of reals whose own ball holds at least one fake.

    Distances are computed in row chunks, so N = M = 5000 at D = 64 needs ~40 MB at a time.

    Args:
        real_feats: Real features, shape (N, D), N > k.
        fake_feats: Synthetic features, shape (M, D), M > k.
        k: Neighbour rank for the ball radii.

    Returns:
        ``{"precision", "recall", "density", "coverage"}``; all but density lie in [0, 1].

    References:
        Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative models",
        ICML, arXiv:2002.09797 (precision/recall after Kynkaanniemi et al. 2019).
    """
    x = _as_feats(real_feats, "real_feats", min_rows=k + 1)
    y = _as_feats(fake_feats, "fake_feats", min_rows=k + 1)
    _check_same_dim(x, y)
    real_radii, fake_radii = _kth_nn_radii(x, k), _kth_nn_radii(y, k)
    in_real_balls = torch.zeros(y.shape[0], dtype=torch.float64, device=y.device)
    nearest_fake = torch.full((x.shape[0],), float("inf"), dtype=torch.float64, device=x.device)
    real_recalled = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for start in range(0, y.shape[0], _CHUNK):
        dist = _cdist(y[start : start + _CHUNK], x)  # (chunk, N)
        in_real_balls[start : start + _CHUNK] = (dist <= real_radii[None, :]).sum(1)
        nearest_fake = torch.minimum(nearest_fake, dist.min(0).values)
        fake_r = fake_radii[start : start + _CHUNK, None]
        real_recalled |= (dist <= fake_r).any(0)
    return {
        "precision": float((in_real_balls > 0).double().mean()),
        "recall": float(real_recalled.double().mean()),
        "density": float(in_real_balls.mean() / k),
        "coverage": float((nearest_fake <= real_radii).double().mean()),
    }


def per_class(
    metric_fn: Callable[..., Any],
    real_feats: Tensor,
    real_classes: Tensor,
    fake_feats: Tensor,
    fake_classes: Tensor,
    **kw: Any,
) -> dict[int, Any]:
    """Run a two-set metric separately for every class value present in both sets.

    Args:
        metric_fn: Any metric of the form ``fn(real, fake, **kw)`` (FD, KID, PRDC, SWD, ...).
        real_feats: Real features or images, first dim N.
        real_classes: Integer class of each real row, shape (N,).
        fake_feats: Synthetic features or images, first dim M.
        fake_classes: Integer class of each synthetic row, shape (M,).
        **kw: Passed on to ``metric_fn``.

    Returns:
        ``{class_value: metric_fn(real of that class, fake of that class)}``, sorted by class.
        Classes found in only one set are skipped; the metric raises if a class has too few rows.
    """
    if real_classes.shape != real_feats.shape[:1] or fake_classes.shape != fake_feats.shape[:1]:
        raise ValueError("class tensors must have shape (N,) and (M,) matching the features")
    shared = sorted(set(real_classes.tolist()) & set(fake_classes.tolist()))
    return {
        int(c): metric_fn(real_feats[real_classes == c], fake_feats[fake_classes == c], **kw)
        for c in shared
    }
