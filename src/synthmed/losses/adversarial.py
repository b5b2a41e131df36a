"""Wasserstein GAN losses and the gradient penalty.

Arjovsky et al. 2017, "Wasserstein GAN"; Gulrajani et al. 2017, "Improved Training of
Wasserstein GANs" (WGAN-GP). Plain functions of tensors so any training method can combine them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Keeps the gradient of the norm finite when a per-sample gradient is exactly zero.
_NORM_EPS = 1e-12


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Critic loss ``E[D(fake)] - E[D(real)]``: minimising it widens the Wasserstein estimate.

    Args:
        real_scores: critic scores of real samples, shape ``(N,)``.
        fake_scores: critic scores of generated samples, shape ``(M,)``.

    Returns:
        Scalar tensor (Arjovsky et al. 2017, Eq. 3, negated for minimisation).
    """
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator loss ``-E[D(fake)]``: the generator pushes its samples' scores up.

    Args:
        fake_scores: critic scores of generated samples, shape ``(N,)``.

    Returns:
        Scalar tensor (Arjovsky et al. 2017; Gulrajani et al. 2017, Alg. 1).
    """
    return -fake_scores.mean()


def _interpolation_weights(
    real: torch.Tensor, alpha: torch.Tensor | None, generator: torch.Generator | None
) -> torch.Tensor:
    """Per-sample weights shaped ``(N, 1, ..., 1)`` to broadcast over channels and space."""
    n = real.shape[0]
    if alpha is None:
        draw_device = generator.device if generator is not None else real.device
        alpha = torch.rand(n, generator=generator, device=draw_device)
    if alpha.numel() != n:
        raise ValueError(f"alpha needs one value per sample ({n}), got shape {tuple(alpha.shape)}")
    return alpha.to(device=real.device, dtype=real.dtype).reshape(n, *([1] * (real.dim() - 1)))


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    alpha: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``mean_i (||grad_x D(x_hat_i)||_2 - 1)^2`` (Gulrajani et al. 2017, Eq. 3).

    ``x_hat = alpha * real + (1 - alpha) * fake`` with one ``alpha ~ U[0, 1]`` per sample. The
    inputs are detached, so the penalty regularises only the critic; the graph is kept
    (``create_graph=True``) so the penalty backpropagates into the critic's parameters. The
    critic must score each sample independently (no BatchNorm), as the paper requires.

    Args:
        critic: maps ``(N, C, *spatial)`` to scores ``(N,)``.
        real: real samples ``(N, C, *spatial)``.
        fake: generated samples, same shape as ``real``.
        alpha: optional interpolation weights, ``N`` values (any shape); drawn if None.
        generator: random generator for drawing ``alpha`` (reproducibility).

    Returns:
        Scalar tensor, the penalty averaged over the batch (multiply by lambda, e.g. 10).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    weights = _interpolation_weights(real, alpha, generator)
    x_hat = (weights * real.detach() + (1 - weights) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    # Summing is exact because each score depends only on its own sample.
    (grads,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = torch.sqrt(grads.flatten(1).pow(2).sum(dim=1) + _NORM_EPS)
    return (norms - 1).pow(2).mean()
