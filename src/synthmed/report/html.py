"""One self-contained HTML page per run (images embedded), built from the run folder's files.

Reads only files: ``metrics.json``, ``config.yaml``, ``train_log.csv``, ``samples/real.png``
and the synthetic dataset's manifest and images. Nothing is recomputed here.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from synthmed import __version__
from synthmed.atomic import write_text
from synthmed.errors import InputError
from synthmed.report.figures import pair_grid, png_bytes

LIMITS = (
    "The numbers come from one run at the scale stated in the configuration below; small test "
    "sets give wide uncertainty. Utility is measured on the real test split only. This page does "
    "not by itself show that the synthetic images are free of patient information: see the "
    "privacy audit section when it is present, and treat a synthetic set as derived data."
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _synthetic_grid(folder: Path, n: int = 16) -> str:
    with (folder / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    images, labels = [], []
    for row in rows:
        if not row.get("image_png"):
            continue
        img = np.asarray(Image.open(folder / row["image_png"]), dtype=np.float32) / 255.0
        images.append(img[None] if img.ndim == 2 else np.moveaxis(img, -1, 0))
        labels.append(np.asarray(Image.open(folder / row["label_png"]), dtype=np.int64))
    if not images:
        return ""
    return _b64(png_bytes(pair_grid(np.stack(images), np.stack(labels), ncol=8), min_size=512))


def _loss_plot(log_path: Path) -> str:
    if not log_path.is_file():
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with log_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return ""
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3), dpi=100)
    for key in ("wasserstein", "loss_g"):
        ax.plot(steps, [float(r[key]) for r in rows], label=key)
    ax.set_xlabel("generator step")
    ax.legend()
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return _b64(buf.getvalue())


def _utility_rows(metrics: dict) -> list[dict]:
    seg = metrics.get("utility", {}).get("segmentation", {})
    return [{"arm": arm, **vals} for arm, vals in seg.get("arms", {}).items()]


def render_report(run_dir: str | Path, extra_sections: list[dict] | None = None) -> Path:
    """Write ``report.html`` into the run folder and return its path."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise InputError("no metrics.json: run `synthmed evaluate` on this run first", run_dir)
    metrics = json.loads(metrics_path.read_text())
    real_png = run_dir / "samples" / "real.png"
    synth_dir = Path(metrics.get("synthetic_dir", run_dir / "synthetic"))
    env = Environment(
        loader=PackageLoader("synthmed.report", "templates"), autoescape=select_autoescape(["html"])
    )
    html = env.get_template("report.html").render(
        run_name=run_dir.name,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        model_name=metrics.get("model", "?"),
        preset=metrics.get("preset"),
        data_summary=metrics.get("data", {}),
        n_training_pairs=metrics.get("n_training_pairs", "?"),
        pair_shape=metrics.get("pair_shape", "?"),
        real_grid=_b64(real_png.read_bytes()) if real_png.is_file() else "",
        synth_grid=_synthetic_grid(synth_dir) if (synth_dir / "manifest.csv").is_file() else "",
        utility_rows=_utility_rows(metrics),
        utility_note=metrics.get("utility", {}).get("segmentation", {}).get("note", ""),
        loss_plot=_loss_plot(run_dir / "train_log.csv"),
        extra_sections=extra_sections or [],
        limits=LIMITS,
        provenance=metrics.get("provenance", {}),
        config_yaml=(run_dir / "config.yaml").read_text()
        if (run_dir / "config.yaml").is_file()
        else "",
    )
    out = run_dir / "report.html"
    write_text(out, html)
    return out
