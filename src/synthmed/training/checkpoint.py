"""Checkpoints: weights, optimiser and RNG state, resolved config; written atomically.

Everything stored is tensors or plain Python values, so loading uses
``torch.load(weights_only=True)`` and never unpickles arbitrary objects.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from synthmed.atomic import atomic_path
from synthmed.errors import InputError


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with torch.save through a temp file + rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which and why
        raise InputError(f"cannot load checkpoint: {exc}", path) from exc


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The run's ``checkpoints/last.pt``; a clear error when the run has none."""
    path = Path(run_dir) / "checkpoints" / "last.pt"
    if not path.is_file():
        raise InputError("no checkpoints/last.pt: train this run first", run_dir)
    return path
