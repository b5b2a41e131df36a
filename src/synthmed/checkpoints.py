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


REQUIRED_KEYS = ("step", "model_name", "model_kwargs", "generator")
"""What every synthmed checkpoint holds (``synthmed.training.loop`` writes them)."""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a synthmed checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        InputError: one line naming the file: missing, empty, not a ``torch.save`` archive
            (a plain pickle, a truncated file), holding pickled Python objects (refused, never
            executed), corrupt, or a PyTorch file that is not a synthmed checkpoint.
    """
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path)
    if path.stat().st_size == 0:
        raise InputError("checkpoint is an empty file", path)
    try:
        is_archive = zipfile.is_zipfile(path)
        if is_archive:  # torch.load does not check CRCs: a flipped bit would load silently
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        raise InputError(f"corrupt checkpoint archive ({type(exc).__name__})", path) from None
    if not is_archive:
        raise InputError(
            "not a checkpoint written by torch.save (truncated, or a plain pickle or other "
            "file; synthmed never unpickles)",
            path,
        )
    if damaged is not None:
        member = "/".join(damaged.split("/")[1:]) or damaged  # without the archive's root name
        raise InputError(f"corrupt checkpoint: CRC mismatch in its '{member}' record", path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which and why, in one line
        raise InputError(f"cannot load checkpoint: {_load_problem(exc)}", path) from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise InputError(f"a PyTorch file but not a synthmed checkpoint (no '{missing[0]}')", path)
    return state


def _load_problem(exc: Exception) -> str:
    """The cause of a ``torch.load`` failure without its multi-line advice."""
    import re

    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return (
            f"it holds pickled Python objects ({found.group(1)}), which weights-only loading "
            "refuses: not a synthmed checkpoint"
        )
    if "Weights only load failed" in text:
        return "not a synthmed checkpoint (its pickle holds more than tensors and plain values)"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"corrupt file ({type(exc).__name__}{': ' + first if first else ''})"


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
