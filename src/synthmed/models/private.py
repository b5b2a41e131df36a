"""A critic rebuilt for per-sample gradients (DP-SGD; ``synthmed.training.privacy``).

A model-level transformation, kept here so training (before the critic's optimiser exists)
and evaluation (rebuilding a private checkpoint's critic for the LOGAN attack) apply the
same one; it needs no Opacus.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.utils import parametrize

from synthmed.errors import InputError
from synthmed.models.blocks import batch_norm_to_group_norm

MINIBATCH_ERROR = (
    "train.privacy: minibatch discrimination compares the samples of a batch, so no "
    "per-sample gradient exists; set model.options.minibatch_discrimination: false"
)


def _strip_spectral_norm(critic: nn.Module) -> bool:
    """Remove spectral-norm parametrisations, keeping the normalised weight; True if any."""
    found = False
    for module in critic.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            found = True
    return found


def make_critic_private(critic: nn.Module) -> dict[str, Any]:
    """Rebuild ``critic`` in place for per-sample gradients; returns what changed.

    BatchNorm -> GroupNorm (batch statistics mix the records of a batch, so no per-sample
    gradient exists), spectral-norm parametrisations -> plain weights (Opacus cannot trace
    their buffers; training bounds the weights by projection instead), in-place activations
    off (Opacus' backward hooks forbid them).

    Raises:
        InputError: if the critic couples the samples of a batch (minibatch discrimination).
    """
    if any(type(m).__name__ == "MinibatchDiscrimination" for m in critic.modules()):
        raise InputError(MINIBATCH_ERROR)
    group_norms = batch_norm_to_group_norm(critic)
    had_spectral_norm = _strip_spectral_norm(critic)
    for module in critic.modules():
        if getattr(module, "inplace", False):
            module.inplace = False
    return {"batch_norm_to_group_norm": group_norms, "spectral_norm_removed": had_spectral_norm}
