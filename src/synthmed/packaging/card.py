"""Model cards (Markdown + JSON) for packaged generators (Mitchell et al. 2019, "Model Cards").

The card is built from the run's own artefacts only, through allow-lists: dataset counts,
shapes and foreground fractions from ``data_summary.json`` (never patient IDs or file paths),
training settings from the config, and numeric results from ``metrics.json``.
"""

from __future__ import annotations

import json
from typing import Any

from synthmed.privacy_record import describe

SUMMARY_KEYS = (
    "n_items",
    "n_patients",
    "image_shape",
    "channels",
    "spatial_dims",
    "intensity_range",
    "n_labelled",
    "label_classes",
    "foreground_fraction",
    "class_counts",
    "class_names",
)
TRAIN_KEYS = ("method", "steps", "batch_size", "lr_g", "lr_d", "betas", "n_critic", "gp_lambda")
METRIC_SECTIONS = ("fidelity", "utility", "privacy")
SKIP_KEY_PARTS = ("per_", "patient", "path", "_dir", "file")  # tables and locations stay out
MAX_METRICS = 60
NOT_EVALUATED = "not evaluated"

INTENDED_USE = {
    "primary": "research and development: prototyping and testing image-analysis pipelines, "
    "data augmentation experiments, teaching",
    "out_of_scope": "clinical decisions, diagnosis, or validating a model that will be used "
    "on patients (validate on real, held-out data)",
}


def describe_training_data(config: dict, summary: dict | None) -> dict[str, Any]:
    """Source kind and allow-listed per-split statistics; no IDs, names or paths."""
    train = config.get("data", {}).get("train", {})
    data: dict[str, Any] = {"source_kind": train.get("kind", "unknown")}
    if train.get("kind") == "phantom":
        data["phantom"] = (train.get("phantom") or {}).get("kind")
    data["preprocess"] = config.get("data", {}).get("preprocess", {})
    data["splits"] = {
        split: {k: stats[k] for k in SUMMARY_KEYS if k in stats}
        for split, stats in (summary or {}).items()
        if isinstance(stats, dict)
    }
    return data


def flatten_metrics(metrics: dict | None) -> dict[str, float] | str:
    """Numeric results of the fidelity/utility/privacy sections as ``a.b.c: value``."""
    if not metrics:
        return NOT_EVALUATED
    flat: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if len(flat) >= MAX_METRICS:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float, dict)):
            return
        if isinstance(value, dict):
            for key, sub in value.items():
                if not any(part in str(key).lower() for part in SKIP_KEY_PARTS):
                    walk(f"{prefix}.{key}", sub)
            return
        flat[prefix] = float(value)

    for section in METRIC_SECTIONS:
        if section in metrics:
            walk(section, metrics[section])
    return flat or NOT_EVALUATED


def gate_summary(gate: dict | None) -> dict[str, Any]:
    """The export gate's verdict on the run's synthetic dataset, allow-listed for the card
    (decision, override reason, near-copy and membership numbers; no sample lists)."""
    if not gate:
        return {"decision": "not run"}
    out = {k: gate.get(k) for k in ("decision", "allow_privacy_risk", "failed_rules")}
    near, mem = gate.get("near_copies") or {}, gate.get("membership") or {}
    keys = ("n", "n_flagged", "rate", "limit_rate", "null_source", "null_rate", "p_value")
    out["near_copies"] = {k: near[k] for k in keys if k in near} or None
    keys = ("auc", "max_auc", "p_value", "space", "n_members", "n_nonmembers")
    out["membership"] = {k: mem[k] for k in keys if k in mem} or None
    return out


def limitations(meta: dict, data: dict, evaluation: dict | str) -> list[str]:
    train = data["splits"].get("train", {})
    items = [
        f"Trained on {train.get('n_items', '?')} images from {train.get('n_patients', '?')} "
        f"patients ({data['source_kind']} data): it can only produce what these contain, "
        "including their biases and artefacts.",
        f"Generates {meta['model_kwargs'].get('spatial_size')} samples with "
        f"{meta['image_channels']} channel(s); label maps come from the same generator "
        f"(threshold {meta['sample_defaults']['label_threshold']}) and may be implausible.",
        "Samples may resemble training images (memorisation); check the privacy results and "
        "filter near-copies before sharing generated data.",
        "Synthetic images are not validated for any clinical use.",
    ]
    privacy = meta["training"].get("privacy")
    if privacy is None:
        items.append(
            "Not trained with differential privacy: no formal bound on what the generator "
            "reveals about a training record."
        )
    else:
        items.append(
            f"Differential privacy (epsilon {privacy['epsilon']}, delta {privacy['delta']:g}) "
            f"protects {privacy['protects']}; it bounds the training's leakage, the "
            "membership-attack AUC above is an empirical check of it."
        )
    if evaluation == NOT_EVALUATED:
        items.append("No evaluation was run: fidelity, utility and privacy are unknown.")
    return items


