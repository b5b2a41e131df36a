"""One self-contained HTML page per run (images embedded), built from the run folder's files.

Reads only files: ``metrics.json``, ``config.yaml``, ``train_log.csv``, ``samples/real.png``,
``evaluation/closest_pairs.png``, ``train_summary.json`` and the synthetic dataset's manifest,
``dataset.json`` and images. Nothing is
recomputed here; plots draw numbers that ``synthmed evaluate`` stored. The page references no
external URL (no fonts, scripts or images from the network), so it opens offline and can be
archived as one file.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from synthmed import __version__
from synthmed.atomic import write_text
from synthmed.errors import InputError
from synthmed.privacy_record import dataset_privacy, summary_record
from synthmed.report import plots
from synthmed.report.figures import pair_grid, png_bytes
from synthmed.report.sections import (
    fidelity_view,
    fmt,
    gate_text,
    plain_summary,
    privacy_view,
    timing,
    utility_view,
)

LIMITS = (
    "The numbers come from one run at the scale stated in the configuration below; small test "
    "sets give wide uncertainty. Utility is measured on the real test split only, and each model "
    "was scored on it once. Treat a synthetic set as data derived from patients: the privacy "
    "audit lowers the risk it measures, it does not remove every risk."
)


def _b64(data: bytes | None) -> str:
    return base64.b64encode(data).decode("ascii") if data else ""


def _read_png(path: Path) -> str:
    return _b64(path.read_bytes()) if path.is_file() else ""


def _synthetic_grid(folder: Path, n: int = 16) -> str:
    """The first ``n`` synthetic pairs read back from the dataset's PNG files."""
    if not (folder / "manifest.csv").is_file():
        return ""
    with (folder / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    images, labels = [], []
    for row in rows:
        if not row.get("image_png"):
            continue
        img = np.asarray(Image.open(folder / row["image_png"]), dtype=np.float32) / 255.0
        images.append(img[None] if img.ndim == 2 else np.moveaxis(img, -1, 0))
        if row.get("label_png"):  # image-only sets (classification) have no label files
            labels.append(np.asarray(Image.open(folder / row["label_png"]), dtype=np.int64))
    if not images:
        return ""
    label_grid = np.stack(labels) if len(labels) == len(images) else None
    return _b64(png_bytes(pair_grid(np.stack(images), label_grid, ncol=8), min_size=512))


def _utility_blocks(metrics: dict) -> list[dict]:
    blocks = utility_view(metrics.get("utility", {}))
    for block in blocks:
        section = metrics["utility"][block["task"]]
        entries = section["summary"][block["metric"]]
        block["plot"] = _b64(plots.utility_plot(entries, block["metric_label"], block["baseline"]))
    return blocks


def _privacy_block(metrics: dict, run_dir: Path) -> dict | None:
    priv = metrics.get("privacy")
    view = privacy_view(priv)
    if view is None:
        return None
    view["histogram"] = _b64(plots.ratio_histogram(priv["pixel"]["per_image"]["ratio"], "1 - NCC"))
    rel = priv.get("closest_pairs_png")
    view["pairs_png"] = _read_png(run_dir / rel) if rel else ""
    return view


def _filtering(provenance: dict) -> dict | None:
    """What was dropped at export: ``--exclude-near-copies`` or the export gate's drop."""
    if provenance.get("near_copy_filtering"):
        return provenance["near_copy_filtering"]
    gate = provenance.get("export_gate") or {}
    near = gate.get("near_copies") or {}
    if not near.get("drop_near_copies"):
        return None
    keys = ("threshold", "quantile")
    return {
        "n_dropped": gate["n_dropped"],
        "n_before": gate["n_before"],
        **{k: near[k] for k in keys},
    }


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _dp_view(run_dir: Path, synth_dir: Path) -> dict:
    """The synthetic dataset's DP guarantee from its ``dataset.json`` (which composes a
    cascade's stages), else the run's ``train_summary.json``."""
    desc = _read_json(synth_dir / "dataset.json") or {}
    if desc.get("privacy"):
        return desc["privacy"]
    return dataset_privacy({"generator": summary_record(run_dir)}, None)


def _context(run_dir: Path, metrics: dict) -> dict[str, Any]:
    synth_dir = Path(metrics.get("synthetic_dir", run_dir / "synthetic"))
    config_path = run_dir / "config.yaml"
    return {
        "run_name": run_dir.name,
        "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "model_name": metrics.get("model", "?"),
        "preset": metrics.get("preset"),
        "task": metrics.get("task", "segmentation"),
        "summary": plain_summary(metrics),
        "data_summary": metrics.get("data", {}),
        "n_training_pairs": metrics.get("n_training_pairs", "?"),
        "pair_shape": metrics.get("pair_shape", "?"),
        "real_grid": _read_png(run_dir / "samples" / "real.png"),
        "synth_grid": _synthetic_grid(synth_dir),
        "fidelity": fidelity_view(metrics.get("fidelity")),
        "utility": _utility_blocks(metrics),
        "privacy": _privacy_block(metrics, run_dir),
        "dp": _dp_view(run_dir, synth_dir),
        "loss_plot": _b64(plots.loss_plot(run_dir / "train_log.csv")),
        "selection_plot": _b64(plots.selection_plot(run_dir / "selection.csv")),
        "selection": _read_json(run_dir / "selection.json"),
        "limits": LIMITS,
        "provenance": metrics.get("provenance", {}),
        "filtering": _filtering(metrics.get("provenance") or {}),
        "gate": gate_text((metrics.get("provenance") or {}).get("export_gate")),
        "evaluation_json": json.dumps(metrics.get("evaluation", {}), indent=2),
        "config_yaml": config_path.read_text() if config_path.is_file() else "",
        "fmt": fmt,
        "timing": timing,
    }


def render_report(run_dir: str | Path, extra_sections: list[dict] | None = None) -> Path:
    """Write ``report.html`` into the run folder and return its path.

    Args:
        extra_sections: optional ``{"title", "html"}`` blocks appended before the limits
            (trusted HTML, e.g. from a plugin; must embed its own images).
    """
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise InputError("no metrics.json: run `synthmed evaluate` on this run first", run_dir)
    metrics = json.loads(metrics_path.read_text())
    env = Environment(
        loader=PackageLoader("synthmed.report", "templates"), autoescape=select_autoescape(["html"])
    )
    context = _context(run_dir, metrics)
    html = env.get_template("report.html").render(**context, extra_sections=extra_sections or [])
    out = run_dir / "report.html"
    write_text(out, html)
    return out
