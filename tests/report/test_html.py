"""report.html: every section, images embedded, nothing fetched from the network."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np

from synthmed import api

SECTIONS = (
    "summary",
    "data",
    "samples",
    "fidelity",
    "utility-segmentation",
    "privacy",
    "differential-privacy",
    "limits",
    "provenance",
)


def test_report_has_every_section_and_is_self_contained(evaluated_run):
    html = api.report(evaluated_run).read_text()
    for section in SECTIONS:
        assert f'<section id="{section}"' in html, section
    assert not re.search(r"https?://", html), "the report must not reference external URLs"
    images = re.findall(r'<img [^>]*src="([^"]*)"', html)
    # real grid, synthetic grid, utility plot, ratio histogram, closest pairs, training losses
    assert len(images) == 6
    assert all(re.fullmatch(r"data:image/png;base64,[A-Za-z0-9+/=]{100,}", s) for s in images)
    for text in (
        "What this shows",
        "What it does not show",
        "Wilcoxon",
        "C<sub>T</sub>",
        "membership",
        "near-copy",
        "Resolved run configuration",
        "trained without differential privacy",
        '<td class="l">export gate</td><td class="l">passed: ',
        "<b>Export gate</b>",
        'near-copy filtering at export</td><td class="l">applied: 0 of 24 dropped',
    ):
        assert text in html, text
    metrics = json.loads((evaluated_run / "metrics.json").read_text())
    pair = metrics["privacy"]["pixel"]["closest_pairs"][0]
    assert f"<td>{pair['synthetic_index']}</td><td>{pair['train_index']}</td>" in html


def test_report_without_fidelity_and_privacy(evaluated_run, tmp_path):
    """Sections switched off at evaluation are left out, and no <img> is empty."""
    metrics = json.loads((evaluated_run / "metrics.json").read_text())
    metrics.update(fidelity=None, privacy=None)
    run = tmp_path / "bare"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(metrics))
    shutil.copy(evaluated_run / "config.yaml", run / "config.yaml")
    html = api.report(run).read_text()
    assert '<section id="fidelity"' not in html and '<section id="privacy"' not in html
    assert '<section id="utility-segmentation"' in html
    assert 'base64,"' not in html


def test_synthetic_grid_of_an_image_only_set(tmp_path):
    """Classification sets (Frid-Adar) have no label files: the grid shows the images alone."""
    import base64
    import io

    from PIL import Image

    from synthmed.report.html import _synthetic_grid

    (tmp_path / "images").mkdir()
    rows = ["index,seed,image_png,label_png,class"]
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / f"images/{i}.png")
        rows.append(f"{i},{i},images/{i}.png,,{i % 2}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    grid = Image.open(io.BytesIO(base64.b64decode(_synthetic_grid(tmp_path))))
    assert grid.size[0] >= 512