def build_card(
    meta: dict,
    config: dict,
    summary: dict | None,
    metrics: dict | None,
    gate: dict | None = None,
) -> tuple[str, dict]:
    """Card as (Markdown, JSON-able dict) from package metadata and run artefacts (``gate``:
    the run's ``synthetic/gate.json``)."""
    data = describe_training_data(config, summary)
    evaluation = flatten_metrics(metrics)
    export_gate = gate_summary(gate)
    items = limitations(meta, data, evaluation)
    if export_gate["decision"] == "overridden":
        items.append(
            "The run's synthetic dataset was written although the export gate refused it; "
            f"reason given: {export_gate['allow_privacy_risk']}."
        )
    elif export_gate["decision"] == "audit only" and export_gate.get("failed_rules"):
        items.append(
            "The export gate would refuse the run's synthetic dataset (sampled for evaluation "
            f"only): {', '.join(export_gate['failed_rules'])}."
        )
    evaluated_sha = ((metrics or {}).get("provenance") or {}).get("checkpoint_sha256")
    card = {
        "model": {
            "name": meta["name"],
            "architecture": meta["model_name"],
            "synthmed_version": meta["synthmed_version"],
            "created": meta["created"],
            "config_hash": meta["config_hash"],
            "label_names": meta["label_names"],
        },
        "intended_use": INTENDED_USE,
        "training_data": data,
        "training_settings": {
            **{k: config.get("train", {}).get(k) for k in TRAIN_KEYS},
            "model": config.get("model", {}),
            "generator_steps": meta["training"]["steps"],
        },
        "differential_privacy": meta["training"].get("privacy") or "not trained with DP",
        "evaluation": evaluation,
        "evaluated_checkpoint_matches": (
            None if evaluated_sha is None else evaluated_sha == meta["source_checkpoint_sha256"]
        ),
        "export_gate": export_gate,
        "limitations": items,
    }
    return render_markdown(card), card


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return "-" if value is None else str(value)


def _table(rows: dict[str, Any]) -> list[str]:
    lines = ["| key | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows.items()]
    return lines


def render_markdown(card: dict) -> str:
    model, data = card["model"], card["training_data"]
    lines = [
        f"# Model card: {model['name']}",
        "",
        f"A `{model['architecture']}` generator of labelled SYNTHETIC images (image + label map),",
        f"packaged by synthmed {model['synthmed_version']} on {model['created']}.",
        f"Labels: {', '.join(f'{v}={n}' for v, n in enumerate(model['label_names']))}.",
        "",
        "## Intended use",
        "",
        f"- Primary: {card['intended_use']['primary']}.",
        f"- Out of scope: {card['intended_use']['out_of_scope']}.",
        "",
        "## Training data",
        "",
        f"Source kind: {data['source_kind']}. Counts and statistics only; no patient data.",
        "",
    ]
    for split, stats in data["splits"].items():
        lines += [f"### {split}", "", *_table(stats), ""]
    lines += ["## Training settings", "", *_table(card["training_settings"]), ""]
    dp = card["differential_privacy"]
    lines += ["## Differential privacy", "", describe(dp if isinstance(dp, dict) else None) + "."]
    if isinstance(dp, dict):
        keys = ("epsilon", "epsilon_target", "delta", "accountant", "noise_multiplier")
        keys += ("max_grad_norm", "dp_steps", "lipschitz", "unit")
        lines += ["", *_table({k: dp.get(k) for k in keys})]
    lines.append("")
    lines += ["## Evaluation", ""]
    if isinstance(card["evaluation"], dict):
        lines += _table(card["evaluation"])
        if card["evaluated_checkpoint_matches"] is False:
            lines += ["", "Note: these results were computed for another checkpoint."]
    else:
        lines.append(f"{card['evaluation']} (run `synthmed evaluate` before packaging).")
    lines += ["", "## Export gate", "", *_gate_lines(card.get("export_gate") or {})]
    lines += ["", "## Limitations", "", *[f"- {item}" for item in card["limitations"]]]
    return "\n".join(lines) + "\n"


def _gate_lines(gate: dict) -> list[str]:
    """The privacy check ``synthmed sample`` made before writing the run's synthetic data."""
    lines = [f"Decision: {gate.get('decision', 'not run')}."]
    if gate.get("allow_privacy_risk"):
        lines[0] += f" Override reason: {gate['allow_privacy_risk']}."
    for key in ("near_copies", "membership"):
        if gate.get(key):
            lines += ["", f"{key.replace('_', ' ')}:", "", *_table(gate[key])]
    return lines
