"""synthmed.losses: adversarial criteria and regularisers (plain functions on tensors)."""

from __future__ import annotations

from synthmed.losses.adversarial import (
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

__all__ = ["gradient_penalty", "wasserstein_critic_loss", "wasserstein_generator_loss"]
