"""The export gate: ``synthmed sample`` publishes a dataset only when it does not copy its
training data.

The sampler writes the whole dataset into a temporary folder and calls the gate on it before
the folder is renamed into place (:func:`synthmed.atomic.atomic_dir`). The gate reads the
samples back as a user would get them, drops and counts the near-copies of training rows
(the calibrated threshold of ``--exclude-near-copies``), and applies the two rules of
:mod:`synthmed.evaluation.privacy.gate_rules`. A refusal raises :class:`GateRefused` (one
line with the numbers; exit code 2), so the temporary folder is deleted and the output
folder stays as it was. Otherwise the verdict is written to ``gate.json``, into
``dataset.json`` (``export_gate``) and as the manifest's ``export_gate`` column, which every
export format carries on. An override (``--allow-privacy-risk REASON``) turns a refusal into
``overridden`` with the reason recorded in the same three places.

``audit_only`` (the reproduction runner, which must evaluate every sample the paper's
protocol draws) computes and records the same numbers but neither drops nor refuses; such a
folder is marked ``audit only`` and ``synthmed export`` refuses to convert it without an
override.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthmed.atomic import write_json, write_text
from synthmed.config.loading import read_run_config
from synthmed.config.schema import GateConfig
from synthmed.data.synthetic import read_manifest, read_synthetic_arrays
from synthmed.errors import InputError
from synthmed.evaluation.filtering import (
    COLUMN,
    FILE_COLUMNS,
    manifest_text,
    ncc_pixel_size,
    reference_rows,
)
from synthmed.evaluation.privacy.audit import pixel_space
from synthmed.evaluation.privacy.gate_rules import (
    distinct_rows,
    membership_rule,
    near_copy_rule,
    seeded_subset,
)

log = logging.getLogger(__name__)

GATE_JSON = "gate.json"
GATE_COLUMN = "export_gate"
OVERRIDE_HINT = "pass --allow-privacy-risk 'REASON' to write it anyway"
AUDIT_ONLY = "audit only"
AUDIT_COLUMN = "audit only: sampled for evaluation, near-copies kept, not for sharing"


class GateRefused(InputError):
    """The export gate refused the dataset; nothing was written. ``record``: its numbers."""

    def __init__(self, line: str, record: dict[str, Any]) -> None:
        super().__init__(line)
        self.record = record


@dataclass
class Reference:
    """What the samples are compared with: real training and held-out rows (N, C, *S) in
    [0, 1], the NCC side, and the run's cached encoder when one exists (else None)."""

    train: np.ndarray
    holdout: np.ndarray
    pixel_size: int | None
    extractor: Any | None = None


@dataclass
class ExportGate:
    """The gate of one sampling call; call it on the finished temporary dataset folder."""

    settings: GateConfig
    quantile: float
    reference: Reference | None = None
    not_checked: str | None = None  # why the run could not be checked (override given)
    audit_only: bool = False  # record the verdict, never drop or refuse (evaluation only)

    def __call__(self, folder: Path) -> dict[str, Any]:
        return apply_gate(self, Path(folder))


def prepare_gate(
    run_dir: str | Path,
    settings: GateConfig,
    quantile: float,
    device: str = "cpu",
    audit_only: bool = False,
) -> ExportGate:
    """Load what the gate compares with, before anything is generated: a run whose real data
    cannot be read is refused at once (unless overridden or ``audit_only``), not after
    sampling."""
    gate = ExportGate(settings, quantile, audit_only=audit_only)
    if not settings.enabled:
        return gate
    try:
        real, holdout = reference_rows(Path(run_dir), "the export gate")
    except InputError as exc:
        if settings.allow_privacy_risk is None and not audit_only:
            raise InputError(
                f"sample: the export gate cannot check this run ({exc}); restore the run's "
                "real data, or pass --allow-privacy-risk 'REASON' to write it unchecked"
            ) from None
        gate.not_checked = str(exc)
        return gate
    extractor = _cached_extractor(Path(run_dir), real.images, device)
    gate.reference = Reference(real.images, holdout.images, ncc_pixel_size(real.images), extractor)
    return gate


def _cached_extractor(run_dir: Path, images: np.ndarray, device: str):
    """The run's fitted evaluation encoder if it is cached (``synthmed evaluate`` or
    ``train.select`` fitted it), else None: the gate never trains one."""
    from synthmed.devices import resolve_device
    from synthmed.evaluation.fidelity.extractors import cached_encoder

    ecfg = read_run_config(run_dir).evaluate
    if ecfg.extractor != "encoder" or not (run_dir / "evaluation").is_dir():
        return None
    dev = str(resolve_device(device))
    return cached_encoder(run_dir / "evaluation", images, steps=ecfg.encoder_steps, device=dev)


