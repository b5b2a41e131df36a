"""Pure result functions of the reproductions: pooled rows, claim verdicts, tests, tables."""

from __future__ import annotations

import math

import pytest

from synthmed.reproduce.markdown import results_markdown
from synthmed.reproduce.spec import REAL_ARM, ClaimSpec
from synthmed.reproduce.summary import (
    baseline_tests,
    cell_table,
    claim_verdict,
    fidelity_privacy,
    generator_comparison,
    tagged_rows,
)


def _row(arm, protocol, size, fold, seed, dice):
    return {
        "task": "segmentation",
        "arm": arm,
        "protocol": protocol,
        "size": size,
        "fold": fold,
        "seed": seed,
        "pair": f"{fold}:{seed}",
        "dice_mean": dice,
    }


def _rows(shift: float, noise=(0.0, 0.01, -0.01, 0.02, -0.02, 0.0)) -> list[dict]:
    """Baseline and a synthetic arm over 2 folds x 3 seeds; the arm is ``shift`` better."""
    rows = []
    for i, (fold, seed) in enumerate((f, s) for f in range(2) for s in range(3)):
        base = 0.6 + 0.05 * i
        rows.append(_row(REAL_ARM, "real", "all", fold, seed, base - 0.01))
        rows.append(_row(REAL_ARM, "real+classic-aug", "all", fold, seed, base))
        rows.append(_row("gan", "synthetic-only", "all", fold, seed, base + shift + noise[i]))
    return rows


def _claim(**kw) -> ClaimSpec:
    base = dict(id="c", text="t", paper="p", arm="gan", protocol="synthetic-only")
    return ClaimSpec(**{**base, **kw})


@pytest.mark.parametrize(
    ("shift", "kind", "margin", "verdict"),
    [
        (0.10, "better", 0.0, "holds"),
        (-0.10, "better", 0.0, "reversed"),
        (0.0, "better", 0.0, "inconclusive"),
        (-0.02, "within", 0.07, "holds"),
        (-0.20, "within", 0.07, "does not hold"),
        (-0.07, "within", 0.07, "inconclusive"),
    ],
)
def test_claim_verdicts(shift, kind, margin, verdict):
    rows = _rows(shift)
    out = claim_verdict(rows, _claim(kind=kind, margin=margin, versus="real"), "dice_mean")
    assert out["verdict"] == verdict
    assert out["n_pairs"] == 6
    assert out["mean_diff"] == pytest.approx(shift + 0.01, abs=1e-9)  # versus real = base - .01
    assert out["diff_ci_low"] <= out["mean_diff"] <= out["diff_ci_high"]


def test_claim_pairs_only_matching_fold_and_seed():
    rows = [r for r in _rows(0.1) if not (r["arm"] == "gan" and r["fold"] == 1)]
    out = claim_verdict(rows, _claim(versus="real"), "dice_mean")
    assert out["n_pairs"] == 3
    one = [r for r in rows if r["pair"] != "0:0" or r["arm"] == REAL_ARM][:4]
    assert claim_verdict(one, _claim(), "dice_mean")["verdict"].startswith("inconclusive")


def test_claim_across_sizes():
    rows = _rows(0.0) + [_row("gan", "synthetic-only", 1, 0, s, 0.9) for s in range(3)]
    out = claim_verdict(rows, _claim(size=1, versus_size="all", versus="real"), "dice_mean")
    assert out["n_pairs"] == 3 and out["ours"] == pytest.approx(0.9)


def test_cell_table_and_baseline_tests():
    rows = _rows(0.1)
    cells = {(c["arm"], c["protocol"]): c for c in cell_table(rows, ["dice_mean", "hd95_mean"])}
    assert set(cells) == {
        (REAL_ARM, "real"),
        (REAL_ARM, "real+classic-aug"),
        ("gan", "synthetic-only"),
    }
    gan = cells[("gan", "synthetic-only")]["dice_mean"]
    assert gan["n"] == 6 and gan["ci_low"] <= gan["mean"] <= gan["ci_high"]
    assert "hd95_mean" not in cells[("gan", "synthetic-only")]
    tests = {c["protocol"]: c for c in baseline_tests(rows, "dice_mean")["comparisons"]}
    assert tests["gan | synthetic-only"]["n_pairs"] == 6
    assert tests["gan | synthetic-only"]["p_value"] < 0.05  # 6 positive pairs: p = 2/64
    assert not tests["gan | synthetic-only"]["underpowered"]


