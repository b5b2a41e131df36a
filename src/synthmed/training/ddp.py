"""DistributedDataParallel for the networks a method trains, swapped in for each step only.

Methods call ``ctx.model.generator`` and ``ctx.model.critic``; :class:`DDPSwap` puts their
DDP versions in those places for the duration of a step and the plain modules back after it,
so EMA, sample grids, checkpoints and the selector keep seeing the plain networks (no
``module.`` prefixes, no collectives on rank 0 alone).
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from synthmed.training.module_swap import ModuleSwap


class _FrozenBypass(nn.Module):
    """A DDP network that is called through its plain module while its parameters are frozen.

    Methods freeze the critic (``requires_grad_(False)``) for the generator step. A DDP forward
    with gradients enabled prepares its reducer for a backward that would then bring no
    gradients for its parameters, and the next step fails ("expected to have finished
    reduction"); the frozen network needs no gradient sync, so it runs unwrapped. Other
    attributes (e.g. SPADE's ``forward_with_features``, only called frozen) come from the plain
    module.
    """

    def __init__(self, ddp: DistributedDataParallel, compile: bool = False) -> None:
        super().__init__()
        self.ddp = ddp
        # torch.compile of the DDP wrapper (DDP-aware graph splitting) and of the frozen
        # plain module; both share the plain module's parameters
        self.fast = torch.compile(ddp) if compile else ddp
        self.fast_frozen = torch.compile(ddp.module) if compile else ddp.module

    def forward(self, *args, **kwargs):
        first = next(self.ddp.module.parameters())
        return (self.fast if first.requires_grad else self.fast_frozen)(*args, **kwargs)

    def uncompiled(self) -> nn.Module:
        """The eager DDP network (the gradient penalty's double backward needs it)."""
        return self if self.fast is self.ddp else _FrozenBypass(self.ddp)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.ddp.module, name)


class DDPSwap(ModuleSwap):
    """``with swap:`` the model's trained networks are their DDP versions.

    Args:
        model: the generative model (``generator`` / ``critic`` attributes).
        names: the attributes to wrap (those the method's optimisers train through their
            ``forward``), dotted paths allowed (``generator.unet``).
        device: the rank's device (``device_ids`` for CUDA).

    The WGAN-GP gradient penalty runs through the DDP critic: ``autograd.grad`` there is
    taken with respect to the interpolated *inputs* only, so no parameter gradient is
    accumulated and DDP's hooks stay idle; the penalty's parameter gradients arrive in the
    step's single ``backward`` together with the Wasserstein term, each parameter's
    accumulated gradient is all-reduced once, and the average over ranks of the per-rank mean
    is the gradient of the global-batch mean (the 2 x B vs 1 x 2B test checks this).
    ``compiled``: the networks whose DDP wrapper runs under ``torch.compile`` (fast path).
    """

    def __init__(
        self, model: nn.Module, names: list[str], device, compiled: tuple[str, ...] = ()
    ) -> None:
        ids = [device.index or 0] if device.type == "cuda" else None
        wrapped = {
            n: _FrozenBypass(
                DistributedDataParallel(model.get_submodule(n), device_ids=ids), n in compiled
            )
            for n in names
        }
        super().__init__(model, wrapped)


def rank_step_seed(seed: int, rank: int, step: int) -> int:
    """A 63-bit seed for torch's global generator on ``rank`` at training ``step`` (a hash of
    the three, so nearby seeds, ranks and steps give unrelated streams)."""
    key = f"synthmed global rng {seed} {rank} {step}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def seed_global_rng(seed: int, rank: int, step: int) -> None:
    """Seed torch's global generator (CPU and CUDA) for one training step of one rank.

    What a step draws from the global generator rather than the run's (dropout: pix2pix's
    generator, a user model's ``nn.Dropout``) must differ between ranks, or every rank would
    drop the same units for different rows, and must not depend on how the run got to this
    step: seeded from (run seed, rank, step) before each step, it is reproducible and exact
    under resume without checkpointing a state per rank. Such draws are not those of one
    process with the whole batch (those come from one stream over 2B rows), unlike every draw
    from the run's generator.
    """
    torch.manual_seed(rank_step_seed(seed, rank, step))