def apply_gate(gate: ExportGate, folder: Path) -> dict[str, Any]:
    """Check, drop near-copies and record in ``folder`` (the sampler's temporary folder).

    Raises:
        GateRefused: a rule failed and no override was given (``folder`` is left as is: the
            sampler deletes it).
        InputError: every sample is a near-copy, so nothing would be left.
    """
    s = gate.settings
    rows = read_manifest(folder)
    reason = s.allow_privacy_risk
    if not s.enabled:
        record = {"enabled": False, "decision": "disabled", "why": "sample.gate.enabled: false"}
        return _publish(folder, rows, None, record, "disabled", None)
    if gate.reference is None:
        decision = AUDIT_ONLY if gate.audit_only else "overridden"
        record = {
            "enabled": True,
            "checked": False,
            "decision": decision,
            "why_not_checked": gate.not_checked,
            "allow_privacy_risk": reason,
        }
        column = AUDIT_COLUMN if gate.audit_only else f"overridden (not checked): {reason}"
        return _publish(folder, rows, None, record, column, None)
    images, _ = read_synthetic_arrays(folder)
    record, mask = _check(gate, images)
    if record["failed_rules"]:
        record["refusal"] = "; ".join(failed_rules_text(record))
    if gate.audit_only:
        return _publish(folder, rows, None, record, AUDIT_COLUMN, None)
    dropped = np.flatnonzero(mask) if s.drop_near_copies else []
    record["dropped"] = [
        {"index": rows[i].get("index"), "seed": rows[i].get("seed")} for i in dropped
    ]
    if record["failed_rules"] and reason is None:
        raise GateRefused(refusal_line(record), record)
    keep = ~mask if s.drop_near_copies else np.ones(len(rows), dtype=bool)
    if not keep.any():
        raise InputError(
            f"sample: all {len(rows)} synthetic samples are near-copies of training images; "
            "nothing is left to write (set sample.gate.drop_near_copies=false to keep them)"
        )
    column = "passed" if record["decision"] == "passed" else f"overridden: {reason}"
    note = record["near_copies"]
    filtering = f"applied: threshold={note['threshold']:.6g}, quantile={note['quantile']:g}"
    return _publish(folder, rows, keep, record, column, filtering if s.drop_near_copies else None)


