"""Exponential moving average of the generator's weights (Karras et al. 2018/2020).

A GAN generator's weights oscillate around a good solution from step to step; their moving
average samples visibly better and more stably (progressive GAN, StyleGAN2-ADA, every
diffusion model). Written here instead of ``torch.optim.swa_utils.AveragedModel`` because the
decay needs a ramp-up (short CPU runs would otherwise average in the random initialisation)
and the averaged copy must live in the checkpoint beside the raw weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(step: int, decay: float) -> float:
    """Decay at ``step`` (1-based) with ramp-up ``min(decay, (1 + step) / (10 + step))``.

    Early on the average must forget the random initialisation quickly: the ramp-up (as in
    TensorFlow's ExponentialMovingAverage with ``num_updates``) starts near 0.18 and reaches
    0.99 after ~900 steps, so a 800-step CPU run averages over roughly its last hundred steps.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
    return min(decay, (1.0 + step) / (10.0 + step))


class GeneratorEMA:
    """A frozen copy of the generator whose parameters track the trained ones.

    Floating-point parameters are averaged; buffers (batch-norm running statistics) are
    copied from the trained generator, since an average of running averages has no meaning;
    so are frozen parameters (``requires_grad`` off in the trained generator: a latent
    diffusion model's autoencoder after its training phase), which the U-Net was trained
    against and which must not be mixed with their earlier values.
    """

    def __init__(self, generator: nn.Module, decay: float) -> None:
        ema_decay(1, decay)  # validate
        self.decay = decay
        self.module = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module, step: int) -> None:
        d = ema_decay(step, self.decay)
        averaged, frozen = [], []
        for e, p in zip(self.module.parameters(), generator.parameters(), strict=True):
            if p.is_floating_point():
                (averaged if p.requires_grad else frozen).append((e, p.detach()))
        if averaged:  # ema += (1 - d) (param - ema)
            torch._foreach_lerp_([e for e, _ in averaged], [p for _, p in averaged], 1.0 - d)
        for e, p in frozen:
            e.copy_(p)
        for ema_buf, buf in zip(self.module.buffers(), generator.buffers(), strict=True):
            ema_buf.copy_(buf)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
