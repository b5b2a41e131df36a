"""Shared machinery of the dataset exporters: inputs, run metadata, spacing, manifest.

An export turns a synthetic dataset folder (``images/``, ``labels/``, ``manifest.csv`` as
written by ``synthmed sample``) into the layout another tool expects. Every export folder
carries the provenance manifest (seed, model, checkpoint and config hashes, version, edits,
near-copy filtering) as ``manifest.csv`` plus ``export.json``, so a synthetic file can always be
traced back to the generator and seed that made it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from synthmed import __version__
from synthmed.atomic import write_json, write_text
from synthmed.errors import InputError
from synthmed.registry import Registry

log = logging.getLogger(__name__)

EXPORTERS = Registry("export format")  # name -> Exporter
NOT_APPLIED = "not applied"
GATE_NOT_RUN = "not run (no export-gate record in the sampled dataset)"
DEFAULT_SPACING_MM = 1.0


@dataclass(frozen=True)
class ExportInfo:
    """What the files cannot tell: label and channel names, voxel spacing.

    Attributes:
        label_names: one name per label value (index = value); ``label_names[0]`` is background.
        channel_names: one name per image channel.
        spacing: mm per spatial axis in array order ((dy, dx) or (dz, dy, dx)).
        spacing_source: where the spacing came from (recorded in ``export.json``).
    """

    label_names: list[str]
    channel_names: list[str]
    spacing: tuple[float, ...]
    spacing_source: str


@dataclass
class ExportJob:
    """One export: the arrays, their manifest rows and the options every format may use.

    ``images`` are (N, C, *spatial) floats in [0, 1]; ``labels`` (N, *spatial) integers.
    """

    images: np.ndarray
    labels: np.ndarray
    rows: list[dict[str, str]]
    info: ExportInfo
    fmt: str
    name: str = "Dataset500_Synthmed"
    bits: int = 8
    advance: Callable[[int], None] = field(default=lambda n: None)
    gate: dict[str, Any] | None = None  # the source folder's export-gate verdict

    @property
    def spatial_dims(self) -> int:
        return self.images.ndim - 2

    def samples(self) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
        """(position, file stem, image, label) per sample; advances the progress bar."""
        for pos, (row, image, label) in enumerate(
            zip(self.rows, self.images, self.labels, strict=True)
        ):
            yield pos, sample_stem(row, pos), image, label
            self.advance(1)


@dataclass(frozen=True)
class Exporter:
    """A registered format: ``write(job, folder)`` fills ``folder`` and returns per-sample
    output paths (``{"image": ..., "label": ...}``, relative to the folder); ``target`` says
    which folder under ``--out`` the export becomes (default: ``--out`` itself)."""

    write: Callable[[ExportJob, Path], list[dict[str, str]]]
    target: Callable[[Path, ExportJob], Path] = lambda out_dir, job: out_dir


def sample_stem(row: dict[str, str], pos: int) -> str:
    """The file stem ``synthmed sample`` uses (index and seed in the name), for traceability."""
    index = int(row.get("index") or pos)
    seed = row.get("seed")
    return f"sample_{index:06d}" + (f"_seed{int(seed):08d}" if seed not in (None, "") else "")


def label_names_for(configured: list[str] | None, num_classes: int) -> list[str]:
    """Names per label value: the config's ``label_names`` when they fit, else ``class_k``.

    Value 0 is always called ``background`` (nnU-Net requires that key).
    """
    num_classes = max(2, int(num_classes))
    names = [f"class_{k}" for k in range(num_classes)]
    if configured and len(configured) >= num_classes:
        names = [str(n) for n in configured[:num_classes]]
    names[0] = "background"
    return names


def channel_names_for(channels: Any, n: int) -> list[str]:
    """Readable channel names from ``data.preprocess.channels`` (grey, green, RGB, ...)."""
    if isinstance(channels, str) and channels in ("grey", "green") and n == 1:
        return [channels]
    if n == 3 and channels in ("keep", None):
        return ["red", "green", "blue"]
    if n == 1:
        return ["intensity"]
    return [f"channel_{k}" for k in range(n)]


def median_spacing(run_dir: Path, spatial_dims: int) -> tuple[float, ...] | None:
    """Median voxel spacing of the run's real training items, or None when they have none.

    Uses ``spacing_median`` of the train split in ``data_summary.json`` when recorded, else
    re-reads the training data named in the run's ``config.yaml`` (after preprocessing, so a
    resize is accounted for). PNG/TIFF and phantom data carry no spacing.
    """
    from synthmed.api import load_run_config
    from synthmed.data.pipeline import load_splits

    summary = run_dir / "data_summary.json"  # a recorded median saves re-reading the data
    if summary.is_file():
        recorded = json.loads(summary.read_text()).get("train", {}).get("spacing_median")
        if recorded and len(recorded) == spatial_dims:
            return tuple(float(v) for v in recorded)
    try:
        splits = load_splits(load_run_config(run_dir).data)
    except InputError as exc:  # data moved since training: say so, fall back
        log.warning("cannot re-read the run's training data for its spacing (%s)", exc)
        return None
    spacings = [
        it.spacing for it in splits["train"] if it.spacing and len(it.spacing) == spatial_dims
    ]
    if not spacings:
        return None
    return tuple(float(v) for v in np.median(np.asarray(spacings, dtype=float), axis=0))


def resolve_spacing(
    spacing: tuple[float, ...] | list[float] | None, run_dir: Path | None, spatial_dims: int
) -> tuple[tuple[float, ...], str]:
    """Explicit spacing > median of the real training data > 1.0 mm (documented default)."""
    if spacing:
        if len(spacing) != spatial_dims:
            raise InputError(f"--spacing needs {spatial_dims} values, got {list(spacing)}")
        return tuple(float(s) for s in spacing), "given"
    found = median_spacing(run_dir, spatial_dims) if run_dir is not None else None
    if found is not None:
        return found, "median of the real training data"
    return (DEFAULT_SPACING_MM,) * spatial_dims, "default 1.0 mm (training data had no spacing)"


def run_export_info(
    run_dir: Path | None,
    image_channels: int,
    spatial_dims: int,
    max_label: int,
    spacing: tuple[float, ...] | list[float] | None = None,
) -> ExportInfo:
    """Label/channel names from the run's config and checkpoint; spacing as above."""
    configured, channels, num_classes = None, None, max_label + 1
    if run_dir is not None and (run_dir / "config.yaml").is_file():
        from synthmed.api import load_run_config

        cfg = load_run_config(run_dir)
        configured, channels = cfg.data.label_names(), cfg.data.preprocess.channels
        num_classes = max(num_classes, _checkpoint_classes(run_dir))
    value, source = resolve_spacing(spacing, run_dir, spatial_dims)
    return ExportInfo(
        label_names_for(configured, num_classes),
        channel_names_for(channels, image_channels),
        value,
        source,
    )


