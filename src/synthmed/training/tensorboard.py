"""Optional TensorBoard logging: losses, sample grids and metrics as event files.

TensorBoard is an optional extra (``pip install synthmed[tensorboard]``); without it the
logger is a no-op that says so once, and the CSV log (``train_log.csv``) is unaffected.

Example:
    >>> tb = TensorBoardLogger("runs/demo/tensorboard")  # doctest: +SKIP
    >>> tb.log_scalars(10, {"loss_d": -1.2, "loss_g": 0.4})  # doctest: +SKIP
    >>> tb.close()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class TensorBoardLogger:
    """Writes TensorBoard event files under ``log_dir``, or nothing when unavailable.

    Args:
        log_dir: folder for the event files (created on first write).
        enabled: False gives a silent no-op (e.g. for ``--no-tensorboard``).
    """

    def __init__(self, log_dir: str | Path, enabled: bool = True) -> None:
        self.log_dir = Path(log_dir)
        self._writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("tensorboard is not installed: no event files (pip install tensorboard)")
            return
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        """One scalar per key (e.g. losses) at ``step``, under ``train/<key>``."""
        if self._writer is None:
            return
        for key, value in values.items():
            self._writer.add_scalar(f"train/{key}", float(value), int(step))

    def log_image(self, tag: str, step: int, image: np.ndarray) -> None:
        """An RGB (H, W, 3) or grey (H, W) uint8 image, e.g. a sample grid."""
        if self._writer is None:
            return
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        self._writer.add_image(tag, image, int(step), dataformats="HWC")

    def log_metrics(self, metrics: dict[str, Any], step: int = 0) -> None:
        """Numeric leaves of a (nested) metrics dict as ``metrics/a/b/c`` scalars."""
        if self._writer is None:
            return
        for key, value in _numeric_leaves(metrics):
            self._writer.add_scalar(f"metrics/{key}", value, int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _numeric_leaves(tree: Any, prefix: str = "") -> list[tuple[str, float]]:
    """(path, value) for every int/float leaf of nested dicts; bools and NaN are skipped."""
    if isinstance(tree, dict):
        out = []
        for key, value in tree.items():
            out += _numeric_leaves(value, f"{prefix}/{key}" if prefix else str(key))
        return out
    if isinstance(tree, (int, float)) and not isinstance(tree, bool) and np.isfinite(tree):
        return [(prefix, float(tree))]
    return []
