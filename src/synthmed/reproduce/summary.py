"""Pure functions from the arms' metrics.json files to one experiment's results: pooled
utility rows, per-cell statistics, paired tests against the baseline, claim verdicts, and the
fidelity/privacy figures of each synthetic set.

Rows of every arm and fold are pooled; a row's ``pair`` key (fold and seed) pairs it with the
baseline row trained on the same real subset, initialisation and batches (the utility harness
draws them from the seed alone), so arms of one experiment share one set of real-only models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from synthmed.evaluation.utility.stats import bootstrap_ci, paired_wilcoxon, summarize
from synthmed.reproduce.spec import BASELINE, REAL_ARM, ClaimSpec

SEGMENTATION_METRICS = ("dice_mean", "hd95_mean")
CLASSIFICATION_METRICS = (
    "balanced_accuracy",
    "sensitivity_macro",
    "specificity_macro",
    "auc_macro",
)
_ROW_KEYS = ("task", "protocol", "size", "seed", "n_real_patients", "n_real_rows")


def task_metrics(task: str) -> tuple[str, ...]:
    return SEGMENTATION_METRICS if task == "segmentation" else CLASSIFICATION_METRICS


def tagged_rows(metrics: dict, arm: str, fold: int) -> list[dict]:
    """The utility rows of one arm's metrics.json, scalar scores only, tagged with the arm
    (``real data`` for rows that use no synthetic rows), the fold and the pairing key."""
    out = []
    for section in (metrics.get("utility") or {}).values():
        for row in section.get("rows", []):
            tagged = {k: row[k] for k in _ROW_KEYS if k in row}
            tagged["n_synthetic_rows"] = int(row.get("n_synthetic_rows", 0))
            for metric in task_metrics(row.get("task", "segmentation")):
                if metric in row:
                    tagged[metric] = _number(row[metric])
            tagged["arm"] = REAL_ARM if tagged["n_synthetic_rows"] == 0 else arm
            tagged["fold"] = fold
            tagged["pair"] = f"{fold}:{row['seed']}"
            out.append(tagged)
    return out


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def cell_table(rows: Sequence[dict], metrics: Sequence[str]) -> list[dict]:
    """One entry per (arm, protocol, size): per metric mean, std, n and 95% bootstrap CI."""
    by = ("arm", "protocol", "size")
    cells: dict[tuple, dict] = {}
    for metric in metrics:
        for entry in summarize([r for r in rows if metric in r], metric, by=by):
            cell = cells.setdefault(tuple(entry[k] for k in by), {k: entry[k] for k in by})
            cell[metric] = {k: entry[k] for k in ("mean", "std", "n", "ci_low", "ci_high")}
    return list(cells.values())


def _label(arm: str, protocol: str) -> str:
    return f"{arm} | {protocol}"


def baseline_tests(rows: Sequence[dict], metric: str) -> dict:
    """Each (arm, protocol) against real data + classic augmentation, per size, paired on
    fold and seed (two-sided Wilcoxon; flagged underpowered below 6 pairs)."""
    relabelled = [{**r, "protocol": _label(r["arm"], r["protocol"])} for r in rows]
    return paired_wilcoxon(
        relabelled, metric, baseline=_label(REAL_ARM, BASELINE), by=("size",), pair_on="pair"
    )


def _cell(rows: Sequence[dict], arm: str, protocol: str, size) -> dict[str, dict]:
    return {
        r["pair"]: r
        for r in rows
        if r["arm"] == arm and r["protocol"] == protocol and str(r["size"]) == str(size)
    }


def claim_verdict(rows: Sequence[dict], claim: ClaimSpec, metric: str) -> dict:
    """The claim checked on paired differences (claim cell minus ``versus`` cell).

    ``better`` holds when the 95% bootstrap CI of the mean difference lies above 0 and is
    reversed when it lies below 0; ``within`` holds when the CI lies above ``-margin`` and
    does not hold when it lies below. Anything else is inconclusive, as is a claim with
    fewer than 2 pairs.
    """
    metric = claim.metric or metric
    mine = _cell(rows, claim.arm, claim.protocol, claim.size)
    vs_size = claim.size if claim.versus_size is None else claim.versus_size
    theirs = _cell(rows, claim.versus_arm, claim.versus, vs_size)
    pairs = sorted(set(mine) & set(theirs))
    a = np.array([mine[p].get(metric, math.nan) for p in pairs], dtype=float)
    b = np.array([theirs[p].get(metric, math.nan) for p in pairs], dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    diffs = a[ok] - b[ok]
    low, high = bootstrap_ci(diffs) if len(diffs) else (math.nan, math.nan)
    floor = 0.0 if claim.kind == "better" else -claim.margin
    if len(diffs) < 2:
        verdict = "inconclusive (fewer than 2 pairs)"
    elif low > floor:
        verdict = "holds"
    elif high < floor:
        verdict = "reversed" if claim.kind == "better" else "does not hold"
    else:
        verdict = "inconclusive"
    return {
        **claim.model_dump(mode="json"),
        "metric": metric,
        "n_pairs": int(len(diffs)),
        "ours": float(a[ok].mean()) if ok.any() else math.nan,
        "ours_versus": float(b[ok].mean()) if ok.any() else math.nan,
        "mean_diff": float(diffs.mean()) if len(diffs) else math.nan,
        "diff_ci_low": low,
        "diff_ci_high": high,
        "verdict": verdict,
    }


def is_diffusion_arm(arm: str) -> bool:
    """Arms are named by their generator; every diffusion arm has "diffusion" in its name."""
    return "diffusion" in arm


def _size(size: str) -> int | str:
    return int(size) if size.isdigit() else size


def generator_comparison(rows: Sequence[dict], metric: str) -> list[dict]:
    """Each (protocol, size) cell of each diffusion arm beside the best GAN arm of that cell
    (highest mean ``metric``), with the paired difference diffusion minus that GAN: the
    GAN-vs-diffusion column of the reproduction report."""
    arms = {r["arm"] for r in rows if r["arm"] != REAL_ARM}
    gans = sorted(a for a in arms if not is_diffusion_arm(a))
    out = []
    for arm in sorted(arms - set(gans)):
        cells = sorted({(r["protocol"], str(r["size"])) for r in rows if r["arm"] == arm})
        for protocol, size in cells:
            means = {}
            for gan in gans:
                values = [
                    r.get(metric, math.nan) for r in _cell(rows, gan, protocol, size).values()
                ]
                if values and np.isfinite(values).any():
                    means[gan] = float(np.nanmean(values))
            if not means:
                continue
            best = max(means, key=means.__getitem__)
            claim = ClaimSpec(
                id="diffusion-vs-gan",
                text="",
                paper="",
                arm=arm,
                protocol=protocol,
                size=_size(size),
                versus_arm=best,
                versus=protocol,
            )
            verdict = claim_verdict(rows, claim, metric)
            better = {"holds": "diffusion", "reversed": "GAN"}.get(verdict["verdict"])
            out.append(
                {
                    "diffusion_arm": arm,
                    "gan_arm": best,
                    "protocol": protocol,
                    "size": _size(size),
                    "metric": metric,
                    "diffusion": verdict["ours"],
                    "gan": verdict["ours_versus"],
                    "mean_diff": verdict["mean_diff"],
                    "diff_ci_low": verdict["diff_ci_low"],
                    "diff_ci_high": verdict["diff_ci_high"],
                    "n_pairs": verdict["n_pairs"],
                    "better": better or "neither (CI spans 0)",
                }
            )
    return out


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def fidelity_privacy(metrics: dict) -> dict:
    """The headline fidelity and privacy figures of one synthetic set, each synthetic-vs-train
    number next to its held-out-real-vs-train reference."""
    fid, priv = metrics.get("fidelity") or {}, metrics.get("privacy") or {}
    syn = _get(fid, "feature_space", "synthetic_vs_train") or {}
    ref = _get(fid, "feature_space", "holdout_vs_train") or {}
    keys = ("kid_mean", "kid_std", "fd", "precision", "recall", "density", "coverage")
    calibrated = _get(priv, "embedding", "membership", "gan_leaks_calibrated") or {}
    logan = priv.get("membership_logan") or {}
    return {
        "n_synthetic": _get(fid, "n", "synthetic") or _get(priv, "n", "synthetic"),
        "fidelity": {
            "feature_space": _get(fid, "extractor", "name"),
            "synthetic_vs_train": {k: syn.get(k) for k in keys},
            "heldout_vs_train": {k: ref.get(k) for k in keys},
            "label_agreement_dice": _get(fid, "image_label_agreement", "synthetic", "dice_mean"),
            "label_agreement_dice_real_validation": _get(
                fid, "image_label_agreement", "real_validation", "dice_mean"
            ),
        },
        "privacy": {
            "near_copy_rate_pixel": _get(priv, "pixel", "fraction_flagged"),
            "near_copy_rate_embedding": _get(priv, "embedding", "fraction_flagged"),
            "patients_reproduced": _get(priv, "embedding", "n_patients_reproduced"),
            "distance_attack_auc": calibrated.get("auc"),
            "distance_attack_tpr_at_1pct_fpr": calibrated.get("tpr_at_1pct_fpr"),
            "logan_auc": logan.get("auc"),
            "logan_tpr_at_1pct_fpr": logan.get("tpr_at_1pct_fpr"),
            "meehan_c_t": _get(priv, "data_copying", "c_t"),
        },
    }
