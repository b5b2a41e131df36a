"""The GPU fast path: which speed-ups a training run uses, decided once from the device.

``train.fast_path`` names four switches (``auto`` by default); :func:`resolve_fast_path` turns
them into a :class:`FastPath` for the run's device, and the helpers here apply it. ``auto`` is
what PERFORMANCE.md measured to be faster: bf16 autocast, channels_last and ``torch.compile``
on CUDA only (on this kind of CPU they are 100x, 0.85x and 0.81x), fused Adam on CPU and CUDA
(+7-10% on CPU). With ``auto`` on CPU, training is therefore exactly what it was before the
fast path existed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from synthmed.config.schema import FastPathConfig
from synthmed.training.module_swap import ModuleSwap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FastPath:
    """The resolved switches (all False: fp32, NCHW, eager, per-tensor Adam)."""

    autocast: bool = False  # bf16 autocast around the networks' forward passes
    channels_last: bool = False  # NHWC for 4D weights and the training tensor
    compile: bool = False  # torch.compile of the trained networks
    fused_adam: bool = False  # Adam(fused=True)

    def describe(self) -> dict[str, bool | str]:
        """What the run summary records (``autocast`` as the dtype it means)."""
        out: dict[str, bool | str] = asdict(self)
        out["autocast"] = "bf16" if self.autocast else "off"
        return out


def _switch(value: str, auto: bool) -> bool:
    return auto if value == "auto" else value in ("on", "bf16")


def resolve_fast_path(
    device: torch.device | str, settings: FastPathConfig | dict | None = None, precision="fp32"
) -> FastPath:
    """The fast path ``settings`` mean on ``device`` (pure: no device is touched).

    ``auto``: on for CUDA, off for any other device, except ``fused_adam`` (on for CPU and
    CUDA, the devices with fused Adam kernels). An explicit ``on``/``bf16`` is honoured on any
    device (bf16 autocast runs on CPU, slowly). ``precision`` is the older ``train.precision``:
    ``bf16`` asks for autocast and, as before, is ignored with a warning off CUDA unless
    ``autocast`` is ``bf16`` too.
    """
    device = torch.device(device)
    if settings is None:
        settings = FastPathConfig()
    elif isinstance(settings, dict):
        settings = FastPathConfig(**settings)
    cuda = device.type == "cuda"
    if precision == "bf16" and settings.autocast == "auto" and not cuda:
        log.warning("precision bf16 requested on %s: training in fp32 instead", device)
    return FastPath(
        autocast=_switch(settings.autocast, cuda),
        channels_last=_switch(settings.channels_last, cuda),
        compile=_switch(settings.compile, cuda),
        fused_adam=_switch(settings.fused_adam, device.type in ("cpu", "cuda")),
    )


def autocast_context(device: torch.device, fast: FastPath) -> Callable[[], object]:
    """The step's autocast factory: bf16 on ``device`` when on, else a no-op context."""
    if fast.autocast:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def to_channels_last(module: nn.Module) -> nn.Module:
    """NHWC for the module's 4D parameters and buffers, in place (the same tensors, so
    optimisers built before keep them; 5D weights of 3D networks are left as they are)."""
    with torch.no_grad():
        for t in (*module.parameters(), *module.buffers()):
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=torch.channels_last)
    return module


def data_channels_last(data: torch.Tensor) -> torch.Tensor:
    """The training tensor in NHWC when it is 2D image data ``(N, C, H, W)``."""
    return data.contiguous(memory_format=torch.channels_last) if data.dim() == 4 else data


def compiled(module: nn.Module) -> nn.Module:
    """``torch.compile(module)``: shares the module's parameters, so optimisers, EMA and
    checkpoints keep using the plain module (its state_dict has no ``_orig_mod.`` prefix)."""
    return torch.compile(module)


class CompileSwap(ModuleSwap):
    """``with swap:`` the model's trained networks are their compiled versions (one process;
    under DDP, :class:`synthmed.training.ddp.DDPSwap` compiles the DDP wrappers instead)."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__(model, {n: compiled(model.get_submodule(n)) for n in names})
