"""Shared parts of the quality benchmark: one row per (task, variant), many seeds each.

A row records, per seed, what a user of the synthetic data cares about: downstream score
trained on synthetic only vs on real (tested on real), fidelity in the domain encoder beside
the held-out real reference, image/label agreement, near-copy rate, wall time. Rows are kept
in ``results/<task>.json`` (one entry per variant label, replaced when rerun) and rendered to
``results/<task>.md``, so the "before" row of an older commit stays beside later ones.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
from pathlib import Path

from synthmed.evaluation.privacy.memorization import held_out_flag_rate, near_copy_p_value
from synthmed.evaluation.utility.stats import bootstrap_ci
from synthmed.machine import describe_machine

RESULTS = Path(__file__).resolve().parent / "results"


def git_commit() -> str:
    """Short commit of the code that ran (``+dirty`` when the tree had changes)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def seed_metrics(metrics: dict, metric: str = "dice_mean") -> dict:
    """The numbers of one seed's ``metrics.json`` that the benchmark reports."""
    task = metrics["task"]
    arms = metrics["utility"][task]["arms"]
    fid = metrics.get("fidelity") or {}
    space = fid.get("feature_space", {})
    syn, held = space.get("synthetic_vs_train", {}), space.get("holdout_vs_train", {})
    agree = fid.get("image_label_agreement") or {}
    audit = metrics.get("privacy") or {}
    priv = audit.get("embedding", {})
    real = arms["real"][metric]
    synthetic = arms["synthetic"][metric]
    return {
        "real": real,
        "synthetic_only": synthetic,
        "ratio": synthetic / real if real else math.nan,
        "fd": syn.get("fd"),
        "fd_holdout": held.get("fd"),
        "kid": syn.get("kid_mean"),
        "kid_holdout": held.get("kid_mean"),
        "precision": syn.get("precision"),
        "recall": syn.get("recall"),
        "agreement": (agree.get("synthetic") or {}).get("dice_mean"),
        "agreement_real_val": (agree.get("real_validation") or {}).get("dice_mean"),
        "near_copy_rate": priv.get("fraction_flagged"),
        **near_copy_verdict(audit, priv),
        # every protocol the task ran (real+classic-aug, real+synthetic:R, ...), same metric
        **{f"arm:{name}": arm[metric] for name, arm in arms.items()},
        # where each protocol's model selection landed (the step of the weights kept): a
        # best step at the first validations flags a network stopped before it learnt
        **{
            f"best_step:{row['protocol']}": row["history"][-1]["best_step"]
            for row in metrics["utility"][task].get("rows", [])
            if row.get("history") and row["size"] == "all"
        },
    }


def near_copy_verdict(audit: dict, block: dict) -> dict:
    """The held-out level of the near-copy rate (the rate at which NEW real images of other
    patients are flagged by the same calibrated threshold) and the one-sided binomial p-value
    of the observed count against it: the export gate's rule, so "at the held-out level" is a
    number in the row, not a judgement. Empty when the audit lacks the counts."""
    counts, rate, quantile = (
        audit.get("n") or {},
        block.get("fraction_flagged"),
        audit.get("quantile"),
    )
    n_syn, n_hold = counts.get("synthetic"), counts.get("holdout")
    if not (n_syn and n_hold and quantile is not None and rate is not None):
        return {}
    level = held_out_flag_rate(int(n_hold), float(quantile))
    flagged = round(rate * n_syn)
    return {
        "near_copy_held_out_level": level,
        "near_copy_p_value": near_copy_p_value(flagged, int(n_syn), level),
    }


def aggregate(per_seed: list[dict]) -> dict:
    """Mean and 95% bootstrap CI over seeds of every numeric field."""
    out = {}
    for key in per_seed[0]:
        vals = [r[key] for r in per_seed if isinstance(r.get(key), int | float)]
        if not vals:
            continue
        low, high = bootstrap_ci(vals)
        out[key] = {"mean": sum(vals) / len(vals), "ci": [low, high], "n": len(vals)}
    if "agreement" in out and "agreement_real_val" in out:
        ratios = [
            r["agreement"] / r["agreement_real_val"]
            for r in per_seed
            if r.get("agreement") is not None and r.get("agreement_real_val")
        ]
        low, high = bootstrap_ci(ratios)
        out["agreement_ratio"] = {
            "mean": sum(ratios) / len(ratios),
            "ci": [low, high],
            "n": len(ratios),
        }
    return out


