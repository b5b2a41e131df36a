"""Device and precision choice, shared by training, sampling, evaluation and packaging."""

from __future__ import annotations

import contextlib
import logging

import torch

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an explicit CUDA request without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device is '{name}' but CUDA is not available here")
    return device


def autocast_factory(device: torch.device, precision: str):
    """bf16 autocast on CUDA only: this CPU has no bf16 units (100x slower, PERFORMANCE.md)."""
    if precision == "bf16" and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16":
        log.warning("precision bf16 requested on %s: training in fp32 instead", device)
    return contextlib.nullcontext
