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


def class_run_dir(run_dir: str | Path, class_id: int) -> Path:
    """Sub-run of a per-class run (Frid-Adar 2018: one generator per class)."""
    return Path(run_dir) / "classes" / f"class_{class_id}"


def class_checkpoints(run_dir: str | Path) -> dict[int, Path]:
    """``{class: last.pt}`` of a per-class run (empty for an ordinary run)."""
    found = {}
    for folder in sorted((Path(run_dir) / "classes").glob("class_*")):
        path = folder / "checkpoints" / "last.pt"
        if path.is_file():
            found[int(folder.name.split("_")[1])] = path
    return found


def find_last_checkpoint(run_dir: str | Path) -> Path | None:
    """``checkpoints/last.pt``, or for a per-class run the first class's (all classes share
    architecture, sizes and config), or None."""
    path = Path(run_dir) / "checkpoints" / "last.pt"
    if path.is_file():
        return path
    per_class = class_checkpoints(run_dir)
    return per_class[min(per_class)] if per_class else None


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The run's last checkpoint (see :func:`find_last_checkpoint`); an error when none."""
    path = find_last_checkpoint(run_dir)
    if path is None:
        raise InputError("no checkpoints/last.pt: train this run first", run_dir)
    return path


def sampling_checkpoint(run_dir: str | Path, which: str = "best") -> Path:
    """The checkpoint to sample, evaluate and package: ``best.pt`` (memorization-aware
    selection, ``synthmed.training.selection``) when the run has one and ``which`` is
    ``best``, else the last one."""
    if which not in ("best", "last"):
        raise InputError(f"sample.checkpoint must be 'best' or 'last', got '{which}'")
    best = Path(run_dir) / "checkpoints" / "best.pt"
    if which == "best" and best.is_file():
        return best
    return latest_checkpoint(run_dir)
