"""Matplotlib figures of the report, returned as PNG bytes (embedded base64 in the HTML).

Plot functions take numbers already in metrics.json or the run's logs; they compute nothing
but the drawing (the ratio histogram bins values that evaluate stored per image).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


def utility_plot(entries: list[dict], metric_label: str, baseline: str | None = None) -> bytes:
    """Metric vs number of real training patients, one line per protocol, 95% CI band.

    Args:
        entries: ``summary[metric]`` of metrics.json (``protocol``, ``n_real_patients``,
            ``mean``, ``ci_low``, ``ci_high``).
        metric_label: y-axis label (e.g. "Dice").
        baseline: protocol drawn thicker (the one every other is tested against).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 4.2), dpi=100)
    protocols = list(dict.fromkeys(e["protocol"] for e in entries))
    for protocol in protocols:
        pts = sorted(
            (e for e in entries if e["protocol"] == protocol and _finite(e["mean"])),
            key=lambda e: e["n_real_patients"],
        )
        if not pts:
            continue
        x = [e["n_real_patients"] for e in pts]
        y = [e["mean"] for e in pts]
        width = 2.6 if protocol == baseline else 1.5
        (line,) = ax.plot(x, y, marker="o", lw=width, label=protocol)
        lo = [e["ci_low"] if _finite(e["ci_low"]) else e["mean"] for e in pts]
        hi = [e["ci_high"] if _finite(e["ci_high"]) else e["mean"] for e in pts]
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    xs = sorted({e["n_real_patients"] for e in entries})
    if len(xs) > 2 and xs[-1] / max(xs[0], 1) >= 8:
        ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([str(v) for v in xs])
    ax.set_xlabel("real training patients")
    ax.set_ylabel(f"{metric_label} on the real test split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="protocol")
    return _png(fig)


def ratio_histogram(ratios: list[float | None], space: str) -> bytes:
    """Histogram of d_train / d_holdout per synthetic image; the line at 1 marks "as close
    to the training images as to unseen real images"."""
    plt = _pyplot()
    values = np.array([v for v in ratios if _finite(v)], dtype=float)
    n_inf = len(ratios) - len(values)
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    if len(values):
        ax.hist(values, bins=min(40, max(5, len(values) // 5)), color="#4c78a8", alpha=0.85)
    ax.axvline(1.0, color="#d62728", lw=1.5, ls="--", label="ratio 1")
    ax.set_xlabel(f"d(nearest training) / d(nearest held-out) [{space}]")
    ax.set_ylabel("synthetic images")
    title = f"{len(values)} synthetic images"
    ax.set_title(title + (f" ({n_inf} with d_holdout = 0 not shown)" if n_inf else ""), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def loss_plot(log_path: Path) -> bytes | None:
    """Training losses per logged step (the columns the method logged), or None."""
    if not log_path.is_file():
        return None
    with log_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None
    keys = [k for k in rows[0] if k not in ("step", "seconds")][:4]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3), dpi=100)
    steps = [int(r["step"]) for r in rows]
    for key in keys:
        ax.plot(steps, [_number(r[key]) for r in rows], label=key)
    ax.set_xlabel("generator step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def selection_plot(curve_path: Path) -> bytes | None:
    """Checkpoint selection curve: fidelity (KID to the validation split) and near-copy rate
    per scored step; refused checkpoints crossed, the selected one ringed. None without one."""
    if not curve_path.is_file():
        return None
    with curve_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None
    plt = _pyplot()
    fig, (ax_kid, ax_copy) = plt.subplots(1, 2, figsize=(9, 3), dpi=100)
    steps = [int(r["step"]) for r in rows]
    kid = [_number(r["kid"]) for r in rows]
    rate = [_number(r["near_copy_rate"]) for r in rows]
    ax_kid.plot(steps, kid, marker=".", color="tab:blue")
    ax_copy.plot(steps, rate, marker=".", color="tab:orange")
    refused = [i for i, r in enumerate(rows) if r["eligible"] != "True"]
    for ax, ys in ((ax_kid, kid), (ax_copy, rate)):
        ax.scatter([steps[i] for i in refused], [ys[i] for i in refused], marker="x", c="red")
        best = [i for i, r in enumerate(rows) if r["best"] == "True"]
        if best:
            i = best[-1]
            ax.scatter([steps[i]], [ys[i]], s=120, facecolors="none", edgecolors="green")
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3)
    summary = curve_path.with_name("selection.json")
    if summary.is_file():  # the rate a held-out real image has, by construction
        level = float(json.loads(summary.read_text())["quantile"])
        ax_copy.axhline(level, ls="--", c="grey", label=f"held-out level {level:g}")
        ax_copy.legend(fontsize=8)
    ax_copy.set_ylim(bottom=0)
    ax_kid.set_ylabel("KID to real validation")
    ax_copy.set_ylabel("near-copy rate")
    fig.tight_layout()
    return _png(fig)
