"""Seeding that gives the same weights in two processes on the same CPU.

``torch.manual_seed`` alone is not enough on this kind of machine: MKL (inside the torch CPU
wheel) by default may run a matrix product on fewer threads than asked when the machine is
busy ("MKL dynamic"), which changes the order of its float reductions. Two runs of the same
command then drift apart from the first steps whenever another process competes for the cores
(measured: 1 of 3 runs beside a matmul load differed at step 5; 0 of 6 with dynamic threads
off). Turning MKL's dynamic threading off makes the thread count, and so the results, fixed.
Only the environment variable set before the process starts is known to work: measured on
two subprocesses of the same tiny training, ``MKL_DYNAMIC=FALSE`` in the shell gave identical
weights in 6 of 6 pairs; setting it from Python at ``import synthmed`` plus the
``MKL_Set_Dynamic`` call below gave different weights in 3 of 7 pairs, so MKL has read its
settings before Python code runs. Both are kept (harmless, and they cover child processes),
but bit-identical runs need ``MKL_DYNAMIC=FALSE`` exported in the shell (README, Determinism).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)


@functools.cache
def fix_mkl_threads() -> bool:
    """Switch MKL's dynamic thread adjustment off; True when MKL was found and set.

    MKL reads ``MKL_DYNAMIC`` only before its first call, and torch may have made that call
    already, so the setting is made through MKL's C entry point ``MKL_Set_Dynamic`` (by value;
    the lower-case symbol is the Fortran one, by reference), which libtorch_cpu exports. The
    environment variable is set too, for child processes.
    """
    os.environ.setdefault("MKL_DYNAMIC", "FALSE")
    if not torch.backends.mkl.is_available():
        return False
    lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        handle = ctypes.CDLL(str(lib) if lib.is_file() else None)
        handle.MKL_Set_Dynamic(ctypes.c_int(0))
    except (OSError, AttributeError):  # another build (macOS, Windows, MKL as a shared lib)
        log.debug("MKL_Set_Dynamic not found; MKL_DYNAMIC=%s", os.environ["MKL_DYNAMIC"])
        return False
    return True


def seed_everything(seed: int) -> None:
    """Seed torch's global RNG and fix MKL's thread count (see the module docstring)."""
    fix_mkl_threads()
    torch.manual_seed(seed)
