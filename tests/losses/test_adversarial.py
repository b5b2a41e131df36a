"""Tests for the Wasserstein losses and the WGAN-GP gradient penalty."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synthmed.losses import gradient_penalty, wasserstein_critic_loss, wasserstein_generator_loss


class _LinearCritic(nn.Module):
    """f(x) = <w, x> + b: its input gradient is w everywhere, so GP = (||w|| - 1)^2 exactly."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1) + self.b


class _TinyCritic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.conv(x)).flatten(1)).squeeze(1)


def test_wasserstein_losses() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert wasserstein_critic_loss(real, fake).item() == pytest.approx(-2.5)
    assert wasserstein_generator_loss(fake).item() == pytest.approx(0.5)


def test_gradient_penalty_of_linear_critic_is_exact() -> None:
    torch.manual_seed(0)
    critic = _LinearCritic((2, 4, 4))
    real, fake = torch.randn(2, 2, 4, 4), torch.randn(2, 2, 4, 4)
    expected = (critic.w.detach().norm() - 1) ** 2
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(1))
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_matches_per_sample_hand_computation() -> None:
    torch.manual_seed(0)
    critic = _TinyCritic()
    real, fake = torch.randn(2, 2, 4, 4), torch.randn(2, 2, 4, 4)
    alpha = torch.tensor([0.25, 0.8])
    expected = []
    for i in range(2):
        x = (alpha[i] * real[i : i + 1] + (1 - alpha[i]) * fake[i : i + 1]).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x)
        expected.append((grad.norm() - 1) ** 2)
    gp = gradient_penalty(critic, real, fake, alpha=alpha)
    assert gp.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)


def test_gradient_penalty_backpropagates_into_critic_only() -> None:
    torch.manual_seed(0)
    critic = _TinyCritic()
    fake = torch.randn(2, 2, 4, 4, requires_grad=True)
    gradient_penalty(critic, torch.randn(2, 2, 4, 4), fake).backward()
    # Biases cannot change an input gradient, so only the weights receive a penalty gradient.
    for weight in (critic.conv.weight, critic.fc.weight):
        assert weight.grad is not None and weight.grad.abs().sum() > 0
    assert fake.grad is None


def test_gradient_penalty_is_reproducible_with_seed_and_checks_alpha() -> None:
    critic = _TinyCritic()
    real, fake = torch.randn(2, 2, 4, 4), torch.randn(2, 2, 4, 4)
    a = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    b = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="alpha"):
        gradient_penalty(critic, real, fake, alpha=torch.rand(3))
