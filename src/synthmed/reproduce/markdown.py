"""results.json of an experiment -> the Markdown section benchmarks/REPRODUCTION.md holds."""

from __future__ import annotations

import math
from typing import Any


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: fixed digits, ``n/a`` for missing or non-finite values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _metric_cell(cell: dict, metric: str) -> str:
    stats = cell.get(metric)
    if not stats or not stats.get("n"):
        return "n/a"
    text = f"{fmt(stats['mean'])} ± {fmt(stats['std'])}"
    return text + f" [{fmt(stats['ci_low'])}, {fmt(stats['ci_high'])}]"


def _claims(results: dict) -> list[str]:
    if not results["claims"]:
        return []
    lines = [
        "| claim | paper | ours (mean over pairs) | paired difference [95% CI] | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in results["claims"]:
        ours = (
            f"{c['arm']} / {c['protocol']} @ {c['size']}: {fmt(c['ours'])} vs "
            f"{c['versus_arm']} / {c['versus']} @ {c['versus_size'] or c['size']}: "
            f"{fmt(c['ours_versus'])} ({c['metric']}, {c['n_pairs']} pairs)"
        )
        margin = f" (margin {c['margin']:g})" if c["kind"] == "within" else ""
        diff = f"{fmt(c['mean_diff'])} [{fmt(c['diff_ci_low'])}, {fmt(c['diff_ci_high'])}]"
        lines.append(f"| {c['text']} | {c['paper']} | {ours} | {diff} | {c['verdict']}{margin} |")
    return lines


def _p_values(results: dict) -> dict[tuple, dict]:
    tests = results.get("baseline_tests") or {}
    out = {}
    for comp in tests.get("comparisons", []):
        arm, _, protocol = comp["protocol"].partition(" | ")
        out[(arm, protocol, str(comp["size"]))] = comp
    return out


def _cells(results: dict) -> list[str]:
    metrics = [m for m in _shown_metrics(results) if any(m in c for c in results["cells"])]
    tests = _p_values(results)
    head = " | ".join(f"{m} mean ± std [95% CI]" for m in metrics)
    lines = [
        f"| arm | protocol | real patients (cases) | {head} | p vs real+classic-aug (pairs) |",
        "|---|---|---|" + "---|" * len(metrics) + "---|",
    ]
    top = "all" if "all" in [str(x) for x in results["sizes"]] else max(results["sizes"])
    for cell in results["cells"]:
        if cell["protocol"] == "synthetic-only" and str(cell["size"]) != str(top):
            continue  # trained once per seed: the same model at every size
        comp = tests.get((cell["arm"], cell["protocol"], str(cell["size"])))
        p = f"{fmt(comp['p_value'])} ({comp['n_pairs']})" if comp else "baseline"
        values = " | ".join(_metric_cell(cell, m) for m in metrics)
        lines.append(f"| {cell['arm']} | {cell['protocol']} | {cell['size']} | {values} | {p} |")
    return lines


def _shown_metrics(results: dict) -> list[str]:
    if results["task"] == "segmentation":
        return ["dice_mean", "hd95_mean"]
    return ["balanced_accuracy", "sensitivity_macro", "specificity_macro", "auc_macro"]


def _vs(syn: dict, ref: dict, key: str, scale: float = 1.0) -> str:
    """``synthetic (held-out reference)`` of one fidelity number."""
    a, b = syn.get(key), ref.get(key)
    a = a * scale if a is not None else None
    b = b * scale if b is not None else None
    return f"{fmt(a, 2)} ({fmt(b, 2)})"


def _sets(results: dict) -> list[str]:
    lines = [
        "| arm | fold | n | KID x1e3 (held-out ref) | FD (ref) | precision (ref) | recall (ref) "
        "| coverage (ref) | near-copies pixel / embedding | distance-attack AUC (TPR@1%FPR) "
        "| LOGAN AUC (TPR@1%FPR) | Meehan C_T |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results["synthetic_sets"]:
        fid, priv = s["fidelity"], s["privacy"]
        syn, ref = fid["synthetic_vs_train"], fid["heldout_vs_train"]

        lines.append(
            f"| {s['arm']} | {s['fold']} | {fmt(s['n_synthetic'])} | {_vs(syn, ref, 'kid_mean', 1e3)} | {_vs(syn, ref, 'fd')} "
            f"| {_vs(syn, ref, 'precision')} | {_vs(syn, ref, 'recall')} | {_vs(syn, ref, 'coverage')} "
            f"| {fmt(priv['near_copy_rate_pixel'])} / {fmt(priv['near_copy_rate_embedding'])} "
            f"| {fmt(priv['distance_attack_auc'])} ({fmt(priv['distance_attack_tpr_at_1pct_fpr'])}) "
            f"| {fmt(priv['logan_auc'])} ({fmt(priv['logan_tpr_at_1pct_fpr'])}) "
            f"| {fmt(priv['meehan_c_t'], 1)} |"
        )
    return lines


def _runs(results: dict) -> list[str]:
    lines = [
        "| arm | fold | generator steps (mask stage) | pairs shape | training pairs | synthetic "
        "| U-Net/CNN steps | wall time s (train / sample / evaluate) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        t = r["wall_times"]
        steps = f"{r['generator_steps']}" + (
            f" ({r['mask_stage_steps']})" if r.get("mask_stage_steps") else ""
        )
        times = " / ".join(fmt(t.get(k), 0) for k in ("train_s", "sample_s", "evaluate_s"))
        lines.append(
            f"| {r['arm']} | {r['fold']} | {steps} | {r['pair_shape']} | {r['n_training_pairs']} "
            f"| {r['n_synthetic']} | {r['utility_steps']} | {times} |"
        )
    return lines


def _commands(results: dict) -> list[str]:
    """The command, or for merged results every part's command with its arms and date."""
    parts = results.get("parts")
    if not parts:
        return [f"Command: `{results['command']}`"]
    return ["Commands (the results merge these runs):", ""] + [
        f"- `{p['command']}` ({p['date']}; arms {', '.join(p['arms'])}; folds {p['folds']}; "
        f"{fmt(p.get('wall_time_s'), 0)} s)"
        for p in parts
    ]


def results_markdown(results: dict) -> str:
    """One experiment's section: claims, utility cells, synthetic-set figures, runs."""
    lines = [
        f"## {results['title']} (`{results['experiment']}`)",
        "",
        f"Paper: {results['paper']}. Scale: **{results['scale']}** — {results['scale_note']}",
        f"fold(s) {results.get('folds_run', [0])} of {results['folds']} x {results['seeds']} "
        "seeds per cell; "
        f"{results['date']}, {results['machine']}, synthmed {results['synthmed']}, "
        f"wall time {fmt(results.get('wall_time_s'), 0)} s.",
        *_commands(results),
        "",
        "### Claims",
        "",
        *_claims(results),
        "",
        f"### Utility ({results['task']}, tested on real data)",
        "",
        *_cells(results),
        "",
        "### Synthetic sets: fidelity and privacy",
        "",
        *_sets(results),
        "",
        "### Runs",
        "",
        *_runs(results),
    ]
    if results.get("notes"):
        lines += ["", results["notes"].strip()]
    return "\n".join(lines) + "\n"