def save_row(task: str, row: dict) -> Path:
    """Insert or replace the row with this variant label; rewrite JSON and Markdown."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{task}.json"
    rows = json.loads(path.read_text())["rows"] if path.is_file() else []
    rows = [r for r in rows if r["variant"] != row["variant"]] + [row]
    payload = {"task": task, "rows": rows}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)
    md = RESULTS / f"{task}.md"
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text(markdown(payload))
    tmp.replace(md)
    return path


def row_header(task: str, variant: str, command: str, budget: str, overrides: list[str]) -> dict:
    return {
        "task": task,
        "variant": variant,
        "command": command,
        "budget": budget,
        "overrides": overrides,
        "date": dt.date.today().isoformat(),
        "machine": describe_machine(),
        "code_commit": git_commit(),
    }


def _cell(summary: dict, key: str, digits: int = 3) -> str:
    if key not in summary:
        return "-"
    s = summary[key]
    lo, hi = s["ci"]
    return f"{s['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


COLUMNS = [
    ("real", "real-only"),
    ("synthetic_only", "synthetic-only"),
    ("ratio", "syn/real"),
    ("kid", "KID"),
    ("kid_holdout", "KID held-out"),
    ("fd", "FD"),
    ("fd_holdout", "FD held-out"),
    ("precision", "precision"),
    ("agreement", "label agreement"),
    ("agreement_ratio", "agreement / real val"),
    ("near_copy_rate", "near-copy rate"),
    ("near_copy_held_out_level", "near-copy held-out level"),
    ("train_s", "train s"),
    ("total_s", "total s"),
]


def _near_copy_lines(rows: list[dict], alpha: float = 0.01) -> list[str]:
    """Per row with the counts: in how many seeds the near-copy rate is above its held-out
    level (one-sided binomial p < ``alpha``, the export gate's rule)."""
    out = []
    for row in rows:
        ps = [p["near_copy_p_value"] for p in row["per_seed"] if "near_copy_p_value" in p]
        if ps:
            above = sum(p < alpha for p in ps)
            out.append(
                f"- {row['variant']}: above the held-out level in {above} of {len(ps)} seeds"
            )
    if not out:
        return []
    head = (
        f"Near-copy rate against its held-out level (binomial p < {alpha}, the export gate's rule):"
    )
    return ["", head, "", *out]


def _paired_lines(rows: list[dict], key: str = "synthetic_only") -> list[str]:
    """Synthetic-only score minus the "before" row's, paired on seed, per later variant."""
    before = next((r for r in rows if r["variant"] == "before"), None)
    if before is None:
        return []
    base = {p["seed"]: p[key] for p in before["per_seed"]}
    out = ["", f"Paired on seed against `before` ({key}, mean [95% bootstrap CI]):", ""]
    for row in rows:
        diffs = [p[key] - base[p["seed"]] for p in row["per_seed"] if p["seed"] in base]
        if row is before or not diffs:
            continue
        low, high = bootstrap_ci(diffs)
        out.append(f"- {row['variant']}: {sum(diffs) / len(diffs):+.3f} [{low:+.3f}, {high:+.3f}]")
    return out


# Within-row comparisons of two protocols, paired on seed (same U-Net seed and real rows):
# what the LGG / BUSI targets ask (real+synthetic against real+classic-aug / real).
ARM_COMPARISONS = [
    (f"real+synthetic:{ratio}{aug}", base)
    for ratio in (1, 2)
    for aug, base in (("", "real+classic-aug"), ("+classic-aug", "real+classic-aug"), ("", "real"))
] + [("real+classic-aug", "real")]


def _arm_names(rows: list[dict]) -> list[str]:
    names = dict.fromkeys(
        k.removeprefix("arm:") for r in rows for p in r["per_seed"] for k in p if k[:4] == "arm:"
    )
    return [n for n in names if n not in ("real", "synthetic")]


def _arm_lines(rows: list[dict]) -> list[str]:
    """Per-protocol table and paired protocol differences, for tasks that run more than
    real and synthetic-only."""
    names = _arm_names(rows)
    if not names:
        return []
    out = ["", "All protocols (downstream metric on the real test split):", ""]
    out += ["| variant | real | " + " | ".join(names) + " | synthetic-only |"]
    out += ["|---|---|" + "---|" * (len(names) + 1)]
    for row in rows:
        cells = [_cell(row["summary"], f"arm:{n}") for n in ["real", *names, "synthetic"]]
        out.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    out += ["", "Paired on seed within each row (mean [95% bootstrap CI]):", ""]
    for row in rows:
        for a, b in ARM_COMPARISONS:
            diffs = [
                p[f"arm:{a}"] - p[f"arm:{b}"]
                for p in row["per_seed"]
                if p.get(f"arm:{a}") is not None and p.get(f"arm:{b}") is not None
            ]
            if diffs:
                low, high = bootstrap_ci(diffs)
                mean = sum(diffs) / len(diffs)
                out.append(f"- {row['variant']}: {a} - {b}: {mean:+.3f} [{low:+.3f}, {high:+.3f}]")
    return out


def _selection_lines(rows: list[dict]) -> list[str]:
    """Per seed, the step whose weights each protocol's downstream model kept (recorded
    since 2026-12-04): a step at the first validations means it stopped before learning."""
    out = []
    for row in rows:
        keys = sorted({k for p in row["per_seed"] for k in p if k.startswith("best_step:")})
        if keys:
            steps = "; ".join(
                k.split(":", 1)[1] + " " + "/".join(str(p.get(k, "-")) for p in row["per_seed"])
                for k in keys
            )
            out.append(f"- {row['variant']} (seeds {row['seeds']}): {steps}")
    if out:
        out = ["", "Step of the weights each downstream model kept, per seed:", "", *out]
    return out


def render(task: str) -> Path:
    """Rewrite ``results/<task>.md`` from its JSON."""
    payload = json.loads((RESULTS / f"{task}.json").read_text())
    md = RESULTS / f"{task}.md"
    md.write_text(markdown(payload))
    return md


def markdown(payload: dict) -> str:
    """One table per task: a line per variant, mean [95% bootstrap CI over seeds]."""
    lines = [
        f"# Quality benchmark: {payload['task']}",
        "",
        "Mean [95% bootstrap CI] over seeds; downstream metric on the real test split; KID/FD "
        "in the domain encoder against the real training split (held-out = real validation "
        "and test images against the same). Written by `benchmarks/quality/common.py` from "
        f"`{payload['task']}.json`.",
        "",
        "| variant | seeds | " + " | ".join(name for _, name in COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for row in payload["rows"]:
        s = row["summary"]
        cells = [
            _cell(s, k, 1 if k.endswith("_s") or k.startswith("fd") else 3) for k, _ in COLUMNS
        ]
        lines.append(f"| {row['variant']} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| variant | preset | code | date | machine | budget | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in payload["rows"]:
        lines.append(
            f"| {row['variant']} | {row.get('preset', '-')} | {row['code_commit']} | "
            f"{row['date']} | {row['machine']} | {row['budget']} | `{row['command']}` |"
        )
    lines += _paired_lines(payload["rows"])
    lines += _arm_lines(payload["rows"])
    lines += _near_copy_lines(payload["rows"])
    lines += _selection_lines(payload["rows"])
    notes = [f"- {row['variant']}: {row['note']}" for row in payload["rows"] if row.get("note")]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def add_near_copy_verdicts(task: str, n_synthetic: int, n_holdout: int, quantile: float) -> Path:
    """Fill the held-out level and p-value into rows saved before the benchmark recorded them
    (their runs are gone, but the committed rate, the sample count and the split's held-out
    count are all the gate's rule needs); rows that have them are left as they are."""
    path = RESULTS / f"{task}.json"
    payload = json.loads(path.read_text())
    audit = {"n": {"synthetic": n_synthetic, "holdout": n_holdout}, "quantile": quantile}
    for row in payload["rows"]:
        for seed in row["per_seed"]:
            if "near_copy_held_out_level" not in seed:
                seed.update(near_copy_verdict(audit, {"fraction_flagged": seed["near_copy_rate"]}))
        row["summary"] = aggregate(row["per_seed"])
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)
    (RESULTS / f"{task}.md").write_text(markdown(payload))
    return path


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="add near-copy verdicts to older rows")
    parser.add_argument("task")
    parser.add_argument("--n-synthetic", type=int, required=True)
    parser.add_argument("--n-holdout", type=int, required=True, help="val + test rows")
    parser.add_argument("--quantile", type=float, default=0.01)
    args = parser.parse_args()
    print(add_near_copy_verdicts(args.task, args.n_synthetic, args.n_holdout, args.quantile))
