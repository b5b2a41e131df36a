"""Image-space fidelity and diversity metrics: MS-SSIM diversity, intensity histograms, SWD.

Pure functions: image tensors in, float out. Images are (N, C, H, W) or (N, C, D, H, W) with
intensities in ``value_range`` (default [0, 1]).
"""

from __future__ import annotations

import torch
from scipy.stats import wasserstein_distance
from torch import Tensor

from synthmed.evaluation.fidelity.metrics import METRICS

# Scale weights of Wang et al. 2003 (five scales), as in MONAI's default.
_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# Image pairs per MS-SSIM call; bounds memory for large images.
_PAIR_CHUNK = 64


def ms_ssim_weights(spatial_shape: tuple[int, ...], kernel_size: int = 11) -> tuple[float, ...]:
    """Choose MS-SSIM scale weights for an image size.

    Uses the largest number of scales L (1..5) such that the smallest side is still at least
    ``kernel_size`` after L-1 halvings and MONAI's own size check passes
    (side // (L-1)^2 > kernel_size - 1). The first L of Wang et al.'s weights are renormalised
    to sum to 1. With kernel 11: side 11-21 -> 1 scale (plain SSIM), 22-43 -> 2, 44-98 -> 3,
    99-175 -> 4, >= 176 -> 5. So 32 px uses 2 scales and 64 px uses 3.

    Args:
        spatial_shape: Spatial sizes, (H, W) or (D, H, W).
        kernel_size: Side of the Gaussian window.

    Returns:
        Weights, one per scale.
    """
    side = min(spatial_shape)
    if side < kernel_size:
        raise ValueError(f"images of side {side} are smaller than the SSIM window {kernel_size}")
    levels = 1
    for n in range(2, len(_MS_SSIM_WEIGHTS) + 1):
        if side // 2 ** (n - 1) >= kernel_size and side // (n - 1) ** 2 > kernel_size - 1:
            levels = n
    weights = _MS_SSIM_WEIGHTS[:levels]
    return tuple(w / sum(weights) for w in weights)


def _random_pairs(n: int, n_pairs: int, seed: int) -> tuple[Tensor, Tensor]:
    """Index pairs (i, j) with i != j: all pairs if there are few, else uniform draws."""
    if n * (n - 1) // 2 <= n_pairs:
        pairs = torch.combinations(torch.arange(n), r=2)
        return pairs[:, 0], pairs[:, 1]
    gen = torch.Generator().manual_seed(seed)
    first = torch.randint(0, n, (n_pairs,), generator=gen)
    # An offset in [1, n) makes the second index differ from the first.
    second = (first + torch.randint(1, n, (n_pairs,), generator=gen)) % n
    return first, second


@METRICS.register("ms_ssim_diversity")
def ms_ssim_diversity(
    images: Tensor, n_pairs: int = 100, seed: int = 0, data_range: float = 1.0
) -> float:
    """Mean MS-SSIM between random pairs of distinct images of one set.

    Higher means less diverse: a mode-collapsed generator gives ~1, independent noise ~0.
    Compare with the same number on the real set. The number of scales depends on the image
    size (see :func:`ms_ssim_weights`): 32 px -> 2 scales, 64 px -> 3, and sides below 22 fall
    back to single-scale SSIM. Computed with MONAI's ``compute_ms_ssim`` (Gaussian window 11,
    sigma 1.5), averaged over channels; works for 2D and 3D.

    Args:
        images: Shape (N, C, H, W) or (N, C, D, H, W), N >= 2, intensities in [0, data_range].
        n_pairs: Pairs to draw (with replacement among pairs of distinct images); if the set
            has at most that many pairs, all of them are used.
        seed: Seed of the pair draws.
        data_range: Intensity range of the images.

    Returns:
        Mean MS-SSIM over the pairs.

    References:
        Wang et al. 2003, "Multiscale structural similarity for image quality assessment";
        Odena et al. 2017, "Conditional image synthesis with auxiliary classifier GANs" (use
        of MS-SSIM within a class as a diversity measure).
    """
    if images.ndim not in (4, 5) or images.shape[0] < 2:
        raise ValueError(
            f"images must be (N, C, H, W) or (N, C, D, H, W), N >= 2, got {images.shape}"
        )
    # Imported here: MONAI takes ~2 s to import and only this metric needs it.
    from monai.metrics.regression import compute_ms_ssim

    weights = ms_ssim_weights(tuple(images.shape[2:]))
    first, second = _random_pairs(images.shape[0], n_pairs, seed)
    imgs = images.detach()
    scores = []
    for start in range(0, len(first), _PAIR_CHUNK):
        a = imgs[first[start : start + _PAIR_CHUNK].to(imgs.device)].to(torch.float64)
        b = imgs[second[start : start + _PAIR_CHUNK].to(imgs.device)].to(torch.float64)
        scores.append(compute_ms_ssim(a, b, imgs.ndim - 2, data_range, weights=weights).flatten())
    return float(torch.cat(scores).double().mean())


