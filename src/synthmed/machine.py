"""One line naming the machine a benchmark or reproduction ran on (recorded beside timings)."""

from __future__ import annotations

import platform


def describe_machine() -> str:
    """``"<arch>, <N> torch threads, <GPU name or 'no GPU'>"``."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {torch.get_num_threads()} torch threads, {gpu}"