DATASET_JSON = "dataset.json"


def dataset_description(
    info: ExportInfo,
    image_channels: int,
    spatial_dims: int,
    class_names: list[str] | None = None,
    generator: dict[str, str] | None = None,
    privacy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``dataset.json`` of a sampled dataset folder: what its files cannot tell, so exporters
    and readers never go back to the run's config or checkpoint (``privacy``: the dataset's
    differential-privacy guarantee, ``synthmed.privacy_record.dataset_privacy``)."""
    return {
        "format": "synthmed-dataset-1",
        "synthetic": True,
        "image_channels": int(image_channels),
        "spatial_dims": int(spatial_dims),
        "channel_names": list(info.channel_names),
        "label_names": list(info.label_names),
        "class_names": None if class_names is None else list(class_names),
        "spacing_mm": [float(v) for v in info.spacing],
        "spacing_source": info.spacing_source,
        "generator": generator or {},
        "privacy": privacy,
        "synthmed_version": __version__,
    }


def read_dataset_info(folder: Path, spacing=None) -> ExportInfo | None:
    """The ExportInfo a folder's ``dataset.json`` describes (None when it has none; folders
    sampled before it existed). An explicit ``spacing`` still wins."""
    path = Path(folder) / DATASET_JSON
    if not path.is_file():
        return None
    try:
        desc = json.loads(path.read_text())
        info = ExportInfo(
            list(desc["label_names"]),
            list(desc["channel_names"]),
            tuple(float(v) for v in desc["spacing_mm"]),
            str(desc["spacing_source"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable dataset description: {exc}", path) from None
    if spacing:
        value, source = resolve_spacing(spacing, None, len(info.spacing))
        info = ExportInfo(info.label_names, info.channel_names, value, source)
    return info


def read_export_gate(folder: Path) -> dict[str, Any] | None:
    """The export-gate verdict a sampled folder's ``dataset.json`` records (None: sampled
    before the gate existed, or from a model package, which holds no real data to check)."""
    path = Path(folder) / DATASET_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("export_gate")
    except (ValueError, AttributeError) as exc:
        raise InputError(f"unreadable dataset description: {exc}", path) from None


def _checkpoint_classes(run_dir: Path) -> int:
    last = run_dir / "checkpoints" / "last.pt"
    if not last.is_file():
        return 0
    from synthmed.checkpoints import load_checkpoint

    return int(load_checkpoint(last).get("num_classes", 0))


def manifest_rows(job: ExportJob, outputs: list[dict[str, str]]) -> list[dict[str, str]]:
    """Source manifest rows + edits, near-copy filtering, export format and output paths."""
    rows = []
    for row, out in zip(job.rows, outputs, strict=True):
        rows.append(
            {
                **row,
                "edits": row.get("edits") or "none",
                "near_copy_filtering": row.get("near_copy_filtering") or NOT_APPLIED,
                "export_format": job.fmt,
                "export_image": out.get("image", ""),
                "export_label": out.get("label", ""),
            }
        )
    return rows


def manifest_csv(rows: list[dict[str, str]]) -> str:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def provenance(job: ExportJob) -> dict[str, Any]:
    """The dataset-level record written as ``export.json`` (and embedded where formats allow)."""
    first = job.rows[0] if job.rows else {}
    filtering = sorted({r.get("near_copy_filtering") or NOT_APPLIED for r in job.rows})
    return {
        "synthetic": True,
        "note": "Synthetic images generated by a GAN; no image shows a real patient.",
        "format": job.fmt,
        "n": len(job.rows),
        "generator": {
            k: first.get(k, "") for k in ("model", "checkpoint", "checkpoint_sha256", "config_hash")
        },
        "seeds": [int(r["seed"]) for r in job.rows if r.get("seed") not in (None, "")],
        "near_copy_filtering": filtering[0] if len(filtering) == 1 else filtering,
        "export_gate": job.gate or {"decision": GATE_NOT_RUN},
        "label_names": job.info.label_names,
        "channel_names": job.info.channel_names,
        "spacing_mm": list(job.info.spacing),
        "spacing_source": job.info.spacing_source,
        "synthmed_version": __version__,
        "exported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_provenance(folder: Path, job: ExportJob, outputs: list[dict[str, str]]) -> None:
    write_text(folder / "manifest.csv", manifest_csv(manifest_rows(job, outputs)))
    write_json(folder / "export.json", provenance(job))
