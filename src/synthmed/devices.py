"""Device and precision choice, shared by training, sampling, evaluation and packaging."""

from __future__ import annotations

import contextlib
import logging

import torch

from synthmed.errors import InputError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an explicit CUDA request without CUDA is an error.

    Raises:
        InputError: not a device name, or a CUDA device this machine does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(
            f"device '{name}' is not a device name: use cpu, cuda, cuda:N or auto"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device '{name}': CUDA is not available on this machine (use cpu or auto)"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(
            f"device '{name}': this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device


def autocast_factory(device: torch.device, precision: str):
    """bf16 autocast on CUDA only: this CPU has no bf16 units (100x slower, PERFORMANCE.md)."""
    if precision == "bf16" and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16":
        log.warning("precision bf16 requested on %s: training in fp32 instead", device)
    return contextlib.nullcontext
