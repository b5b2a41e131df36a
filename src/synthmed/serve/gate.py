"""The publication gate: what a bundle must prove before the server stores it.

After :mod:`synthmed.serve.bundle` has checked the archive itself, the gate checks the content:
the required files exist, the content comes from the generator the privacy audit evaluated
(provenance), the audit's near-copy rate and membership-inference AUCs are within the
server's thresholds, and DICOM headers hold nothing beyond the synthetic whitelist. Each
failure is a :class:`~synthmed.serve.rules.Refusal` naming the rule and the numbers.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthmed.serve.bundle import CARD, CONTENT, METRICS, REPORT
from synthmed.serve.rules import Refusal
from synthmed.serve.settings import ServeSettings


@dataclass(frozen=True)
class Evidence:
    """The numbers the server filters on, read from ``metrics.json``."""

    near_copy_rate: float
    membership_auc: float
    membership_attack: str
    synthetic_only_dice: float | None
    task: str


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def membership_aucs(privacy: dict[str, Any]) -> dict[str, float]:
    """Every membership-attack AUC in the audit, by attack name (pixel/embedding space)."""
    found = {}
    for space in ("pixel", "embedding"):
        block = privacy.get(space) or {}
        for attack, result in (block.get("membership") or {}).items():
            auc = _number((result or {}).get("auc"))
            if auc is not None:
                found[f"{space}.{attack}"] = auc
    logan = _number((privacy.get("membership_logan") or {}).get("auc"))
    if logan is not None:
        found["logan"] = logan
    return found


def synthetic_only_dice(metrics: dict[str, Any]) -> float | None:
    """Mean Dice of a U-Net trained on synthetic data only, on real test data (all patients)."""
    summary = ((metrics.get("utility") or {}).get("segmentation") or {}).get("summary") or {}
    rows = [r for r in summary.get("dice_mean") or [] if r.get("protocol") == "synthetic-only"]
    rows.sort(key=lambda r: r.get("size") != "all")  # the all-patients row first
    return _number(rows[0].get("mean")) if rows else None


def read_evidence(metrics: dict[str, Any]) -> Evidence:
    """Near-copy rate (worst space), highest membership AUC, synthetic-only Dice."""
    privacy = metrics.get("privacy")
    if not isinstance(privacy, dict) or not isinstance(privacy.get("pixel"), dict):
        raise Refusal("privacy_audit_missing", f"{METRICS} has no privacy.pixel section")
    rates = [
        _number((privacy.get(space) or {}).get("fraction_flagged"))
        for space in ("pixel", "embedding")
    ]
    rates = [r for r in rates if r is not None]
    aucs = membership_aucs(privacy)
    if not rates or not aucs:
        missing = "near-copy rate (fraction_flagged)" if not rates else "membership-inference AUC"
        raise Refusal("privacy_audit_missing", f"the privacy audit in {METRICS} has no {missing}")
    attack = max(aucs, key=aucs.get)
    return Evidence(
        near_copy_rate=max(rates),
        membership_auc=aucs[attack],
        membership_attack=attack,
        synthetic_only_dice=synthetic_only_dice(metrics),
        task=str(metrics.get("task") or ""),
    )


def check_thresholds(evidence: Evidence, settings: ServeSettings) -> None:
    if evidence.near_copy_rate > settings.max_near_copy_rate:
        raise Refusal(
            "near_copy_rate",
            f"near-copy rate {evidence.near_copy_rate:.4f} is above the threshold "
            f"{settings.max_near_copy_rate:.4f}",
        )
    if evidence.membership_auc > settings.max_membership_auc:
        raise Refusal(
            "membership_auc",
            f"membership AUC {evidence.membership_auc:.4f} ({evidence.membership_attack}) is above "
            f"the threshold {settings.max_membership_auc:.4f}",
        )


def load_json(files: dict[str, Path], name: str, rule: str) -> dict[str, Any]:
    if name not in files:
        raise Refusal(rule, f"the bundle has no {name}")
    try:
        value = json.loads(files[name].read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refusal(rule, f"{name} is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise Refusal(rule, f"{name} must hold a JSON object")
    return value


def manifest_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def output_files(row: dict[str, str]) -> list[str]:
    """Files a manifest row's export paths name: ``a;b`` (nnU-Net channels) and
    ``archive.npz:key[i]`` (arrays inside one archive) become plain file names."""
    names = []
    for col in ("export_image", "export_label"):
        for part in filter(None, (row.get(col) or "").split(";")):
            names.append(part.split(":", 1)[0] if part.endswith("]") else part)
    return names


def check_dataset(files: dict[str, Path], provenance: dict[str, Any]) -> dict[str, Any]:
    """A dataset export: manifest + export.json, every file named, same generator as audited.

    Returns what the listing shows: format, sample count, label names, model family.
    """
    manifest, export = f"{CONTENT}/manifest.csv", f"{CONTENT}/export.json"
    if manifest not in files or export not in files:
        raise Refusal("manifest_missing", f"a dataset bundle needs {manifest} and {export}")
    info = load_json(files, export, "manifest_missing")
    rows = manifest_rows(files[manifest])
    if info.get("synthetic") is not True:
        raise Refusal("provenance_mismatch", f"{export} does not state synthetic: true")
    if not rows:
        raise Refusal("manifest_missing", f"{manifest} lists no samples")
    audited = provenance.get("checkpoint_sha256")
    for k, row in enumerate(rows):
        if row.get("checkpoint_sha256") != audited:
            raise Refusal(
                "provenance_mismatch",
                f"manifest row {k}: checkpoint_sha256 {str(row.get('checkpoint_sha256'))[:12]} "
                f"is not the audited generator {str(audited)[:12]}",
            )
        for path in output_files(row):
            if f"{CONTENT}/{path}" not in files:
                raise Refusal("manifest_missing", f"manifest row {k}: {path} is not in the bundle")
    return {
        "format": str(info.get("format") or ""),
        "n_samples": len(rows),
        "label_names": [str(n) for n in info.get("label_names") or []],
        "model_family": str((info.get("generator") or {}).get("model") or ""),
        "rows": rows,
    }


def check_model(files: dict[str, Path], provenance: dict[str, Any]) -> dict[str, Any]:
    """A model package: its own checksums and format verify, same config as the audited run."""
    from synthmed.errors import InputError
    from synthmed.packaging.package import read_package_meta, verified_bytes

    folder = files.get(f"{CONTENT}/package.json")
    if folder is None:
        raise Refusal("package_invalid", f"a model bundle needs {CONTENT}/package.json")
    try:
        meta = read_package_meta(verified_bytes(folder.parent), folder.parent)
    except InputError as exc:
        where = Path(exc.path).name if exc.path else f"{CONTENT}/"
        raise Refusal("package_invalid", f"{CONTENT}/{where}: {exc.problem}") from None
    if meta.get("config_hash") != provenance.get("config_hash"):
        raise Refusal(
            "provenance_mismatch",
            f"package config_hash {str(meta.get('config_hash'))[:12]} is not the audited run's "
            f"{str(provenance.get('config_hash'))[:12]}",
        )
    return {
        "format": str(meta.get("format")),
        "n_samples": None,
        "label_names": [str(n) for n in meta["label_names"]],
        "model_family": str(meta["model_name"]),
        "rows": [],
    }


def check_dicom_headers(files: dict[str, Path]) -> None:
    """Every ``.dcm`` file must pass :func:`synthmed.export.dicom.synthetic_header_problems`."""
    dicoms = [name for name in sorted(files) if name.lower().endswith((".dcm", ".dicom"))]
    if not dicoms:
        return
    import pydicom

    from synthmed.export.dicom import synthetic_header_problems

    for name in dicoms:
        try:
            ds = pydicom.dcmread(files[name], stop_before_pixels=False)
        except Exception as exc:  # any parse failure: it cannot be shown to be synthetic
            raise Refusal(
                "dicom_header", f"{name}: unreadable DICOM ({type(exc).__name__})"
            ) from None
        problems = synthetic_header_problems(ds)
        if problems:
            raise Refusal("dicom_header", f"{name}: {'; '.join(problems[:5])}")


def run_gate(files: dict[str, Path], kind: str, settings: ServeSettings) -> dict[str, Any]:
    """All content rules in a fixed order; returns the facts the item row records."""
    metrics = load_json(files, METRICS, "privacy_audit_missing")
    for name, rule in ((REPORT, "report_missing"), (CARD, "card_missing")):
        if name not in files:
            raise Refusal(rule, f"the bundle has no {name}")
    provenance = metrics.get("provenance") or {}
    facts = (check_dataset if kind == "dataset" else check_model)(files, provenance)
    evidence = read_evidence(metrics)
    check_thresholds(evidence, settings)
    check_dicom_headers(files)
    return {**facts, "evidence": evidence, "metrics": metrics}
