"""Checks on what synthmed is asked to write (folders, sample counts), made before anything
is written or loaded.

Datasets, exports and packages are written whole into a temporary folder next to the target
and renamed into place (:func:`synthmed.atomic.atomic_dir`), which replaces what was there.
That is right for an earlier output of the same kind (sampling a run again), and wrong for
anything else: a file, a folder of the user's own files, the run folder itself. These checks
refuse those with one line naming the folder, so a bad ``--out`` never costs a model load,
never half-writes, and never deletes.
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from synthmed.errors import InputError

log = logging.getLogger(__name__)

DATASET_MARKERS = ("manifest.csv",)
"""A folder holding one of these is an earlier synthmed dataset or export (may be replaced)."""

PACKAGE_MARKERS = ("checksums.sha256",)
"""A folder holding one of these is an earlier model package (may be replaced)."""


def check_writable(folder: str | Path, option: str = "--out") -> None:
    """``folder`` exists as a writable folder, or can be created (its nearest existing
    ancestor is a writable folder).

    Raises:
        InputError: an ancestor is a file or a broken link, or the folder is read-only.
    """
    probe = Path(folder)
    while not probe.exists():
        if probe.is_symlink():
            raise InputError(f"{option} passes through a broken symbolic link", probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{option} is a file, not a folder", probe)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{option}: folder is not writable (read-only or no permission)", probe)


def check_output_dir(
    path: str | Path,
    *,
    option: str = "--out",
    markers: Sequence[str] = DATASET_MARKERS,
    protected: Mapping[str, str | Path | None] | None = None,
) -> Path:
    """Refuse an output folder that writing would damage; returns ``path``.

    Args:
        path: the folder that will be written (replaced when it exists).
        option: the option or key the user set, for the message.
        markers: file names that mark an earlier output of the same kind; a non-empty folder
            without one is refused.
        protected: ``{description: folder}`` that the output must neither be nor contain
            (e.g. ``{"the run folder": run_dir}``).

    Raises:
        InputError: ``path`` is a file; is or contains a protected folder; is a non-empty
            folder that holds no earlier output; or cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} is a file, not a folder", path)
    target = path.resolve()
    for what, folder in (protected or {}).items():
        if folder is None:
            continue
        folder = Path(folder).resolve()
        if target == folder or target in folder.parents:
            where = what if target == folder else f"a folder above {what}"
            raise InputError(
                f"{option} is {where}; writing there would replace it: choose a new folder",
                path,
            )
    if path.is_dir() and any(path.iterdir()):
        if not any((path / marker).is_file() for marker in markers):
            raise InputError(
                f"{option} is a folder that is not empty and holds no earlier synthmed output "
                f"(no {markers[0]}); choose a new or empty folder",
                path,
            )
        log.info("replacing the earlier synthmed output in %s", path)
    check_writable(path.parent, option)
    if path.is_dir():
        check_writable(path, option)
    return path


def check_sample_args(
    n: int, threshold: float | None = None, batch_size: int | None = None
) -> None:
    """The number of samples, label threshold and batch size of a sampling request.

    ``threshold`` applies to the label channel, which the generator's tanh keeps in [-1, 1]:
    outside that range every pixel, or none, would be foreground.

    Raises:
        InputError: ``n`` < 1 (``--n 0`` would write an empty dataset), ``threshold`` outside
            [-1, 1] (or NaN), ``batch_size`` < 1.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise InputError(f"--n {n}: the number of samples must be at least 1")
    if threshold is not None and not -1.0 <= float(threshold) <= 1.0:
        raise InputError(
            f"--threshold {threshold}: the label channel is a tanh output in [-1, 1]; "
            "choose a threshold in that range (default 0)"
        )
    if batch_size is not None and batch_size < 1:
        raise InputError(f"sample.batch_size {batch_size} must be at least 1")