def _check(gate: ExportGate, images: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Both rules on the samples (N, C, *S); the record and the near-copy mask."""
    s, ref = gate.settings, gate.reference
    if images.shape[1:] != ref.train.shape[1:]:
        raise InputError(
            f"the export gate: synthetic images have shape {images.shape[1:]} but the run's "
            f"training rows {ref.train.shape[1:]}"
        )
    space = pixel_space(images, ref.train, ref.holdout, ref.pixel_size)
    syn, train, hold, metric = space
    h_idx = distinct_rows(ref.holdout)
    near, mask = near_copy_rule(
        syn, train, hold, len(h_idx), gate.quantile, s.alpha, s.max_near_copy_rate, metric
    )
    drop = s.drop_near_copies and not gate.audit_only
    kept = np.flatnonzero(~mask) if drop else np.arange(len(images))
    membership = _membership(gate, images, kept, space, h_idx) if kept.size else None
    failed = [
        rule
        for rule, verdict in (("near_copy_rate", near), ("membership_auc", membership))
        if verdict is not None and not verdict["passed"]
    ]
    n_dropped = int(mask.sum()) if drop else 0
    decision = "overridden" if failed else "passed"
    record = {
        "format": "synthmed-gate-1",
        "enabled": True,
        "checked": True,
        "decision": AUDIT_ONLY if gate.audit_only else decision,
        "failed_rules": failed,
        "allow_privacy_risk": s.allow_privacy_risk,
        "n_before": len(images),
        "n_dropped": n_dropped,
        "n_after": len(images) - n_dropped,
        "near_copies": {**near, "drop_near_copies": drop},
        "membership": membership,
        "settings": s.model_dump(mode="json"),
    }
    return record, mask


def _membership(
    gate: ExportGate, images: np.ndarray, kept: np.ndarray, space: tuple, h_idx: np.ndarray
) -> dict[str, Any]:
    """The membership rule on at most ``membership_n`` kept samples, distinct training rows
    and distinct held-out rows, in the cached encoder's space when there is one."""
    s, ref = gate.settings, gate.reference
    members = seeded_subset(distinct_rows(ref.train), s.membership_n, seed=1)
    nonmembers = seeded_subset(h_idx, s.membership_n, seed=2)
    picked = seeded_subset(kept, s.membership_n, seed=3)
    if ref.extractor is not None:

        def embed(x: np.ndarray) -> np.ndarray:
            return ref.extractor.embed(x).double().cpu().numpy()

        name, metric = "embedding (the run's cached encoder)", "l2"
        rows = [embed(images[picked]), embed(ref.train[members]), embed(ref.holdout[nonmembers])]
    else:
        syn, train, hold, metric = space
        name = "pixel space (1 - NCC)"
        rows = [syn[picked], train[members], hold[nonmembers]]
    verdict = membership_rule(*rows, s.max_membership_auc, s.alpha, metric)
    verdict["space"] = name
    verdict["attack"] = "GAN-Leaks full black-box (Chen et al. 2020) on the kept samples"
    return verdict


def refusal_line(record: dict[str, Any]) -> str:
    """The one line a refusal prints: each failed rule with its numbers, then the override."""
    parts = failed_rules_text(record)
    return "sample: refused by the export gate: " + "; ".join(parts) + f"; {OVERRIDE_HINT}"


def failed_rules_text(record: dict[str, Any]) -> list[str]:
    """Each failed rule with its numbers, e.g. ``near-copy rate 1 (24/24) > limit ...``."""
    parts = []
    near, mem = record["near_copies"], record["membership"]
    if "near_copy_rate" in record["failed_rules"]:
        parts.append(
            f"near-copy rate {near['rate']:.3g} ({near['n_flagged']}/{near['n']}) > limit "
            f"{near['limit_rate']:.3g} ({near['limit_count']}/{near['n']}; "
            f"{near['null_source']} {near['null_rate']:.3g}, binomial p {near['p_value']:.2g} "
            f"< alpha {near['alpha']:g})"
        )
    if "membership_auc" in record["failed_rules"]:
        parts.append(
            f"membership AUC {mem['auc']:.3g} > limit {mem['max_auc']:g} (GAN-Leaks in "
            f"{mem['space']}, {mem['n_members']} training vs {mem['n_nonmembers']} held-out "
            f"rows, Mann-Whitney p {mem['p_value']:.2g} < alpha {mem['alpha']:g})"
        )
    return parts


def describe(record: dict[str, Any]) -> str:
    """One line for the console after a dataset was written."""
    if not record.get("enabled"):
        return "export gate: disabled (sample.gate.enabled: false); near-copies not checked"
    if not record.get("checked"):
        if record["decision"] == AUDIT_ONLY:
            return f"export gate: audit only, not checked ({record['why_not_checked']})"
        return f"export gate: overridden, not checked: {record['allow_privacy_risk']}"
    near, mem = record["near_copies"], record["membership"]
    text = (
        f"export gate: {record['decision']}: near-copies {near['n_flagged']} of {near['n']} "
        f"({'dropped' if near['drop_near_copies'] else 'kept'}; limit {near['limit_count']})"
    )
    if mem is not None:
        text += f", membership AUC {mem['auc']:.3g} (limit {mem['max_auc']:g})"
    if record["decision"] == "overridden":
        text += f"; override: {record['allow_privacy_risk']}"
    if record["decision"] == AUDIT_ONLY:
        text += f"; would refuse: {record['refusal']}" if record["failed_rules"] else ""
    return text


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The record without per-sample lists and settings (for dataset.json and reports)."""
    return {k: v for k, v in record.items() if k not in ("dropped", "settings")}


def _publish(
    folder: Path,
    rows: list[dict[str, str]],
    keep: np.ndarray | None,
    record: dict[str, Any],
    column: str,
    filtering: str | None,
) -> dict[str, Any]:
    """Delete the dropped samples' files, rewrite the manifest, write the records."""
    keep = np.ones(len(rows), dtype=bool) if keep is None else keep
    kept = []
    for row, ok in zip(rows, keep, strict=True):
        if not ok:
            for name in FILE_COLUMNS:
                if row.get(name):
                    (folder / row[name]).unlink(missing_ok=True)
            continue
        extra = {GATE_COLUMN: column}
        if filtering is not None:
            extra[COLUMN] = filtering
        kept.append({**row, **extra})
    fields = list(rows[0].keys()) if rows else []
    fields += [c for c in (COLUMN, GATE_COLUMN) if c not in fields]
    write_text(folder / "manifest.csv", manifest_text(kept, fields))
    write_json(folder / GATE_JSON, record)
    description = folder / "dataset.json"
    if description.is_file():
        desc = json.loads(description.read_text())
        desc["export_gate"] = summary(record)
        write_json(description, desc)
    log.info(describe(record))
    return record


def read_gate(folder: str | Path) -> dict[str, Any] | None:
    """A dataset folder's gate record, or None (sampled before the gate existed, or from a
    model package, which holds no real data to check against)."""
    path = Path(folder) / GATE_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"unreadable export gate record: {exc}", path) from None