@METRICS.register("histogram_distance")
def intensity_histogram_distance(
    real_images: Tensor,
    fake_images: Tensor,
    bins: int = 64,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> float:
    """Wasserstein-1 distance between the pooled intensity histograms of two image sets.

    All voxels of each set are pooled into a ``bins``-bin histogram over ``value_range`` (values
    outside are clamped into the end bins so no mass is lost), then
    ``scipy.stats.wasserstein_distance`` compares the bin centres weighted by the counts, which
    is the integral of |CDF_real - CDF_fake| on the binned scale. It is in intensity units: a
    constant shift by t (well inside the range) gives ~t. Histograms instead of raw values keep
    memory and time linear for millions of voxels.

    Args:
        real_images: Real images, any shape, e.g. (N, C, H, W).
        fake_images: Synthetic images, any shape.
        bins: Histogram bins.
        value_range: (low, high) intensity range.

    Returns:
        The distance (>= 0, 0 for identical sets).

    References:
        Villani 2009, "Optimal transport: old and new" (1D Wasserstein via CDFs).
    """
    low, high = value_range
    if not high > low or bins < 1:
        raise ValueError(f"need high > low and bins >= 1, got {value_range}, {bins}")
    hists = [
        torch.histc(x.detach().double().clamp(low, high), bins=bins, min=low, max=high).cpu()
        for x in (real_images, fake_images)
    ]
    width = (high - low) / bins
    centres = low + width * (torch.arange(bins, dtype=torch.float64) + 0.5)
    return float(wasserstein_distance(centres, centres, hists[0].numpy(), hists[1].numpy()))


def _wasserstein_1d(u: Tensor, v: Tensor) -> Tensor:
    """Row-wise Wasserstein-1 distance between 1D empirical distributions.

    Same algorithm as ``scipy.stats.wasserstein_distance`` (integral of |CDF_u - CDF_v| over
    the merged sorted support), batched over rows so all projections run in one call instead
    of a Python loop of scipy calls.

    Args:
        u: Samples, shape (P, N).
        v: Samples, shape (P, M).

    Returns:
        Distances, shape (P,).
    """
    u, v = u.sort(dim=1).values.contiguous(), v.sort(dim=1).values.contiguous()
    support = torch.cat([u, v], dim=1).sort(dim=1).values
    points = support[:, :-1].contiguous()
    cdf_u = torch.searchsorted(u, points, right=True) / u.shape[1]
    cdf_v = torch.searchsorted(v, points, right=True) / v.shape[1]
    return ((cdf_u - cdf_v).abs() * support.diff(dim=1)).sum(dim=1)


@METRICS.register("swd")
def sliced_wasserstein_distance(
    real: Tensor, fake: Tensor, n_projections: int = 128, seed: int = 0
) -> float:
    """Sliced Wasserstein-1 distance between two sets of vectors (e.g. flattened images).

    Both sets are projected onto ``n_projections`` random unit directions; the result is the
    mean over directions of the 1D Wasserstein-1 distance between the projected samples. Rows
    of any shape are flattened, so pass images downsampled first (e.g. ``avg_pool2d`` to
    16x16) for a pixel-space SWD; sets may differ in size.

    Args:
        real: Real samples, shape (N, D) or (N, *) flattened to (N, D).
        fake: Synthetic samples, shape (M, D) or (M, *) with the same D.
        n_projections: Number of random directions.
        seed: Seed of the directions; the result is deterministic given it.

    Returns:
        The distance (>= 0, 0 for identical sets).

    References:
        Rabin et al. 2011, "Wasserstein barycenter and its application to texture mixing";
        Karras et al. 2018, "Progressive growing of GANs", ICLR (SWD as a GAN metric).
    """
    x = real.detach().reshape(real.shape[0], -1).to(torch.float64)
    y = fake.detach().reshape(fake.shape[0], -1).to(torch.float64)
    if x.shape[1] != y.shape[1] or min(x.shape[0], y.shape[0]) < 1:
        raise ValueError(f"need non-empty sets of equal size D, got {x.shape} and {y.shape}")
    gen = torch.Generator().manual_seed(seed)
    directions = torch.randn(x.shape[1], n_projections, generator=gen, dtype=torch.float64)
    directions = (directions / directions.norm(dim=0, keepdim=True)).to(x.device)
    return float(_wasserstein_1d((x @ directions).T, (y @ directions).T).mean())