def test_tagged_rows_mark_real_only_rows():
    metrics = {
        "utility": {
            "classification": {
                "rows": [
                    {
                        "task": "classification",
                        "protocol": "real",
                        "size": "all",
                        "seed": 2,
                        "n_synthetic_rows": 0,
                        "balanced_accuracy": 0.7,
                        "history": [1, 2],
                    },
                    {
                        "task": "classification",
                        "protocol": "synthetic-only",
                        "size": "all",
                        "seed": 2,
                        "n_synthetic_rows": 10,
                        "balanced_accuracy": None,
                    },
                ]
            }
        }
    }
    rows = tagged_rows(metrics, "acgan", fold=1)
    assert [r["arm"] for r in rows] == [REAL_ARM, "acgan"]
    assert rows[0]["pair"] == "1:2" and "history" not in rows[0]
    assert math.isnan(rows[1]["balanced_accuracy"])


def test_fidelity_privacy_headline_and_missing_sections():
    metrics = {
        "fidelity": {
            "n": {"synthetic": 5},
            "extractor": {"name": "encoder"},
            "feature_space": {
                "synthetic_vs_train": {"kid_mean": 0.2, "precision": 0.5},
                "holdout_vs_train": {"kid_mean": 0.01, "precision": 0.9},
            },
        },
        "privacy": {
            "pixel": {"fraction_flagged": 0.0},
            "embedding": {
                "fraction_flagged": 0.2,
                "membership": {"gan_leaks_calibrated": {"auc": 0.6}},
            },
            "membership_logan": {"auc": 0.5, "tpr_at_1pct_fpr": 0.01},
            "data_copying": {"c_t": -3.0},
        },
    }
    out = fidelity_privacy(metrics)
    assert out["n_synthetic"] == 5
    assert out["fidelity"]["synthetic_vs_train"]["kid_mean"] == 0.2
    assert out["fidelity"]["heldout_vs_train"]["precision"] == 0.9
    assert out["privacy"]["near_copy_rate_embedding"] == 0.2
    assert out["privacy"]["distance_attack_auc"] == 0.6 and out["privacy"]["meehan_c_t"] == -3.0
    empty = fidelity_privacy({"fidelity": None, "privacy": None})
    assert empty["privacy"]["logan_auc"] is None


def test_markdown_has_claims_cells_and_sets():
    rows = _rows(0.1)
    claim = claim_verdict(rows, _claim(versus="real"), "dice_mean")
    results = {
        "title": "T",
        "experiment": "e",
        "paper": "P",
        "scale": "reduced",
        "scale_note": "small",
        "folds": 2,
        "seeds": 3,
        "date": "d",
        "machine": "m",
        "synthmed": "0",
        "wall_time_s": 1.0,
        "command": "synthmed reproduce e",
        "claims": [claim],
        "task": "segmentation",
        "sizes": ["all"],
        "cells": cell_table(rows, ["dice_mean"]),
        "baseline_tests": baseline_tests(rows, "dice_mean"),
        "synthetic_sets": [{"arm": "gan", "fold": 0, **fidelity_privacy({})}],
        "runs": [],
        "notes": "A note.",
    }
    text = results_markdown(results)
    assert "| t | p |" in text and "holds" in text
    assert "| gan | synthetic-only | all |" in text and "baseline" in text
    assert "| gan | 0 |" in text and text.rstrip().endswith("A note.")


def test_generator_comparison_pairs_diffusion_with_the_best_gan_of_each_cell():
    rows = []
    for seed in range(4):
        jitter = 0.002 * seed
        rows.append(_row(REAL_ARM, "real", 1, 0, seed, 0.5))
        rows.append(_row("dcgan", "synthetic-only", 1, 0, seed, 0.30 + jitter))
        rows.append(_row("wgan-gp-sn", "synthetic-only", 1, 0, seed, 0.40 + jitter))
        rows.append(_row("diffusion-pairs", "synthetic-only", 1, 0, seed, 0.55 + 2 * jitter))
        # in this cell the GAN is better, and only one GAN ran it
        rows.append(_row("dcgan", "pretrain", "all", 0, seed, 0.60 + jitter))
        rows.append(_row("diffusion-pairs", "pretrain", "all", 0, seed, 0.50 - jitter))
    rows.append(_row("diffusion-pairs", "only-diffusion", 1, 0, 0, 0.5))  # no GAN: no entry
    table = {(r["protocol"], r["size"]): r for r in generator_comparison(rows, "dice_mean")}
    assert set(table) == {("synthetic-only", 1), ("pretrain", "all")}
    cell = table["synthetic-only", 1]
    assert cell["gan_arm"] == "wgan-gp-sn" and cell["n_pairs"] == 4
    assert cell["mean_diff"] == pytest.approx(0.15 + 0.003)
    assert cell["better"] == "diffusion"
    other = table["pretrain", "all"]
    assert other["gan_arm"] == "dcgan" and other["better"] == "GAN"
    assert other["diffusion"] < other["gan"]
