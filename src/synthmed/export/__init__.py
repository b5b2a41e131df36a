"""synthmed.export: a synthetic dataset in the layout the user's tools expect.

Formats are chosen by name from :data:`EXPORTERS`: ``nnunet`` (nnU-Net v2 raw dataset),
``monai`` (NIfTI + Decathlon datalist), ``nifti``, ``png`` (8/16 bit), ``npz`` (MedMNIST
layout) and ``dicom`` (Secondary Capture marked synthetic). Every export folder carries the
provenance manifest (``manifest.csv`` + ``export.json``).

Example:
    >>> from synthmed.export import export_dataset
    >>> export_dataset("runs/demo/synthetic", "nnunet", "nnUNet_raw")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from synthmed.atomic import atomic_dir
from synthmed.errors import InputError

# Imported explicitly (not discovered) so that every format registers on package import.
from synthmed.export import dicom, monai_datalist, nifti, nnunet, npz, png
from synthmed.export.core import (
    EXPORTERS,
    ExportInfo,
    ExportJob,
    read_dataset_info,
    read_export_gate,
    run_export_info,
    write_provenance,
)
from synthmed.progress import stage

__all__ = [
    "EXPORTERS",
    "ExportInfo",
    "ExportJob",
    "dicom",
    "export_dataset",
    "formats",
    "monai_datalist",
    "nifti",
    "nnunet",
    "npz",
    "png",
    "run_export_info",
]


def formats() -> list[str]:
    """Names accepted by ``--format``."""
    return EXPORTERS.names()


def _find_run(synthetic_dir: Path) -> Path | None:
    """``RUN/synthetic`` belongs to ``RUN``: take label names and spacing from there."""
    parent = synthetic_dir.resolve().parent
    return parent if (parent / "config.yaml").is_file() else None


def export_target(fmt: str, out_dir: str | Path, name: str | None = None) -> Path:
    """The folder an export of format ``fmt`` into ``out_dir`` writes (``nnunet``: a
    ``DatasetNNN_Name`` folder inside the raw folder).

    Raises:
        InputError: an unknown format or dataset name.
    """
    from types import SimpleNamespace

    try:
        exporter = EXPORTERS.get(fmt)
    except KeyError as exc:
        raise InputError(f"--format: {exc.args[0]}") from None
    return exporter.target(Path(out_dir), SimpleNamespace(name=name))


def check_export_request(
    fmt: str,
    out_dir: str | Path,
    *,
    synthetic_dir: str | Path,
    run_dir: str | Path | None = None,
    name: str | None = None,
    bits: int = 8,
) -> Path:
    """Refuse a bad export before anything is read or sampled; returns the target folder.

    Raises:
        InputError: unknown format or name, bits not 8/16, or a target that writing would
            damage (a file, a non-empty folder of other files, the dataset being exported,
            the run folder).
    """
    from synthmed.outputs import check_output_dir

    target = export_target(fmt, out_dir, name)
    if bits not in (8, 16):
        raise InputError(f"--bits must be 8 or 16, got {bits}")
    protected = {"the run folder": run_dir, "the synthetic dataset being exported": synthetic_dir}
    return check_output_dir(target, protected=protected)


def _checked_gate(folder: Path, reason: str | None) -> dict | None:
    """The source folder's export-gate verdict, refusing an ``audit only`` folder (one line)
    unless a reason is given; the reason joins the verdict in ``export.json``."""
    gate = read_export_gate(folder)
    if gate is None or gate.get("decision") != "audit only":
        return gate
    if reason is None or not reason.strip():
        fails = f"; it fails: {gate['refusal']}" if gate.get("refusal") else ""
        raise InputError(
            "export: refused by the export gate: the dataset was sampled for evaluation only "
            f"(near-copies kept){fails}; sample it with `synthmed sample` to pass the gate, "
            "or pass --allow-privacy-risk 'REASON' to export it anyway",
            folder,
        )
    return {**gate, "export_allow_privacy_risk": " ".join(reason.split())}


def export_dataset(
    synthetic_dir: str | Path,
    fmt: str,
    out_dir: str | Path,
    *,
    run_dir: str | Path | None = None,
    name: str | None = None,
    bits: int = 8,
    spacing: tuple[float, ...] | list[float] | None = None,
    info: ExportInfo | None = None,
    quiet: bool = False,
    allow_privacy_risk: str | None = None,
) -> Path:
    """Convert a synthetic dataset folder (``synthmed sample`` output) to format ``fmt``.

    A folder the export gate marked ``audit only`` (sampled for evaluation, near-copies kept)
    is refused unless ``allow_privacy_risk`` gives a reason, recorded in ``export.json``.

    Args:
        synthetic_dir: folder with ``images/``, ``labels/`` and ``manifest.csv``.
        fmt: a name in :data:`EXPORTERS` (see :func:`formats`).
        out_dir: export folder (``nnunet``: the nnU-Net raw folder that receives
            ``DatasetNNN_Name/``, or that dataset folder itself).
        run_dir: the run that made the data (label names, real-data spacing); default the
            synthetic folder's parent when it is a run folder.
        name: dataset name (``nnunet``: ``DatasetNNN_Name`` or a bare name -> id 500).
        bits: 8 or 16 for integer formats (png, npz, dicom).
        spacing: mm per spatial axis (array order); default: median of the real data, or 1.0.
        info: label/channel names and spacing, instead of reading them from ``run_dir``.

    Returns:
        The folder written (atomically: it appears only when complete).
    """
    from synthmed.data.synthetic import read_manifest, read_synthetic_arrays

    synthetic_dir = Path(synthetic_dir)
    check_export_request(
        fmt, out_dir, synthetic_dir=synthetic_dir, run_dir=run_dir, name=name, bits=bits
    )
    exporter = EXPORTERS.get(fmt)
    gate = _checked_gate(synthetic_dir, allow_privacy_risk)  # before the arrays are read
    rows = read_manifest(synthetic_dir)
    images, labels = read_synthetic_arrays(synthetic_dir)
    if info is None and run_dir is None:
        info = read_dataset_info(synthetic_dir, spacing)
    if info is None:  # a folder sampled before dataset.json existed
        run = Path(run_dir) if run_dir is not None else _find_run(synthetic_dir)
        info = run_export_info(run, images.shape[1], images.ndim - 2, int(labels.max()), spacing)
    job = ExportJob(images, labels, rows, info, fmt.lower(), name, bits)
    job.gate = gate
    target = exporter.target(Path(out_dir), job)
    job.name = name or target.name
    with atomic_dir(target) as tmp, stage(f"export {job.fmt}", len(rows), quiet) as bar:
        job.advance = bar.advance
        outputs = exporter.write(job, tmp)
        write_provenance(tmp, job, outputs)
    return target
