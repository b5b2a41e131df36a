"""Known-answer tests for fidelity_report on smooth-blob "images" (16x16, one channel).

Real sets are independent draws of 1-3 Gaussian blobs; a good generator is a fresh real draw.
It must score like the held-out reference and better than noise and blurred images, with both
raw pixels and a tiny encoder trained for 50 steps on the real training set only.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from synthmed.evaluation.fidelity.extractors import EncoderExtractor, PixelExtractor
from synthmed.evaluation.fidelity.suite import (
    fidelity_report,
    subsample_indices,
    summarize,
    to_jsonable,
)
from tests.evaluation.images import blobs

N = 200


@pytest.fixture(scope="module")
def sets() -> dict[str, np.ndarray]:
    fresh = blobs(N, 2)
    return {
        "train": blobs(N, 0),
        "holdout": blobs(N, 1),
        "fresh": fresh,
        "noise": np.random.default_rng(3).random(fresh.shape).astype(np.float32),
        "blurred": gaussian_filter(fresh, sigma=(0, 0, 1.5, 1.5)),
        "collapsed": np.repeat(fresh[:1], N, axis=0),
    }


@pytest.fixture(scope="module")
def encoder(sets) -> EncoderExtractor:
    return EncoderExtractor(steps=50, seed=0).fit(sets["train"])


@pytest.fixture(scope="module")
def reports(sets, encoder) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for ext in (PixelExtractor(), encoder):
        out[ext.name] = {
            name: fidelity_report(sets["train"], sets["holdout"], sets[name], ext, n_pairs=50)
            for name in ("fresh", "noise", "blurred", "collapsed")
        }
    return out


@pytest.mark.parametrize("space", ["pixels", "encoder"])
@pytest.mark.parametrize("metric", ["fd", "kid_mean"])
def test_real_beats_noise_and_blur(reports, space: str, metric: str) -> None:
    rep = reports[space]
    reference = rep["fresh"]["feature_space"]["holdout_vs_train"][metric]
    fresh = rep["fresh"]["feature_space"]["synthetic_vs_train"][metric]
    blurred = rep["blurred"]["feature_space"]["synthetic_vs_train"][metric]
    noise = rep["noise"]["feature_space"]["synthetic_vs_train"][metric]
    assert max(reference, fresh) < blurred < noise


def test_collapsed_generator_is_caught(reports) -> None:
    for space in ("pixels", "encoder"):
        prdc = reports[space]["collapsed"]["feature_space"]["synthetic_vs_train"]
        assert prdc["recall"] < 0.05 and prdc["coverage"] < 0.05
        fresh = reports[space]["fresh"]["feature_space"]["synthetic_vs_train"]
        assert fresh["recall"] > 0.8 and fresh["coverage"] > 0.8
    diversity = reports["pixels"]["collapsed"]["image_space"]["ms_ssim_diversity"]
    assert diversity["synthetic"] == pytest.approx(1.0, abs=1e-6)
    assert diversity["real_train"] < 0.5


def test_identical_sets_score_perfectly(sets) -> None:
    rep = fidelity_report(
        sets["train"][:60], sets["holdout"][:60], sets["train"][:60], PixelExtractor()
    )
    same = rep["feature_space"]["synthetic_vs_train"]
    assert same["fd"] == pytest.approx(0.0, abs=1e-6)
    assert abs(same["kid_mean"]) < 0.01  # unbiased MMD of a set with itself: ~0, not exactly
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    image = rep["image_space"]
    assert image["histogram_distance"]["synthetic_vs_train"] == 0.0
    assert image["swd_pixels"]["synthetic_vs_train"] == 0.0


def test_report_is_json_ready_and_deterministic(sets, reports) -> None:
    rep = reports["pixels"]["fresh"]
    json.dumps(rep, allow_nan=False)
    assert rep["n"] == {"train": N, "holdout": N, "synthetic": N}
    assert rep["extractor"]["name"] == "pixels" and rep["feature_dim"] == 256
    assert "synthetic_vs_train_at_holdout_n" not in rep["feature_space"]
    again = fidelity_report(
        sets["train"], sets["holdout"], sets["fresh"], PixelExtractor(), n_pairs=50
    )
    assert again == rep


def test_subsampling_and_matched_n(sets) -> None:
    rep = fidelity_report(
        sets["train"], sets["holdout"][:30], sets["fresh"], PixelExtractor(), max_n=100, n_pairs=10
    )
    assert rep["n"] == {"train": 100, "holdout": 30, "synthetic": 100}
    assert rep["feature_space"]["synthetic_vs_train_at_holdout_n"]["fd"] > 0
    idx = subsample_indices(500, 100, seed=4)
    assert len(idx) == 100 and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, subsample_indices(500, 100, seed=4))


def test_per_class(sets) -> None:
    cls_t = np.arange(N) % 2
    cls_s = np.r_[np.zeros(N - 4, int), np.ones(4, int)]  # class 1 has only 4 synthetic images
    rep = fidelity_report(
        sets["train"], sets["holdout"], sets["fresh"], PixelExtractor(),
        classes_real=cls_t, classes_synth=cls_s, classes_holdout=np.arange(N) % 2, n_pairs=10,
    )  # fmt: skip
    per_class = rep["per_class"]
    assert set(per_class) == {"0", "1"}
    assert per_class["1"]["n"] == {"train": N // 2, "holdout": N // 2, "synthetic": 4}
    assert per_class["1"]["synthetic_vs_train"]["precision"] is None  # 4 <= k: PRDC undefined
    assert per_class["1"]["synthetic_vs_train"]["fd"] is not None
    assert per_class["0"]["holdout_vs_train"]["recall"] > 0.5


def test_helpers_convert_to_json_types() -> None:
    stats = summarize([1.0, 2.0, np.inf, 3.0])
    assert stats["n"] == 4 and stats["n_nonfinite"] == 1 and stats["median"] == 2.0
    assert summarize([])["mean"] is None
    out = to_jsonable({1: np.float32(0.5), "a": np.array([np.nan, 1]), "t": torch.tensor([2])})
    assert out == {"1": 0.5, "a": [None, 1.0], "t": [2]}
